"""The claims' figures as PNG files: the valley curve, the forest plot of effects, rates against size.

Each function draws on an explicit Agg canvas (no display, no global backend change, as in
report.py), writes the PNG to the given path and returns the path. They take the dicts the other
modules return (`SizeCurve.to_dict()`, `verdict.judge` rows), so a figure can be redrawn from
the JSON alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

OUTCOME_COLOURS = {"held": "tab:green", "not held": "tab:red", "inconclusive": "tab:gray"}


def _figure(width: float, height: float) -> Any:
    # Imported here: matplotlib costs a second at import, and the numbers need none of it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path


def _errors(curve: dict[str, Any], scale: float) -> np.ndarray:
    """Asymmetric error bars (2, sizes) from the curve's intervals."""
    mean, ci = np.array(curve["mean"]), np.array(curve["ci"])
    return scale * np.vstack([mean - ci[:, 0], ci[:, 1] - mean])


def _draw_curve(axes: Any, curve: dict[str, Any], label: str, scale: float, colour: str) -> None:
    sizes, mean = np.array(curve["sizes"]), scale * np.array(curve["mean"])
    axes.errorbar(sizes, mean, yerr=_errors(curve, scale), fmt="o-", capsize=3, color=colour, label=label)
    for size, seed_means in zip(sizes, curve["seed_means"], strict=True):
        axes.scatter([size] * len(seed_means), scale * np.array(seed_means), s=8, alpha=0.4, color=colour)
    axes.set_xscale("log")


def plot_curve(curve: dict[str, Any], path: str | Path, ylabel: str = "accuracy (%)", scale: float = 100) -> Path:
    """The valley curve: mean per size with its interval (seed means as dots), the log-linear fit, the base,
    and the dipped sizes (mean below the base; filled red where the interval lies entirely below)."""
    figure = _figure(7, 4)
    axes = figure.add_subplot()
    _draw_curve(axes, curve, "distilled (95 % interval)", scale, "tab:blue")
    grid = np.geomspace(min(curve["sizes"]), max(curve["sizes"]), 100)
    fit = curve["fit"]
    axes.plot(
        grid, scale * (fit["slope"] * np.log(grid) + fit["intercept"]), "--", color="tab:orange", label="log-linear fit"
    )
    axes.axhline(scale * curve["base"], color="black", linewidth=1, label="base")
    for point in curve["dip"]:
        index = curve["sizes"].index(point["size"])
        axes.scatter(
            point["size"],
            scale * curve["mean"][index],
            s=120,
            marker="v",
            facecolors="tab:red" if point["interval_below_base"] else "none",
            edgecolors="tab:red",
            zorder=3,
            label="below base" if point is curve["dip"][0] else None,
        )
    axes.set_xlabel("distillation examples (log scale)")
    axes.set_ylabel(ylabel)
    axes.legend()
    return _save(figure, path)


def plot_effects(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Forest plot: one row per claim part (`verdict.judge` rows), its effect and interval in margin units
    (so parts measured in accuracy, slope and correlation share an axis), the zero line, the ±1 margin
    band and the verdict."""
    figure = _figure(8, 0.5 * len(rows) + 1.2)
    axes = figure.add_subplot()
    positions = np.arange(len(rows))[::-1]
    axes.axvspan(-1, 1, color="tab:gray", alpha=0.15, label="± margin")
    axes.axvline(0, color="black", linewidth=1)
    for y, row in zip(positions, rows, strict=True):
        margin = row["margin"]
        low, high = row["low"] / margin, row["high"] / margin
        colour = OUTCOME_COLOURS[row["outcome"]]
        axes.errorbar(
            row["estimate"] / margin,
            y,
            xerr=[[row["estimate"] / margin - low], [high - row["estimate"] / margin]],
            fmt="o",
            capsize=3,
            color=colour,
        )
        axes.annotate(row["outcome"], (1.01, y), xycoords=("axes fraction", "data"), va="center", color=colour)
    axes.set_yticks(positions, [f"{row['claim']} {row['part']} ({row['kind']})" for row in rows])
    axes.set_xlabel("effect A - B, in units of the claim's margin")
    axes.legend(loc="lower right")
    return _save(figure, path)


def plot_rates(completion: dict[str, Any], think: dict[str, Any], accuracy: dict[str, Any], path: str | Path) -> Path:
    """Completion and think-tag rates against size (left panel) beside accuracy against size (right panel),
    each with its intervals, so whether the rates track size or accuracy shows at a glance."""
    figure = _figure(10, 4)
    rates_axes, accuracy_axes = figure.subplots(1, 2, sharex=True)
    _draw_curve(rates_axes, completion, "completion rate", 100, "tab:blue")
    _draw_curve(rates_axes, think, "think-tag rate", 100, "tab:purple")
    _draw_curve(accuracy_axes, accuracy, "accuracy", 100, "tab:green")
    accuracy_axes.axhline(100 * accuracy["base"], color="black", linewidth=1, label="base")
    for axes, label in ((rates_axes, "rate (%)"), (accuracy_axes, "accuracy (%)")):
        axes.set_xlabel("distillation examples (log scale)")
        axes.set_ylabel(label)
        axes.legend()
    return _save(figure, path)
