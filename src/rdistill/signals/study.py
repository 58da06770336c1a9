"""Does a teacher signal predict what the student learns? Each signal against distillation on each teacher alone.

The ground truth of the teacher-choice study (recipes/study/teacher-choice.yaml) is the
accuracy of a student distilled on one teacher's traces, per teacher and seed. A signal is
judged by the Spearman correlation of its teacher ranking with that truth and by whether its
top teacher is the truly best one, per seed, so that the spread over seeds is an interval on
both; next to what the signal cost to compute.
"""

from __future__ import annotations

import statistics
from typing import Any

from scipy.stats import spearmanr


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho (scipy's, ties by average rank); None when either side is constant, where rho is undefined."""
    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def top1_hit(signal: dict[str, float], truth: dict[str, float]) -> bool:
    """Whether the signal's best teacher is among the truly best (ties in the truth all count as best)."""
    best = max(truth.values())
    return truth[max(signal, key=lambda name: signal[name])] == best


def _spread(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def validate_signals(
    teachers: dict[str, dict[str, Any]],
    better: dict[str, str],
    truth_by_seed: dict[int, dict[str, float]],
    seconds: dict[str, float | None],
) -> list[dict[str, Any]]:
    """Per signal: Spearman with the truth (per seed, their spread, and against the mean over seeds), top-1 hits.

    Signals are oriented so that larger means better (a 'lower is better' one is negated), so a
    rho of +1 is a perfect prediction. A signal some teacher lacks, or with no direction, is
    left out.
    """
    names = sorted(set.intersection(*(set(truth) for truth in truth_by_seed.values())))
    mean_truth = {name: statistics.fmean(truth[name] for truth in truth_by_seed.values()) for name in names}
    table = []
    for signal, direction in better.items():
        if direction not in ("higher", "lower") or any(teachers[n].get(signal) is None for n in names):
            continue
        oriented = {n: teachers[n][signal] * (1 if direction == "higher" else -1) for n in names}
        per_seed = {
            seed: spearman([oriented[n] for n in names], [truth[n] for n in names])
            for seed, truth in sorted(truth_by_seed.items())
        }
        hits = {seed: top1_hit(oriented, {n: truth[n] for n in names}) for seed, truth in sorted(truth_by_seed.items())}
        table.append(
            {
                "signal": signal,
                "better": direction,
                "values": {n: teachers[n][signal] for n in names},
                "spearman": _spread([rho for rho in per_seed.values() if rho is not None]),
                "spearman_per_seed": per_seed,
                "spearman_of_mean": spearman([oriented[n] for n in names], [mean_truth[n] for n in names]),
                "top1_hit_rate": sum(hits.values()) / len(hits),
                "top1_hits": hits,
                "top1": max(oriented, key=lambda n: oriented[n]),
                "seconds": seconds.get(signal),
            }
        )
    return table


def truth_by_seed(cells: list[dict[str, Any]], key: str, measure: str) -> dict[int, dict[str, float]]:
    """Seed -> teacher -> the measure (in_domain, out_of_domain) of the cell that distilled on that teacher alone."""
    truth: dict[int, dict[str, float]] = {}
    for cell in cells:
        if key in cell["overrides"] and cell.get(measure) is not None:
            truth.setdefault(cell["seed"] or 0, {})[cell["overrides"][key]] = cell[measure]
    return truth
