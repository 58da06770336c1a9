"""The pipeline: one table of stages, and a recipe run through them in order.

`STAGES` is the only table of stages (name -> module, recipe section, what it writes and does):
`run_one`, the CLI's stage commands and the README's table of commands are all made from it.
Every stage module exposes `run(options, run_dir, ctx)`, where `options` is the stage's section
of the recipe and `ctx` a `StageContext`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rdistill.config import Recipe
from rdistill.data import atomic_path
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its module (`rdistill.NAME`), its recipe section, what it writes and does."""

    name: str
    writes: str
    help: str

    @property
    def module(self) -> str:
        """The module whose `run(options, run_dir, ctx)` runs the stage."""
        return f"rdistill.{self.name}"

    @property
    def section(self) -> str:
        """The recipe section holding the stage's options."""
        return self.name


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "problems",
            "`problems.parquet`",
            "Build the problem pool (split train) and the held-out eval sets (split eval).",
        ),
        Stage(
            "base", "`base.json`", "Resolve the base student, or build and cache the micro-world's non-reasoning base."
        ),
        Stage(
            "generate",
            "`rollouts/TEACHER.jsonl`",
            "Sample teacher rollouts for every training problem, appended, each key once.",
        ),
        Stage(
            "verify",
            "`verified.parquet`",
            "Grade every rollout: math answers with Math-Verify, code tests in the sandbox.",
        ),
        Stage(
            "teachers",
            "`teachers.json`, `teacher_signals.parquet`",
            "Score the teachers (accuracy, length, diversity, student NLL, rank–surprisal, local naturalness, proxy "
            "gain) and choose.",
        ),
        Stage(
            "curate",
            "`sft.jsonl`, `selection.parquet`, `curation.json`",
            "Decontaminate, deduplicate, filter and select the training set, a reason for every rollout.",
        ),
        Stage(
            "train",
            "`student/`",
            "Fine-tune the base student on the curated set (TRL, loss on the assistant turn only).",
        ),
        Stage(
            "evaluate",
            "`eval/BENCH.parquet`, `eval/summary.json`",
            "Evaluate the students on the recipe's benchmarks and print the comparison.",
        ),
        Stage(
            "report",
            "`report.md`, `report.html`",
            "Write one self-contained page of tables and plots from the run directory.",
        ),
    )
}
# Commands beside the stages, for the README's table.
ENTRY_POINTS = (
    (
        "run RECIPE.yaml",
        "all of the above",
        "Every stage in order, skipping those whose inputs and config are unchanged.",
    ),
    ("demo", "`runs/micro/`", "`run` with the micro-world's defaults."),
    (
        "check RECIPE.yaml",
        "nothing",
        "Validate the recipe and every file it names (pool files row by row, benchmarks, training data, extra "
        "files, models), all problems at once; `run` and every stage command do this first.",
    ),
    (
        "plan RECIPE.yaml",
        "nothing",
        "Requests, tokens, training steps, GPU-hours and dollars per stage, before anything is spent.",
    ),
    ("init [PATH]", "`recipe.yaml`", "A commented starter recipe."),
    ("runs [DIR]", "nothing", "Every run under `runs/`: its recipe, stages done / failed / stale, in-domain scores."),
    (
        "sweep RECIPE.yaml",
        "`sweep/CELL/`, `sweep/upstream/`, `sweep/summary.json`",
        "A grid of curate + train + evaluate cells over any recipe keys, upstream stages shared where the overrides "
        "allow (see [Sweeps](#sweeps)).",
    ),
    (
        "science [RECIPES...]",
        "`docs/results.md`, `docs/results.json`, `docs/results/`",
        "The seven claims' study sweeps (finished cells skipped), each claim judged by its stated rule (see "
        "[The papers' claims](#the-papers-claims)).",
    ),
    (
        "serve MODEL_DIR",
        "nothing",
        "An OpenAI-compatible server over a local model (or canned replies, or injected faults).",
    ),
)


RECIPE_FILE = "recipe.yaml"


def save_resolved_recipe(recipe: Recipe, run_dir: Path) -> None:
    """Write the recipe with every default filled in, so a run directory documents itself."""
    with atomic_path(Path(run_dir) / RECIPE_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))


def run_one(name: str, recipe: Recipe, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Run one stage of `recipe` in `run_dir`; the CLI's stage commands call this too. Returns its manifest entry."""
    stage = STAGES.get(name)
    if stage is None:
        raise ValueError(f"unknown stage {name!r}")
    module = importlib.import_module(stage.module)
    return module.run(getattr(recipe, stage.section), Path(run_dir), ctx)


def run_recipe(recipe: Recipe, run_dir: Path | None = None, ctx: StageContext = DEFAULT_CONTEXT) -> Path:
    """Run every stage of `recipe`; returns the run directory."""
    run_dir = Path(run_dir or recipe.resolved_run_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    save_resolved_recipe(recipe, run_dir)
    for name in STAGES:
        if ctx.console is not None:
            ctx.console.rule(f"[bold]{name}")
        run_one(name, recipe, run_dir, ctx)
    return run_dir


def commands_markdown() -> str:
    """The README's table of commands, one row per stage and one per entry point."""
    rows = ["| command | writes | what it does |", "|---|---|---|"]
    rows += [f"| `rdistill {stage.name}` | {stage.writes} | {stage.help} |" for stage in STAGES.values()]
    rows += [f"| `rdistill {name}` | {writes} | {what} |" for name, writes, what in ENTRY_POINTS]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(commands_markdown(), end="")
