"""`rdistill sweep`: a grid of cells over recipe overrides, each a curate + train + evaluate sub-run.

A cell may override any recipe key. The upstream stages (problems, base, generate, verify,
teachers) run once per distinct set of the overrides they read (`STAGE_SECTIONS`): with none,
in the parent run directory as in a plain run; otherwise in `sweep/upstream/LABEL/`, which links
the files of the stages it does not redo. A grid over `teachers.choose` thus reruns only the
teachers stage, once per value, on one set of problems, rollouts and verdicts. Each cell is a
sub-run in `sweep/CELL/` that links the upstream files its overrides select and runs the last
three stages. Every stage skips or resumes through its own directory's manifest, and links are
re-pointed on every run, so an interrupted sweep picks up where it stopped, finished cells cost
nothing, and a changed override never reads another key's files. The base student is answered
once per way of asking it: a cell whose base evaluation would be the same as an earlier cell's
links that cell's graded base answers (`eval/parts/base/`). `sweep/summary.json` gives, per group
of cells that differ only in seed, the mean and spread of in-domain and out-of-domain accuracy.
Cells may run in parallel worker processes (`jobs`), or one per command (`only`, for a
scheduler: `sweep_commands`), the upstream stages then guarded by a lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import shlex
import shutil
import statistics
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.table import Table

from rdistill.config import Recipe, SweepOptions
from rdistill.data import GROUPS, write_json
from rdistill.data.manifest import StageContext, read_manifest
from rdistill.errors import RecipeError
from rdistill.pipeline import run_one, save_resolved_recipe
from rdistill.signals.study import truth_by_seed, validate_signals

SWEEP_DIR = "sweep"
UPSTREAM_DIR = "sweep/upstream"
SUMMARY = "sweep/summary.json"
CLAIMS = "sweep/claims.json"
CLAIM_FIGURES = "sweep/figures"
# Held while upstream stages run, so that concurrent `--cell` commands do not run one stage twice at once.
UPSTREAM_LOCK = "sweep/.upstream.lock"
UPSTREAM_STAGES = ("problems", "base", "generate", "verify", "teachers")
CELL_STAGES = ("curate", "train", "evaluate")
# The recipe sections each upstream stage's outputs depend on: its own and those of the stages whose files it
# reads (generate reads problems.parquet; verify the rollouts; teachers the verdicts, the problems and base.json).
STAGE_SECTIONS = {
    "problems": ("problems",),
    "base": ("base",),
    "generate": ("problems", "generate"),
    "verify": ("problems", "generate", "verify"),
    "teachers": ("problems", "base", "generate", "verify", "teachers"),
}
STAGE_FILES = {
    "problems": ("problems.parquet",),
    "base": ("base.json",),
    "generate": ("rollouts",),
    "verify": ("verified.parquet",),
    "teachers": ("teachers.json", "teacher_signals.parquet"),
}
STAGE_INPUTS = {
    "problems": (),
    "base": (),
    "generate": ("problems",),
    "verify": ("problems", "generate"),
    "teachers": ("problems", "base", "verify"),
}
# The upstream stages whose files a cell's curate, train and evaluate read.
CELL_INPUTS = ("problems", "base", "verify", "teachers")
VARIABLE_SECTIONS = (*UPSTREAM_STAGES, *CELL_STAGES)
# A grid over this key distils on each teacher alone: the teacher-choice study's ground truth.
TEACHER_KEY = "curate.teacher"

Overrides = tuple[tuple[str, Any], ...]


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
        raise RecipeError(f"{origin}: a cell may vary {sections}")
    node = tree
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise RecipeError(f"{origin}: {part!r} is not a section of the recipe")
        node = node[part]
    if last not in node:
        raise RecipeError(f"{origin}: unknown key {last!r}")
    node[last] = value


def _with_overrides(recipe: Recipe, overrides: Overrides, seed: int | None, name: str, run_dir: Path) -> Recipe:
    """The parent recipe with `overrides` and `seed` applied, writing into `run_dir`, without a sweep of its own."""
    tree = recipe.model_dump(mode="json")
    for key, value in overrides:
        _set_key(tree, key, value, f"sweep: {key}")
    if seed is not None:
        tree["curate"]["seed"] = seed
        tree["train"]["sft"]["seed"] = seed
        for stage in tree["train"]["stages"]:
            stage["sft"]["seed"] = seed
    tree.update(name=name, run_dir=str(run_dir), sweep={})
    try:
        return Recipe.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RecipeError(f"sweep {name}: invalid overrides ({problems})") from exc


def cell_recipe(recipe: Recipe, cell: Cell, parent: Path) -> Recipe:
    """The parent recipe with the cell's overrides and seed, writing into the cell's sub-run directory."""
    return _with_overrides(recipe, cell.overrides, cell.seed, cell.name, parent / SWEEP_DIR / cell.name)


def stage_key(stage: str, overrides: Overrides) -> Overrides:
    """The overrides an upstream stage's outputs depend on: those of the sections it and its inputs read."""
    return tuple((key, value) for key, value in overrides if key.split(".")[0] in STAGE_SECTIONS[stage])


def upstream_key(cell: Cell) -> Overrides:
    """The cell's overrides of upstream sections (a seed never reaches upstream: it sets curate and train seeds)."""
    return stage_key("teachers", cell.overrides)


def upstream_label(key: Overrides) -> str:
    """A deterministic directory name for an upstream key: readable, and a hash so that labels never collide."""
    readable = "-".join(f"{dotted}={_label(value)}" for dotted, value in key)[:80]
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def upstream_dir(parent: Path, key: Overrides) -> Path:
    """Where the stages of an upstream key run: the parent itself without overrides, else sweep/upstream/LABEL."""
    return parent / UPSTREAM_DIR / upstream_label(key) if key else parent


@dataclass(frozen=True)
class UpstreamRun:
    """One upstream directory: its key and the stages some cell needs run there (the others it links)."""

    key: Overrides
    stages: tuple[str, ...]


def upstream_runs(grid: list[Cell]) -> list[UpstreamRun]:
    """Every upstream directory the cells need, each stage placed under the key its outputs depend on.

    Ordered by number of overrides, so that a run's linked inputs (keys with fewer overrides) come first.
    """
    placed: dict[str, tuple[Overrides, list[str]]] = {}
    for cell in grid:
        for stage in UPSTREAM_STAGES:
            key = stage_key(stage, upstream_key(cell))
            _, stages = placed.setdefault(json.dumps(key, sort_keys=True), (key, []))
            if stage not in stages:
                stages.append(stage)
    runs = [UpstreamRun(key, tuple(s for s in UPSTREAM_STAGES if s in stages)) for key, stages in placed.values()]
    return sorted(runs, key=lambda run: len(run.key))


def link_files(source: Path, target: Path, names: tuple[str, ...]) -> None:
    """Point `target`'s files at `source`'s (relative symlinks), replacing whatever stood there before."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        link, wanted = target / name, os.path.relpath(source / name, target)
        if link.is_symlink() and os.readlink(link) == wanted:
            continue
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        elif link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(wanted)


def link_shared_files(parent: Path, cell: Cell, cell_dir: Path) -> None:
    """Point the cell's problems, base, verdicts and teacher choice at the upstream runs of its key."""
    for stage in CELL_INPUTS:
        link_files(upstream_dir(parent, stage_key(stage, upstream_key(cell))), cell_dir, STAGE_FILES[stage])


@contextmanager
def upstream_lock(parent: Path) -> Iterator[None]:
    """Hold an exclusive lock on the sweep's upstream stages (one process runs them, the others wait, then skip)."""
    path = parent / UPSTREAM_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_upstream(recipe: Recipe, parent: Path, runs: list[UpstreamRun], ctx: StageContext) -> None:
    """Run each upstream directory's own stages, after linking the inputs other keys' directories hold."""
    with upstream_lock(parent):
        for run in runs:
            directory = upstream_dir(parent, run.key)
            if ctx.console is not None:
                where = f"upstream {upstream_label(run.key)}" if run.key else "parent run"
                ctx.console.rule(f"[bold]{where}: {', '.join(run.stages)}")
            sub_recipe = recipe if not run.key else _with_overrides(recipe, run.key, None, directory.name, directory)
            directory.mkdir(parents=True, exist_ok=True)
            if run.key:
                save_resolved_recipe(sub_recipe, directory)
            for stage in run.stages:
                for needed in STAGE_INPUTS[stage]:
                    key = stage_key(needed, run.key)
                    if key != run.key:
                        link_files(upstream_dir(parent, key), directory, STAGE_FILES[needed])
                run_one(stage, sub_recipe, directory, ctx)


def base_answers_key(recipe: Recipe) -> str:
    """What the base student's graded answers depend on: the base itself, how it is asked and graded, and the
    problems (the micro-world's eval sets are problems.parquet's eval split)."""
    asked = recipe.evaluate.model_dump(
        mode="json", include={"sampling", "samples_per_problem", "batch_size", "benchmarks", "grading"}
    )
    base = recipe.base.model_dump(mode="json")
    return json.dumps([asked, base, recipe.problems.model_dump(mode="json")], sort_keys=True)


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def cell_result(cell: Cell, cell_dir: Path, parent: Path) -> dict[str, Any]:
    """The distilled student's accuracies in one finished cell, with its in-domain and out-of-domain means, and
    the upstream directory its teacher choice came from (relative to the parent: `.` is the parent itself)."""
    summary = json.loads((cell_dir / "eval" / "summary.json").read_text())
    accuracy = {bench: scores["accuracy"] for bench, scores in summary["students"]["distilled"].items()}
    examples = sum(1 for _ in (cell_dir / "sft.jsonl").open())
    return {
        "name": cell.name,
        "group": cell.group,
        "seed": cell.seed,
        "overrides": dict(cell.overrides),
        "upstream": os.path.relpath(upstream_dir(parent, upstream_key(cell)), parent),
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


def teacher_choice(teachers_dir: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """The teacher-choice study: each signal of a teachers.json (the first cell's) against the cells that distilled
    on one teacher alone (`curate.teacher`), in-domain (the ground truth) and out-of-domain (retention)."""
    teachers = json.loads((teachers_dir / "teachers.json").read_text())
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


def run_cell(
    cell: Cell, sub_recipe: Recipe, parent: Path, ctx: StageContext, stages: tuple[str, ...] = CELL_STAGES
) -> None:
    """Link the cell's upstream files and run its curate, train and evaluate (or `stages`), each skipped when done."""
    cell_dir = parent / SWEEP_DIR / cell.name
    link_shared_files(parent, cell, cell_dir)
    save_resolved_recipe(sub_recipe, cell_dir)
    for stage in stages:
        run_one(stage, sub_recipe, cell_dir, ctx)


def base_leaders(recipes: list[tuple[Cell, Recipe]], parent: Path) -> dict[str, Path]:
    """Per cell name, the directory of the first cell that answers the base student the same way (itself included).

    A cell whose leader is another cell links that cell's graded base answers instead of answering again.
    """
    first: dict[str, Path] = {}
    leaders = {}
    for cell, sub_recipe in recipes:
        if sub_recipe.evaluate.base:
            leaders[cell.name] = first.setdefault(base_answers_key(sub_recipe), parent / SWEEP_DIR / cell.name)
    return leaders


def _base_source(cell: Cell, leaders: dict[str, Path], finished_only: bool) -> Path | None:
    """The cell whose base answers this cell links (None: it answers itself); `finished_only` when that cell may
    not have run yet (a lone `--cell` command), so that only complete answers are linked."""
    leader = leaders.get(cell.name)
    if leader is None or leader.name == cell.name:
        return None
    if finished_only and read_manifest(leader)["stages"].get("evaluate", {}).get("status") != "done":
        return None
    return leader


def _limit_threads(threads: int) -> None:
    """A worker's share of the cores, for torch and for the backends that read OMP_NUM_THREADS."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _cell_in_worker(
    cell: Cell, sub_recipe: Recipe, parent: Path, force: bool, base_from: Path | None, stages: tuple[str, ...]
) -> None:
    run_cell(cell, sub_recipe, parent, StageContext(force=force, base_answers_from=base_from), stages)


def run_cells(
    recipes: list[tuple[Cell, Recipe]], parent: Path, leaders: dict[str, Path], ctx: StageContext, jobs: int
) -> None:
    """Run every cell, in grid order in this process (one job), or in `jobs` spawned workers of cores/jobs threads.

    In parallel, every cell's curate and train run at once; a cell's evaluate waits for its own
    training and for the evaluation of the cell whose base answers it links, so that the base is
    answered once, as with one job. An error or a signal cancels the cells not yet started.
    """
    if jobs == 1:
        for cell, sub_recipe in recipes:
            if ctx.console is not None:
                ctx.console.rule(f"[bold]cell {cell.name}")
            run_cell(cell, sub_recipe, parent, replace(ctx, base_answers_from=_base_source(cell, leaders, False)))
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx.log(f"{len(recipes)} cells on {jobs} workers, {threads} torch thread(s) each")
    trained, evaluated, started = set(), set(), set()
    # Spawned, not forked: a fork of a process whose torch thread pool has run can hang in OpenMP.
    spawn = get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=spawn, initializer=_limit_threads, initargs=(threads,)) as pool:
        futures = {
            pool.submit(_cell_in_worker, cell, sub, parent, ctx.force, None, CELL_STAGES[:-1]): (cell.name, trained)
            for cell, sub in recipes
        }
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    name, finished = futures.pop(future)
                    finished.add(name)
                for cell, sub in recipes:
                    source = _base_source(cell, leaders, False)
                    if cell.name in trained - started and (source is None or source.name in evaluated):
                        started.add(cell.name)
                        future = pool.submit(_cell_in_worker, cell, sub, parent, ctx.force, source, CELL_STAGES[-1:])
                        futures[future] = (cell.name, evaluated)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _pick(recipes: list[tuple[Cell, Recipe]], name: str) -> tuple[Cell, Recipe]:
    for cell, sub_recipe in recipes:
        if cell.name == name:
            return cell, sub_recipe
    known = ", ".join(cell.name for cell, _ in recipes)
    raise RecipeError(f"sweep: no cell named {name!r} (cells: {known})")


def sweep_commands(recipe_file: Path, recipe: Recipe, parent: Path) -> list[str]:
    """Shell commands for a scheduler: the upstream stages, one command per cell (any order, at once), the summary.

    Each cell command runs on its own (it runs the upstream it lacks, under the upstream lock); the
    first command only spares the cells waiting on each other for that lock.
    """
    grid = cells(recipe.sweep)
    if not grid:
        raise RecipeError("sweep: the recipe's sweep section is empty (give variants, grid or seeds)")
    for cell in grid:
        cell_recipe(recipe, cell, parent)  # every cell's overrides valid before anything is handed out
    base = ["rdistill", "sweep", str(recipe_file), "--run-dir", str(parent)]
    return [
        "# upstream stages (run first; each cell command would otherwise run what it lacks itself)",
        shlex.join([*base, "--upstream"]),
        "# one command per cell, in any order or all at once",
        *(shlex.join([*base, "--cell", cell.name]) for cell in grid),
        "# once every cell is done: sweep/summary.json and the report (finished cells are skipped)",
        shlex.join(base),
    ]


def run_sweep(
    recipe: Recipe,
    run_dir: Path | None = None,
    force: bool = False,
    console=None,
    jobs: int = 1,
    only: str | None = None,
    upstream_only: bool = False,
) -> Path:
    """Run the upstream stages once per key, then every cell (or `only` that one), then write the summary and report.

    `jobs` cells run at once (`run_cells`); `upstream_only` stops after the upstream stages.
    """
    ctx = StageContext(force=force, console=console)
    grid = cells(recipe.sweep)
    if not grid:
        raise RecipeError("sweep: the recipe's sweep section is empty (give variants, grid or seeds)")
    parent = Path(run_dir or recipe.resolved_run_dir())
    recipes = [(cell, cell_recipe(recipe, cell, parent)) for cell in grid]
    chosen = [_pick(recipes, only)] if only else recipes
    parent.mkdir(parents=True, exist_ok=True)
    save_resolved_recipe(recipe, parent)
    run_upstream(recipe, parent, upstream_runs([cell for cell, _ in chosen]), ctx)
    if upstream_only:
        return parent
    leaders = base_leaders(recipes, parent)
    if only:
        cell, sub_recipe = chosen[0]
        run_cell(cell, sub_recipe, parent, replace(ctx, base_answers_from=_base_source(cell, leaders, True)))
        return parent
    run_cells(recipes, parent, leaders, ctx, jobs)
    write_summary(recipe, parent, grid, console)
    run_one("report", recipe, parent, ctx)
    return parent


def write_summary(recipe: Recipe, parent: Path, grid: list[Cell], console=None) -> None:
    """`sweep/summary.json` from the finished cells' files (whatever order or process they ran in)."""
    results = [cell_result(cell, parent / SWEEP_DIR / cell.name, parent) for cell in grid]
    summary = summarise(results)
    if any(TEACHER_KEY in result["overrides"] for result in results):
        summary["teacher_choice"] = teacher_choice(upstream_dir(parent, upstream_key(grid[0])), results)
        if console is not None:
            console.print(teacher_choice_table(summary["teacher_choice"]["in_domain"]))
    write_json(summary, parent / SUMMARY)
    if recipe.sweep.claims:
        write_claims(recipe, parent, console)


def write_claims(recipe: Recipe, parent: Path, console=None) -> None:
    """`sweep/claims.json`: each claim the recipe states, judged on the finished cells by its own rule, with
    its figures in sweep/figures/ (the report shows both; `rdistill science` gathers them across studies)."""
    from rdistill.analysis.claims import judge_claims, relative_paths

    claims = judge_claims(recipe, parent, parent / CLAIM_FIGURES)
    write_json(relative_paths(claims, parent), parent / CLAIMS)
    if console is not None:
        for claim in claims:
            console.print(f"{claim['id']}: [bold]{claim['verdict']}[/bold]")
