"""The verdict rule, fixed before any sweep runs: an effect's interval against zero and a margin.

Every claim is judged on one effect, A - B (positive when A is better), with its percentile
interval [low, high], and a margin m > 0: the smallest effect that matters, in the effect's
units (accuracy 0.02 = 2 points). Inequalities are strict; an interval that touches a bound
does not clear it, so a tie is always inconclusive.

superiority ("A beats B"):
  - not held if high < m: the data exclude an effect as large as the margin. This covers an
    interval entirely below 0 (B is better) and one entirely inside (0, m) (A is better, but
    by less than what matters); the reason says which.
  - held if low > 0 (and high >= m): A is better and an effect that matters is not excluded.
  - inconclusive otherwise: the interval reaches 0 or below and m or above.

equivalence ("A and B are about the same", |A - B| < m):
  - held if -m < low and high < m: the interval lies strictly inside the band.
  - not held if low > m or high < -m: the interval lies entirely outside the band, so the data
    exclude equivalence.
  - inconclusive otherwise: the interval crosses an edge of the band.

With a 95 % interval the equivalence rule is two one-sided tests at 2.5 % each (stricter than
the usual 5 %). What A and B are, the kind and the margin of each claim are stated by its study
recipe (`sweep.claims`); `rdistill.analysis.claims` turns them into parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["superiority", "equivalence"]
Outcome = Literal["held", "not held", "inconclusive"]
# Valley-1's rise: accuracy per e-fold of data; Valley-4: a difference of absolute correlations.
SLOPE_MARGIN = 0.02
CORRELATION_MARGIN = 0.1


@dataclass(frozen=True)
class ClaimPart:
    """What one part of a claim compares (effect = A - B), its kind and its margin."""

    claim: str
    part: str
    effect: str
    kind: Kind
    margin: float


@dataclass(frozen=True)
class Verdict:
    """The rule's outcome for one effect, with a one-line reason naming the numbers."""

    outcome: Outcome
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Plain JSON-ready fields."""
        return asdict(self)


def _superiority(estimate: float, low: float, high: float, margin: float) -> Verdict:
    numbers = f"A - B = {estimate:+.3g} [{low:+.3g}, {high:+.3g}], margin {margin:.3g}"
    if high < 0:
        return Verdict("not held", f"{numbers}: the interval lies below 0, B is better")
    if high < margin:
        smaller = "positive but" if low > 0 else "if any,"
        return Verdict("not held", f"{numbers}: the effect is {smaller} smaller than the margin (high < margin)")
    if low > 0:
        return Verdict("held", f"{numbers}: the interval lies above 0 and reaches the margin")
    return Verdict("inconclusive", f"{numbers}: the interval spans 0 and reaches the margin")


def _equivalence(estimate: float, low: float, high: float, margin: float) -> Verdict:
    numbers = f"A - B = {estimate:+.3g} [{low:+.3g}, {high:+.3g}], band ±{margin:.3g}"
    if -margin < low and high < margin:
        return Verdict("held", f"{numbers}: the interval lies inside the band")
    if low > margin or high < -margin:
        return Verdict("not held", f"{numbers}: the interval lies outside the band, excluding equivalence")
    return Verdict("inconclusive", f"{numbers}: the interval crosses the band's edge")


def verdict(estimate: float, low: float, high: float, kind: Kind, margin: float) -> Verdict:
    """Judge one effect A - B with interval [low, high] by the rule of the module docstring."""
    if low > high:
        raise ValueError(f"the interval [{low}, {high}] is upside down")
    if margin <= 0:
        raise ValueError(f"the margin must be positive, not {margin}")
    rules = {"superiority": _superiority, "equivalence": _equivalence}
    if kind not in rules:
        raise ValueError(f"unknown kind {kind!r} (superiority or equivalence)")
    return rules[kind](estimate, low, high, margin)


def judge(part: ClaimPart, estimate: float, low: float, high: float) -> dict[str, object]:
    """One claim part's row for the report and the forest plot: the effect, its interval and its verdict."""
    outcome = verdict(estimate, low, high, part.kind, part.margin)
    return asdict(part) | {"estimate": estimate, "low": low, "high": high} | outcome.to_dict()
