"""A metric against data size: the mean per size, its log-linear fit, and where the measurements depart from it.

Valley-1 says accuracy first drops below the base student as data grows, then rises faster than
log-linearly. Both parts are measured here, never assumed from the curve's shape:

- the fit is least squares of the per-size mean on the natural log of the size (slope: metric
  per e-fold of data), over every size;
- the dip is every size whose mean is below the base, with the gap (mean - base) and its
  interval, and whether that interval lies entirely below zero (the data exclude "at the base");
- the rise is the least-squares slope over the `upper` largest sizes (2: the slope between the
  last two) against the fit's slope; their difference (`excess`) has an interval from the same
  bootstrap, refitting both slopes on every replicate.

Every size, and the base, is resampled with one set of two-level draws (`bootstrap`: seeds,
then problems), so gaps and slopes are paired over problems and seeds. The base is either one
number or its per-problem scores (then its own problem noise enters the gap's interval).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rdistill.analysis.bootstrap import DEFAULT_REPLICATES, interval, two_level_replicates


@dataclass(frozen=True)
class SizeCurve:
    """One metric over data sizes; `to_dict` gives its JSON form (lists and floats only)."""

    sizes: list[float]
    mean: list[float]
    ci: list[list[float]]
    seed_means: list[list[float]]
    base: float
    fit: dict[str, float]
    residuals: list[float]
    dip: list[dict[str, Any]]
    rise: dict[str, Any]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)


def loglinear_fit(sizes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of values on ln(size); `values` may be (sizes,) or (sizes, curves)."""
    slope, intercept = np.polyfit(np.log(np.asarray(sizes, dtype=float)), values, 1)
    return slope, intercept


def _stack(scores: Mapping[float, Any]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array(sorted(scores), dtype=float)
    if len(sizes) < 2 or (sizes <= 0).any():
        raise ValueError(f"a curve needs at least two positive sizes, not {sizes.tolist()}")
    arms = [np.asarray(scores[size], dtype=float) for size in sorted(scores)]
    if len({arm.shape for arm in arms}) != 1 or arms[0].ndim != 2:
        raise ValueError(f"every size needs the same (seeds, problems) scores, not {[arm.shape for arm in arms]}")
    return sizes, np.stack(arms)


def _dip(sizes: np.ndarray, gaps: np.ndarray, gap_replicates: np.ndarray, confidence: float) -> list[dict[str, Any]]:
    dip = []
    for index in np.flatnonzero(gaps < 0):
        gap_ci = interval(gap_replicates[:, index], confidence)
        dip.append(
            {
                "size": float(sizes[index]),
                "gap": float(gaps[index]),
                "gap_ci": gap_ci,
                "interval_below_base": gap_ci[1] < 0,
            }
        )
    return dip


def _rise(
    sizes: np.ndarray, means: np.ndarray, replicates: np.ndarray, upper: int, confidence: float
) -> dict[str, Any]:
    fit_slope, upper_slope = loglinear_fit(sizes, means)[0], loglinear_fit(sizes[-upper:], means[-upper:])[0]
    fit_slopes = loglinear_fit(sizes, replicates.T)[0]
    upper_slopes = loglinear_fit(sizes[-upper:], replicates[:, -upper:].T)[0]
    return {
        "sizes": sizes[-upper:].tolist(),
        "slope": float(upper_slope),
        "slope_ci": interval(upper_slopes, confidence),
        "fit_slope": float(fit_slope),
        "fit_slope_ci": interval(fit_slopes, confidence),
        "excess": float(upper_slope - fit_slope),
        "excess_ci": interval(upper_slopes - fit_slopes, confidence),
    }


def size_curve(
    scores: Mapping[float, Any],
    base: float | np.ndarray,
    upper: int = 2,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = 0.95,
    seed: int = 0,
) -> SizeCurve:
    """The metric per size (scores: size -> (seeds, problems) array), its log-linear fit, dip and rise.

    `base` is the base student's score: one number, or per problem (problems,) in the same order.
    """
    sizes, stack = _stack(scores)
    if not 2 <= upper <= len(sizes):
        raise ValueError(f"the upper part needs 2 to {len(sizes)} sizes, not {upper}")
    base_arm = np.broadcast_to(np.asarray(base, dtype=float), stack.shape[1:])
    both = two_level_replicates(np.concatenate([stack, base_arm[None]]), replicates, seed)
    curve_replicates, base_replicates = both[:, :-1], both[:, -1]
    means, base_mean = stack.mean(axis=(1, 2)), float(base_arm.mean())
    slope, intercept = loglinear_fit(sizes, means)
    return SizeCurve(
        sizes=sizes.tolist(),
        mean=means.tolist(),
        ci=[interval(curve_replicates[:, index], confidence) for index in range(len(sizes))],
        seed_means=stack.mean(axis=2).tolist(),
        base=base_mean,
        fit={"slope": float(slope), "intercept": float(intercept)},
        residuals=(means - (slope * np.log(sizes) + intercept)).tolist(),
        dip=_dip(sizes, means - base_mean, curve_replicates - base_replicates[:, None], confidence),
        rise=_rise(sizes, means, curve_replicates, upper, confidence),
        confidence=confidence,
    )
