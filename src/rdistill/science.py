"""`rdistill science`: the papers' seven claims as study sweeps, each with a measured effect and a verdict.

Every study is a sweep recipe whose `sweep.claims` state, before it runs, what is compared and
by which rule (`rdistill.analysis.verdict`). This module runs the sweeps (finished cells are
skipped, so a second call only analyses), turns each claim into one or more parts (an effect
A - B with a two-level bootstrap interval over seeds and evaluation problems, or a slope or a
correlation difference with its own interval), judges every part, and writes `docs/results.md`
with a JSON twin and the figures beside it. A claim holds when every part holds, fails when any
part fails, and is inconclusive otherwise.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.analysis.bootstrap import paired_difference
from rdistill.analysis.curves import size_curve
from rdistill.analysis.load import SweepScores, base_scores, cell_means, load_sweep, score_matrix, series
from rdistill.analysis.plots import plot_curve, plot_effects, plot_rates
from rdistill.analysis.rates import rate_correlations
from rdistill.analysis.verdict import CORRELATION_MARGIN, SLOPE_MARGIN, ClaimPart, judge
from rdistill.config import ClaimOptions, ComparisonOptions, Recipe, load_recipe
from rdistill.data import write_json
from rdistill.data.manifest import read_manifest
from rdistill.errors import RecipeError

STUDY_DIR = Path("recipes/study")
# The primary result of each claim (DED's on the reasoner base, the valley's on the direct base),
# in the order of the papers; SECONDARY holds the same studies on the other base.
PRIMARY = (
    "teacher-choice-reasoner",
    "small-curated",
    "trajectories",
    "valley",
    "easy-vs-hard",
    "correctness",
    "valley-rates",
)
SECONDARY = (
    "teacher-choice",
    "small-curated-direct",
    "trajectories-direct",
    "valley-reasoner",
    "easy-vs-hard-reasoner",
    "correctness-reasoner",
    "valley-rates-reasoner",
)
# How a part's effect reads: accuracy differences in points, the rise in points per e-fold of data,
# Valley-4's in correlation.
POINTS, SLOPE, CORRELATION = "points", "points per e-fold", "correlation"
MEASURE_LABEL = {"in_domain": "in-domain", "generalisation": "generalisation", "out_of_domain": "out-of-domain"}


def study_paths(names: tuple[str, ...], folder: Path = STUDY_DIR) -> list[Path]:
    """The recipe files of the named studies."""
    return [folder / f"{name}.yaml" for name in names]


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


def group_table(parent: Path) -> list[dict[str, Any]]:
    """The sweep's groups: examples and accuracy per measure, mean and sd over seeds (sweep/summary.json)."""
    summary = json.loads((parent / "sweep" / "summary.json").read_text())
    return [
        {"group": g["group"], "seeds": len(g["seeds"]), "examples": g["examples"]["mean"]}
        | {measure: g.get(measure) for measure in MEASURE_LABEL}
        for g in summary["groups"]
    ]


def stage_seconds(parent: Path) -> float:
    """CPU-independent cost of a study: the seconds every stage of the parent, its upstream runs and cells took
    (from their manifests, so a resumed study counts each stage once)."""
    directories = [parent, *sorted((parent / "sweep").glob("*/")), *sorted((parent / "sweep" / "upstream").glob("*/"))]
    return sum(
        entry.get("seconds") or 0.0
        for directory in directories
        if (directory / "manifest.json").exists()
        for entry in read_manifest(directory)["stages"].values()
    )


def analyse_study(recipe: Recipe, path: Path, parent: Path, figures: Path) -> dict[str, Any]:
    """Every claim of one finished study."""
    sweep = load_sweep(parent)
    claims = []
    for claim in recipe.sweep.claims:
        found = ANALYSES[claim.kind](claim, sweep, parent, figures)
        claims.append(
            {"id": claim.id, "statement": claim.statement, "kind": claim.kind}
            | found
            | {"verdict": combine([part["outcome"] for part in found["parts"]])}
        )
    return {
        "recipe": path.as_posix(),
        "run_dir": parent.as_posix(),
        "base": recipe.base.micro.kind if recipe.base.student == "micro" else recipe.base.student,
        "header": recipe_header(path),
        "groups": group_table(parent),
        "stage_seconds": stage_seconds(parent),
        "claims": claims,
    }


def recipe_header(path: Path) -> str:
    """The recipe's leading comment: what the study varies, holds fixed and how it is judged."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


def run_science(paths: list[Path], out: Path, run: bool = True, jobs: int = 1, console: Any = None) -> dict[str, Any]:
    """Run (or, with run=False, only read) every study, judge its claims, write OUT, OUT's JSON twin and figures."""
    from rdistill.sweep import run_sweep

    figures = out.parent / out.stem
    studies = []
    for path in paths:
        recipe = load_recipe(path)
        if not recipe.sweep.claims:
            raise RecipeError(f"{path}: a study recipe needs `sweep.claims`")
        started = time.perf_counter()
        parent = run_sweep(recipe, console=console, jobs=jobs) if run else recipe.resolved_run_dir()
        if not (parent / "sweep" / "summary.json").exists():
            raise RecipeError(f"{path}: {parent} holds no finished sweep; run it (drop --no-run)")
        study = analyse_study(recipe, path, parent, figures)
        studies.append(study | {"wall_seconds": time.perf_counter() - started if run else None})
    rows = [part for study in studies for claim in study["claims"] for part in claim["parts"]]
    defined = [row for row in rows if row["estimate"] is not None]
    effects = plot_effects(defined, figures / "claims.png") if defined else None
    results = {
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "studies": studies,
        "figure": effects,
    }
    results = relative_paths(results, out.parent)
    write_json(results, out.with_suffix(".json"))
    out.write_text(results_markdown(results))
    return results


def relative_paths(value: Any, root: Path) -> Any:
    """The results with every figure path made relative to `root` (results.md's folder), for JSON and links."""
    if isinstance(value, Path):
        return os.path.relpath(value, root)
    if isinstance(value, dict):
        return {key: relative_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item, root) for item in value]
    return value


def effect_text(part: dict[str, Any]) -> str:
    """A part's effect and interval in its unit (accuracy in points); a dash where it is undefined."""
    if part["estimate"] is None:
        return "–"
    if part["unit"] == CORRELATION:
        return f"{part['estimate']:+.2f} [{part['low']:+.2f}, {part['high']:+.2f}]"
    scale = 100
    return f"{scale * part['estimate']:+.1f} [{scale * part['low']:+.1f}, {scale * part['high']:+.1f}] {part['unit']}"


def _spread_text(spread: dict[str, float] | None) -> str:
    return "–" if not spread else f"{100 * spread['mean']:.1f} ± {100 * spread['std']:.1f}"


def _claims_table(studies: list[dict[str, Any]]) -> list[str]:
    lines = ["| claim | part | base | effect A − B [95 % interval] | margin | part verdict | claim verdict |"]
    lines.append("|---|---|---|---|---|---|---|")
    for study in studies:
        for claim in study["claims"]:
            for index, part in enumerate(claim["parts"]):
                margin = part["margin"] if part["unit"] == CORRELATION else 100 * part["margin"]
                lines.append(
                    f"| {claim['id'] if index == 0 else ''} | {part['effect']} | {study['base']} | {effect_text(part)} "
                    f"| {margin:g} | {part['outcome']} | {'**' + claim['verdict'] + '**' if index == 0 else ''} |"
                )
    return lines


def _groups_table(study: dict[str, Any]) -> list[str]:
    lines = ["| group | seeds | examples | in-domain (%) | out-of-domain (%) |", "|---|---|---|---|---|"]
    lines += [
        f"| {g['group']} | {g['seeds']} | {g['examples']:,.0f} | {_spread_text(g['in_domain'])} "
        f"| {_spread_text(g['out_of_domain'])} |"
        for g in study["groups"]
    ]
    return lines


def _details(claim: dict[str, Any]) -> list[str]:
    """The claim's own evidence: the size curve, the correlations or the teacher signals."""
    lines: list[str] = []
    if "curve" in claim:
        curve = claim["curve"]
        lines += ["| size | accuracy (%) [95 %] | base (%) | fit residual (points) |", "|---|---|---|---|"]
        lines += [
            f"| {size:g} | {100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}] | {100 * curve['base']:.1f} "
            f"| {100 * residual:+.1f} |"
            for size, mean, (low, high), residual in zip(
                curve["sizes"], curve["mean"], curve["ci"], curve["residuals"], strict=True
            )
        ]
    if "correlations" in claim:
        lines += ["| rate | Spearman with ln size | Spearman with accuracy |", "|---|---|---|"]
        for rate, found in claim["correlations"].items():
            size, accuracy = found["spearman"]["size"], found["spearman"]["accuracy"]
            lines.append(
                f"| {rate} | {size['estimate']:+.2f} [{size['ci'][0]:+.2f}, {size['ci'][1]:+.2f}] "
                f"| {accuracy['estimate']:+.2f} [{accuracy['ci'][0]:+.2f}, {accuracy['ci'][1]:+.2f}] |"
            )
    if "signals" in claim:
        lines += ["| signal | Spearman with distilled accuracy, mean [min, max] over seeds | top-1 hits | its pick |"]
        lines.append("|---|---|---|---|")
        for row in claim["signals"]:
            rho = row["spearman"]
            rho_text = f"{rho['mean']:+.2f} [{rho['min']:+.2f}, {rho['max']:+.2f}]" if rho else "–"
            hits = f"{sum(row['top1_hits'].values())}/{len(row['top1_hits'])}"
            lines.append(f"| {row['signal']} | {rho_text} | {hits} | {row['top1']} |")
    return lines


def results_markdown(results: dict[str, Any]) -> str:
    """docs/results.md: the claims table, the forest plot, then per study what it holds fixed and what it found."""
    studies = results["studies"]
    wall = [s["wall_seconds"] for s in studies if s["wall_seconds"] is not None]
    lines = [
        "# The papers' claims, measured in the micro-world",
        "",
        f"Written by `rdistill science` (`make science`) on {results['written']}, {results['machine']}. "
        f"Stage time of the studies: {sum(s['stage_seconds'] for s in studies) / 60:.0f} min"
        + (f"; wall time of this call: {sum(wall) / 60:.0f} min." if wall else "."),
        "Every effect is A − B, its interval a two-level bootstrap over seeds and evaluation problems (10,000 "
        "replicates). Superiority holds when the interval lies above 0, fails when it lies below the margin; "
        "equivalence holds when it lies inside ±margin, fails when it lies outside; anything else is "
        "inconclusive. A claim holds when every part holds (`rdistill.analysis.verdict`).",
        "",
        *_claims_table(studies),
        "",
    ]
    if results["figure"]:
        lines += [f"![every part's effect in units of its margin]({results['figure']})", ""]
    for study in studies:
        for claim in study["claims"]:
            lines += [f"## {claim['id']}: {claim['statement']}", "", f"**Verdict: {claim['verdict']}.**", ""]
            lines += [f"- {part['effect']}: {part['reason']}" for part in claim["parts"]]
            lines += ["", f"Study `{study['recipe']}` on the {study['base']} base. {study['header']}", ""]
            lines += [*_groups_table(study), "", *_details(claim), ""]
            if claim.get("figure"):
                lines += [f"![{claim['id']}]({claim['figure']})", ""]
    return "\n".join(lines) + "\n"
