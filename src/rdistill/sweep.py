"""`rdistill sweep`: a grid of curate + train + evaluate cells over recipe overrides.

The parent run directory holds the problems, rollouts, verdicts and teacher choice, made once;
each cell is a sub-run in `sweep/CELL/` that links to those files and runs the last three stages
with its overrides. A cell's stages skip or resume through its own manifest, so an interrupted
sweep picks up where it stopped and finished cells cost nothing. The base student is answered
once: a cell whose base evaluation would be the same as an earlier cell's links that cell's
graded base answers (`eval/parts/base/`) instead. `sweep/summary.json` gives,
per group of cells that differ only in seed, the mean and spread of in-domain and
out-of-domain accuracy.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.table import Table

from rdistill.config import Recipe, SweepOptions
from rdistill.data import GROUPS, write_json
from rdistill.data.manifest import StageContext
from rdistill.errors import RecipeError
from rdistill.signals.study import truth_by_seed, validate_signals

SWEEP_DIR = "sweep"
SUMMARY = "sweep/summary.json"
SHARED_FILES = ("problems.parquet", "base.json", "verified.parquet", "teachers.json", "teacher_signals.parquet")
UPSTREAM_STAGES = ("problems", "base", "generate", "verify", "teachers")
CELL_STAGES = ("curate", "train", "evaluate")
VARIABLE_SECTIONS = ("curate", "train", "evaluate")
# A grid over this key distils on each teacher alone: the teacher-choice study's ground truth.
TEACHER_KEY = "curate.teacher"


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its overrides (dotted recipe keys) and seed."""

    group: str
    overrides: tuple[tuple[str, Any], ...]
    seed: int | None

    @property
    def name(self) -> str:
        """The sub-run directory's name: the group, then the seed."""
        return self.group if self.seed is None else f"{self.group}-seed{self.seed}"


def _label(value: Any) -> str:
    return re.sub(
        r"[^A-Za-z0-9_.=+-]+", "_", json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    )


def cells(options: SweepOptions) -> list[Cell]:
    """Every cell: seeds x variants x grid combinations (an empty sweep has none)."""
    if not (options.variants or options.grid or options.seeds):
        return []
    variants = list(options.variants.items()) or [("", {})]
    keys = sorted(options.grid)
    combinations = list(itertools.product(*(options.grid[key] for key in keys)))
    seeds: list[int | None] = list(options.seeds) or [None]
    result = []
    # Seed outermost: a sweep stopped early has every variant at its first seeds.
    for seed, (variant, overrides), values in itertools.product(seeds, variants, combinations):
        grid_part = [f"{key.split('.')[-1]}={_label(value)}" for key, value in zip(keys, values, strict=False)]
        group = "-".join(part for part in [variant, *grid_part] if part) or "cell"
        result.append(Cell(group, tuple(sorted(overrides.items())) + tuple(zip(keys, values, strict=False)), seed))
    return result


def _set_key(tree: dict[str, Any], dotted: str, value: Any, origin: str) -> None:
    *parents, last = dotted.split(".")
    if not parents or parents[0] not in VARIABLE_SECTIONS:
        sections = ", ".join(s + ".*" for s in VARIABLE_SECTIONS)
        raise RecipeError(
            f"{origin}: a cell reuses the parent's problems, rollouts and verdicts; only {sections} may vary"
        )
    node = tree
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise RecipeError(f"{origin}: {part!r} is not a section of the recipe")
        node = node[part]
    if last not in node:
        raise RecipeError(f"{origin}: unknown key {last!r}")
    node[last] = value


def cell_recipe(recipe: Recipe, cell: Cell, parent: Path) -> Recipe:
    """The parent recipe with the cell's overrides and seed, writing into the cell's sub-run directory."""
    tree = recipe.model_dump(mode="json")
    for key, value in cell.overrides:
        _set_key(tree, key, value, f"sweep: {key}")
    if cell.seed is not None:
        tree["curate"]["seed"] = cell.seed
        tree["train"]["sft"]["seed"] = cell.seed
    tree.update(name=cell.name, run_dir=str(parent / SWEEP_DIR / cell.name), sweep={})
    try:
        return Recipe.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RecipeError(f"sweep cell {cell.name}: invalid overrides ({problems})") from exc


def link_shared_files(parent: Path, cell_dir: Path) -> None:
    """Point the cell's problems, verdicts and teacher choice at the parent's (relative symlinks)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    for name in SHARED_FILES:
        link = cell_dir / name
        if not link.is_symlink():
            if link.exists():
                link.unlink()
            link.symlink_to(os.path.relpath(parent / name, cell_dir))


def base_answers_key(recipe: Recipe) -> str:
    """What the base student's graded answers depend on: the base itself and how it is asked and graded."""
    asked = recipe.evaluate.model_dump(
        mode="json", include={"sampling", "samples_per_problem", "batch_size", "benchmarks", "grading"}
    )
    base = recipe.base.model_dump(mode="json")
    return json.dumps([asked, base], sort_keys=True)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def cell_result(cell: Cell, cell_dir: Path) -> dict[str, Any]:
    """The distilled student's accuracies in one finished cell, with its in-domain and out-of-domain means."""
    summary = json.loads((cell_dir / "eval" / "summary.json").read_text())
    accuracy = {bench: scores["accuracy"] for bench, scores in summary["students"]["distilled"].items()}
    examples = sum(1 for _ in (cell_dir / "sft.jsonl").open())
    return {
        "name": cell.name,
        "group": cell.group,
        "seed": cell.seed,
        "overrides": dict(cell.overrides),
        "examples": examples,
        "accuracy": accuracy,
        "base_accuracy": {bench: scores["accuracy"] for bench, scores in summary["students"]["base"].items()},
    } | {
        group: statistics.fmean(accuracy[b] for b in summary[group]) if summary.get(group) else None for group in GROUPS
    }


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per group (cells differing only in seed): mean, standard deviation and range over seeds."""
    groups = []
    for group in dict.fromkeys(result["group"] for result in results):
        members = [result for result in results if result["group"] == group]
        entry: dict[str, Any] = {
            "group": group,
            "overrides": members[0]["overrides"],
            "seeds": [m["seed"] for m in members],
            "examples": _spread([m["examples"] for m in members]),
        }
        for measure in GROUPS:
            values = [m[measure] for m in members if m[measure] is not None]
            entry[measure] = _spread(values) if values else None
        entry["by_benchmark"] = {
            bench: _spread([m["accuracy"][bench] for m in members]) for bench in members[0]["accuracy"]
        }
        groups.append(entry)
    base = results[0]["base_accuracy"] if results else {}
    return {"cells": results, "groups": groups, "base": base}


def summary_table(summary: dict[str, Any]) -> Table:
    """The sweep's groups as a rich Table: accuracy mean ± sd over seeds, in and out of domain."""
    table = Table(title="Sweep: distilled accuracy (%), mean ± sd over seeds")
    for header in ("cells", "seeds", "examples", "in-domain", "out-of-domain"):
        table.add_column(header, justify="left" if header == "cells" else "right")
    for group in summary["groups"]:
        cells_text = [
            f"{100 * group[m]['mean']:.1f} ± {100 * group[m]['std']:.1f}" if group[m] else "–"
            for m in ("in_domain", "out_of_domain")
        ]
        table.add_row(group["group"], str(len(group["seeds"])), f"{group['examples']['mean']:,.0f}", *cells_text)
    return table


def signal_seconds(teachers: dict[str, Any]) -> dict[str, float | None]:
    """What each signal of teachers.json cost: the student passes, the proxy fine-tunes, nothing for the rest."""
    passes = (teachers.get("student_signals") or {}).get("seconds", {})
    proxy = teachers.get("proxy") or {}
    return {
        "accuracy": 0.0,
        "length_cv": 0.0,
        "diversity": 0.0,
        **passes,
        "proxy_gain": proxy.get("seconds"),
    }


def teacher_choice(parent: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The teacher-choice study: each signal of the parent's teachers.json against the cells that distilled on
    one teacher alone (`curate.teacher`), in-domain (the ground truth) and out-of-domain (retention)."""
    teachers = json.loads((parent / "teachers.json").read_text())
    better = {name: entry["better"] for name, entry in teachers.get("signals", {}).items()}
    seconds = signal_seconds(teachers)
    return {
        measure: validate_signals(teachers["teachers"], better, truth, seconds)
        if (truth := truth_by_seed(results, TEACHER_KEY, measure))
        else []
        for measure in GROUPS
    }


def teacher_choice_table(rows: list[dict[str, Any]]) -> Table:
    """Per signal: Spearman with in-domain accuracy after distillation (mean and range over seeds), top-1, cost."""
    table = Table(title="Teacher choice: each signal against distillation on each teacher alone (in-domain)")
    for header in ("signal", "Spearman mean [min, max]", "top-1 hits", "its top teacher", "seconds"):
        table.add_column(header, justify="left" if header == "signal" else "right")
    for row in rows:
        rho = row["spearman"]
        table.add_row(
            row["signal"],
            f"{rho['mean']:+.2f} [{rho['min']:+.2f}, {rho['max']:+.2f}]" if rho else "–",
            f"{sum(row['top1_hits'].values())}/{len(row['top1_hits'])}",
            row["top1"],
            "–" if row["seconds"] is None else f"{row['seconds']:.1f}",
        )
    return table


def run_sweep(recipe: Recipe, run_dir: Path | None = None, force: bool = False, console=None) -> Path:
    """Run the parent's upstream stages once, then every cell, then write the summary and the report."""
    from rdistill.pipeline import run_one, save_resolved_recipe

    ctx = StageContext(force=force, console=console)

    grid = cells(recipe.sweep)
    if not grid:
        raise RecipeError("sweep: the recipe's sweep section is empty (give variants, grid or seeds)")
    parent = Path(run_dir or recipe.resolved_run_dir())
    recipes = [(cell, cell_recipe(recipe, cell, parent)) for cell in grid]
    parent.mkdir(parents=True, exist_ok=True)
    save_resolved_recipe(recipe, parent)
    if console is not None:
        console.rule(f"[bold]parent run: {', '.join(UPSTREAM_STAGES)}")
    for stage in UPSTREAM_STAGES:
        run_one(stage, recipe, parent, ctx)
    results, base_answered_in = [], {}
    for number, (cell, sub_recipe) in enumerate(recipes, start=1):
        cell_dir = parent / SWEEP_DIR / cell.name
        if console is not None:
            console.rule(f"[bold]cell {number}/{len(recipes)}: {cell.name}")
        link_shared_files(parent, cell_dir)
        base_key = base_answers_key(sub_recipe)
        save_resolved_recipe(sub_recipe, cell_dir)
        for stage in CELL_STAGES:
            run_one(stage, sub_recipe, cell_dir, replace(ctx, base_answers_from=base_answered_in.get(base_key)))
        if sub_recipe.evaluate.base:
            base_answered_in.setdefault(base_key, cell_dir)
        results.append(cell_result(cell, cell_dir))
    summary = summarise(results)
    if any(TEACHER_KEY in result["overrides"] for result in results):
        summary["teacher_choice"] = teacher_choice(parent, results)
        if console is not None:
            console.print(teacher_choice_table(summary["teacher_choice"]["in_domain"]))
    write_json(summary, parent / SUMMARY)
    run_one("report", recipe, parent, ctx)
    return parent
