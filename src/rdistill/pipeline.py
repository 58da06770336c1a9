"""Run a whole recipe: every stage in order, each skipped when its inputs and config are unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rdistill import curate, evaluate, generate, problems, report, teachers, train, verify
from rdistill.config import Recipe
from rdistill.data import atomic_path

STAGES = ("problems", "generate", "verify", "teachers", "curate", "train", "evaluate", "report")


def save_resolved_recipe(recipe: Recipe, run_dir: Path) -> None:
    """Write the recipe with every default filled in, so a run directory documents itself."""
    with atomic_path(Path(run_dir) / "recipe.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))


def run_one(stage: str, recipe: Recipe, run_dir: Path, force: bool = False, console=None, base_answers_from: Path | None = None) -> dict[str, Any]:
    """Run one stage of `recipe` in `run_dir`; the CLI's stage commands call this too.

    `base_answers_from`: a run whose base student was evaluated the same way (a sweep's earlier
    cell); `evaluate` links its graded base answers instead of answering again.
    """
    log = console.print if console is not None else print
    if stage == "problems":
        return problems.run(recipe.problems, run_dir, force, log)
    if stage == "generate":
        return generate.run(recipe.generate, run_dir, force, log, console)
    if stage == "verify":
        return verify.run(recipe.verify, run_dir, force, log, console)
    if stage == "teachers":
        student = train.resolve_base(recipe.train, console) if recipe.teachers.perplexity_traces or recipe.teachers.choose == "proxy" else None
        return teachers.run(recipe.teachers, run_dir, student, force, log, console)
    if stage == "curate":
        return curate.run(recipe.curate, run_dir, force, log)
    if stage == "train":
        return train.run(recipe.train, run_dir, force, log, console)
    if stage == "evaluate":
        base = train.resolve_base(recipe.train, console)
        return evaluate.run(recipe.evaluate, run_dir, base, force, log, console, base_answers_from)
    if stage == "report":
        return report.run(recipe.report, run_dir, force, log)
    raise ValueError(f"unknown stage {stage!r}")


def run_recipe(recipe: Recipe, run_dir: Path | None = None, force: bool = False, console=None) -> Path:
    """Run every stage of `recipe`; returns the run directory."""
    run_dir = Path(run_dir or recipe.resolved_run_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    save_resolved_recipe(recipe, run_dir)
    for stage in STAGES:
        if console is not None:
            console.rule(f"[bold]{stage}")
        run_one(stage, recipe, run_dir, force, console)
    return run_dir
