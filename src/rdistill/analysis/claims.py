"""A study's claims judged on its finished sweep: each claim's parts, their effects, intervals and verdicts.

`sweep.claims` states, before the sweep runs, what each claim compares and by which rule
(`rdistill.analysis.verdict`). A part is an effect A - B with a two-level bootstrap interval
over seeds and evaluation problems (a comparison, Valley-1's dip, DED-1's two teachers), a
slope difference (Valley-1's rise past the log-linear fit) or a correlation difference
(Valley-4). A claim holds when every part holds, fails when any part fails, and is
inconclusive otherwise. `rdistill sweep` writes the result to sweep/claims.json (the report
shows it) and `rdistill science` gathers every study's into docs/results.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.analysis.bootstrap import paired_difference
from rdistill.analysis.curves import size_curve
from rdistill.analysis.load import SweepScores, base_scores, cell_means, load_sweep, score_matrix, series
from rdistill.analysis.plots import plot_curve, plot_rates
from rdistill.analysis.rates import rate_correlations
from rdistill.analysis.verdict import CORRELATION_MARGIN, SLOPE_MARGIN, ClaimPart, judge
from rdistill.config import ClaimOptions, ComparisonOptions, Recipe
from rdistill.data.schema import GROUP_LABELS as MEASURE_LABEL
from rdistill.errors import RecipeError

# How a part's effect reads: accuracy differences in points, the rise in points per e-fold of data,
# Valley-4's in correlation.
POINTS, SLOPE, CORRELATION = "points", "points per e-fold", "correlation"


def combine(outcomes: list[str]) -> str:
    """A claim's verdict from its parts': held if all hold, not held if any fails, else inconclusive."""
    if outcomes and all(outcome == "held" for outcome in outcomes):
        return "held"
    return "not held" if "not held" in outcomes else "inconclusive"


def judged(part: ClaimPart, unit: str, estimate: float, low: float, high: float, undefined: str = "") -> dict[str, Any]:
    """A part's row: its effect, interval, unit and verdict; an effect the data leave undefined (a correlation
    over cells that do not vary, say) is inconclusive, with `undefined` as the reason."""
    if not all(math.isfinite(value) for value in (estimate, low, high)):
        reason = undefined or "the effect is undefined on these cells"
        undefined_row = {"estimate": None, "low": None, "high": None, "outcome": "inconclusive", "reason": reason}
        return asdict(part) | undefined_row | {"unit": unit}
    return judge(part, estimate, low, high) | {"unit": unit}


def group_cells(sweep: SweepScores, group: str) -> list[str]:
    """The cells of one group, by seed, so that two groups pair seed by seed."""
    members = sweep.cells[sweep.cells["group"] == group].sort_values("seed")
    if members.empty:
        raise RecipeError(f"sweep has no group {group!r} (groups: {', '.join(sorted(set(sweep.cells['group'])))})")
    return members["name"].tolist()


def _compare(sweep: SweepScores, claim_id: str, comparison: ComparisonOptions, label: str) -> dict[str, Any]:
    """One comparison part: mean accuracy A - B, paired over seeds and problems."""
    a_cells, b_cells = group_cells(sweep, comparison.a), group_cells(sweep, comparison.b)
    if len(a_cells) != len(b_cells):
        raise RecipeError(f"claim {claim_id}: {comparison.a} and {comparison.b} have different numbers of seeds")
    a = score_matrix(sweep, a_cells, "correct", comparison.measure)
    b = score_matrix(sweep, b_cells, "correct", comparison.measure)
    effect = paired_difference(a, b)
    measure = MEASURE_LABEL[comparison.measure]
    part = ClaimPart(
        claim_id, label, f"{measure} accuracy: {comparison.a} - {comparison.b}", comparison.kind, comparison.margin
    )
    return judged(part, POINTS, effect.estimate, effect.low, effect.high) | {
        "a_mean": float(a.mean()),
        "b_mean": float(b.mean()),
        "seeds": effect.seeds,
        "problems": effect.problems,
    }


def comparison_claim(claim: ClaimOptions, sweep: SweepScores, parent: Path, figures: Path) -> dict[str, Any]:
    """Every comparison the claim lists, each a part."""
    parts = [
        _compare(sweep, claim.id, comparison, f"{MEASURE_LABEL[comparison.measure]} ({comparison.kind})")
        for comparison in claim.comparisons
    ]
    return {"parts": parts}


def valley_claim(claim: ClaimOptions, sweep: SweepScores, parent: Path, figures: Path) -> dict[str, Any]:
    """Valley-1: the deepest point below the base (base - distilled there) and the rise past the log-linear fit."""
    scores = series(sweep, claim.size_key, "correct", claim.measure)
    base = base_scores(sweep, "correct", claim.measure)
    curve = size_curve(scores, base).to_dict()
    deepest = min(scores, key=lambda size: scores[size].mean())
    dip = paired_difference(np.broadcast_to(base, scores[deepest].shape), scores[deepest])
    rise = curve["rise"]
    parts = [
        judged(
            ClaimPart(claim.id, "dip", f"base - distilled at {deepest:g} (lowest mean)", "superiority", claim.margin),
            POINTS,
            dip.estimate,
            dip.low,
            dip.high,
        ),
        judged(
            ClaimPart(
                claim.id,
                "rise",
                f"slope per e-fold over {rise['sizes'][0]:g}-{rise['sizes'][-1]:g} - the log-linear fit's",
                "superiority",
                SLOPE_MARGIN,
            ),
            SLOPE,
            rise["excess"],
            *rise["excess_ci"],
        ),
    ]
    figure = plot_curve(curve, figures / f"{claim.id}.png", ylabel=f"{MEASURE_LABEL[claim.measure]} accuracy (%)")
    return {"parts": parts, "curve": curve, "figure": figure}


def rates_claim(claim: ClaimOptions, sweep: SweepScores, parent: Path, figures: Path) -> dict[str, Any]:
    """Valley-4: per rate, |Spearman with ln size| - |Spearman with accuracy| across cells."""
    means = cell_means(sweep, claim.measure)
    sizes = means[claim.size_key].astype(float).to_numpy()
    correlations = {
        rate: rate_correlations(sizes, means["correct"].to_numpy(), means[column].to_numpy())
        for rate, column in (("completion", "finished"), ("think", "has_think"))
    }
    parts = [
        judged(
            ClaimPart(
                claim.id,
                rate,
                f"{rate} rate: |rho ln size| - |rho accuracy|",
                "superiority",
                CORRELATION_MARGIN,
            ),
            CORRELATION,
            found["spearman"]["difference"]["estimate"],
            *found["spearman"]["difference"]["ci"],
            undefined=f"Spearman is undefined: the {rate} rate or the accuracy is the same in every cell",
        )
        for rate, found in correlations.items()
    ]
    curves = {
        measure: size_curve(series(sweep, claim.size_key, measure, claim.measure), 0.0).to_dict()
        for measure in ("finished", "has_think", "correct")
    }
    figure = plot_rates(curves["finished"], curves["has_think"], curves["correct"], figures / f"{claim.id}.png")
    return {"parts": parts, "correlations": correlations, "curves": curves, "figure": figure}


def teacher_picks(parent: Path, rule: str) -> tuple[str, str, list[dict[str, Any]]]:
    """The teacher the learnability signal picks, the most accurate one, and every signal's validation row."""
    summary = json.loads((parent / "sweep" / "summary.json").read_text())
    rows = (summary.get("teacher_choice") or {}).get("in_domain") or []
    top = {row["signal"]: row["top1"] for row in rows}
    missing = [name for name in (rule, "accuracy") if name not in top]
    if missing:
        raise RecipeError(f"{parent}: teachers.json has no {', '.join(missing)} for every teacher")
    return top[rule], top["accuracy"], rows


def teacher_claim(claim: ClaimOptions, sweep: SweepScores, parent: Path, figures: Path) -> dict[str, Any]:
    """DED-1: the cells distilled on the rule's teacher against those on the most accurate teacher."""
    chosen, accurate, rows = teacher_picks(parent, claim.rule)
    description = f"{MEASURE_LABEL[claim.measure]} accuracy: {claim.rule}'s teacher ({chosen}) - the most accurate"
    part = ClaimPart(claim.id, "teacher", f"{description} ({accurate})", "superiority", claim.margin)
    if chosen == accurate:
        undefined = f"both rules pick {chosen}: this draw cannot tell learnability from benchmark score"
        row = judged(part, POINTS, math.nan, math.nan, math.nan, undefined=undefined)
        return {"parts": [row], "signals": rows, "picks": {"rule": chosen, "accuracy": accurate}}
    comparison = ComparisonOptions(
        a=f"teacher={chosen}", b=f"teacher={accurate}", measure=claim.measure, margin=claim.margin
    )
    found = _compare(sweep, claim.id, comparison, "teacher") | {"effect": part.effect}
    return {"parts": [found], "signals": rows, "picks": {"rule": chosen, "accuracy": accurate}}


ANALYSES: dict[str, Callable[[ClaimOptions, SweepScores, Path, Path], dict[str, Any]]] = {
    "comparison": comparison_claim,
    "valley": valley_claim,
    "rates": rates_claim,
    "teacher_choice": teacher_claim,
}


def judge_claims(recipe: Recipe, parent: Path, figures: Path) -> list[dict[str, Any]]:
    """Every claim of a finished study sweep in `parent`, its figures written to `figures`."""
    sweep = load_sweep(parent)
    claims = []
    for claim in recipe.sweep.claims:
        found = ANALYSES[claim.kind](claim, sweep, parent, figures)
        claims.append(
            {"id": claim.id, "statement": claim.statement, "kind": claim.kind}
            | found
            | {"verdict": combine([part["outcome"] for part in found["parts"]])}
        )
    return claims


def effect_text(part: dict[str, Any]) -> str:
    """A part's effect and interval in its unit (accuracy in points); a dash where it is undefined."""
    if part["estimate"] is None:
        return "–"
    if part["unit"] == CORRELATION:
        return f"{part['estimate']:+.2f} [{part['low']:+.2f}, {part['high']:+.2f}]"
    scale = 100
    return f"{scale * part['estimate']:+.1f} [{scale * part['low']:+.1f}, {scale * part['high']:+.1f}] {part['unit']}"


def relative_paths(value: Any, root: Path) -> Any:
    """The results with every figure path made relative to `root` (results.md's folder), for JSON and links."""
    if isinstance(value, Path):
        return os.path.relpath(value, root)
    if isinstance(value, dict):
        return {key: relative_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item, root) for item in value]
    return value
