"""`rdistill science`: the papers' seven claims as study sweeps, each with a measured effect and a verdict.

Every study is a sweep recipe whose `sweep.claims` state, before it runs, what is compared and
by which rule. This module runs the sweeps (finished cells are skipped, so a second call only
analyses), has each study's claims judged (`rdistill.analysis.claims`), and writes
`docs/results.md` with a JSON twin and the figures beside it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rdistill.analysis.claims import CORRELATION, MEASURE_LABEL, effect_text, judge_claims, relative_paths
from rdistill.analysis.plots import plot_effects
from rdistill.config import Recipe, load_recipe
from rdistill.data import write_json
from rdistill.data.io import atomic_path
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


def study_paths(names: tuple[str, ...], folder: Path = STUDY_DIR) -> list[Path]:
    """The recipe files of the named studies."""
    return [folder / f"{name}.yaml" for name in names]


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
    return {
        "recipe": path.as_posix(),
        "run_dir": parent.as_posix(),
        "base": recipe.base.micro.kind if recipe.base.student == "micro" else recipe.base.student,
        "header": recipe_header(path),
        "groups": group_table(parent),
        "stage_seconds": stage_seconds(parent),
        "claims": judge_claims(recipe, parent, figures),
    }


def recipe_header(path: Path) -> str:
    """The recipe's leading comment: what the study varies, holds fixed and how it is judged."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else the architecture: results move between CPUs."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.machine()


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
        study = analyse_study(recipe, path, parent, figures / recipe.name)
        studies.append(study | {"wall_seconds": time.perf_counter() - started if run else None})
    rows = [part for study in studies for claim in study["claims"] for part in claim["parts"]]
    defined = [row for row in rows if row["estimate"] is not None]
    effects = plot_effects(defined, figures / "claims.png") if defined else None
    results = {
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "studies": studies,
        "figure": effects,
    }
    results = relative_paths(results, out.parent)
    write_json(results, out.with_suffix(".json"))
    with atomic_path(out) as tmp:  # a failed rewrite leaves the previous page whole
        tmp.write_text(results_markdown(results))
    return results


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
    # Studies that share a run directory (valley and valley-rates) trained once.
    stage_total = sum({s["run_dir"]: s["stage_seconds"] for s in studies}.values())
    lines = [
        "# The papers' claims, measured in the micro-world",
        "",
        f"Written by `rdistill science` (`make science`) on {results['written']}, {results['machine']}. "
        f"Stage time of the studies: {stage_total / 60:.0f} min"
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
