"""`rdistill check`: everything a recipe names, validated before any stage runs.

A stage that fails on a bad file hours into a run wastes the GPU-hours before it; so `run`,
every stage command and `rdistill check` first read every file the recipe names (benchmark
files, training-stage data, decontamination files, model folders) and every stage's settings,
collect all the problems at once and stop with one error (exit 2) before anything is written.
It reads stage modules' own validators, so it is an entry point, not a component.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rdistill.config import BaseOptions, CurateOptions, EvaluateOptions, GenerateOptions, Recipe, TrainOptions
from rdistill.errors import RdistillError, RecipeError

# Problems listed per file before the rest are counted: a file broken everywhere needs no thousand lines.
MAX_PER_FILE = 10
# Training data the pipeline writes itself (curate's output): absent before curate runs, and that is fine.
PIPELINE_DATA = "sft.jsonl"


def _guarded(check: Callable[[], object]) -> list[str]:
    """The message of the error `check` raises, as a list of problems (empty when it passes)."""
    try:
        check()
    except RdistillError as error:
        return [str(error)]
    return []


def _capped(errors: list[str]) -> list[str]:
    extra = len(errors) - MAX_PER_FILE
    return errors[:MAX_PER_FILE] + ([f"... and {extra} more in the same file"] if extra > 0 else [])


def benchmark_problems(options: EvaluateOptions) -> list[str]:
    """Every local benchmark file: it exists, parses, is not empty, and each row has its format's fields."""
    from rdistill.evaluate.benchmarks import duplicate_ids, file_rows, validate_rows

    problems = []
    for index, spec in enumerate(options.benchmarks):
        where = f"evaluate.benchmarks[{index}]"
        if spec.format == "micro":
            continue
        if not spec.path and not spec.hub:
            problems.append(f"{where}: format {spec.format!r} needs a local `path` or a `hub` dataset name")
            continue
        if not spec.path:
            continue  # A hub dataset needs the network; it is read when the stage runs.
        try:
            source, rows, lines = file_rows(spec, where)
        except RdistillError as error:
            problems.append(str(error))
            continue
        converted, errors = validate_rows(rows, spec, source, lines)
        kept = converted[: spec.limit] if spec.limit else converted
        problems += _capped(errors or duplicate_ids(kept, source, lines))
    return problems


def train_data_problems(options: TrainOptions, run_dir: Path) -> list[str]:
    """Every training stage's data file (each row a conversation with an assistant turn), and distinct stage names."""
    from rdistill.train import check_stage_names, stage_data_problems

    schedule = options.schedule()
    problems = _guarded(lambda: check_stage_names(schedule))
    for index, stage in enumerate(schedule):
        path = Path(run_dir) / stage.data
        if not path.exists():
            if stage.data != PIPELINE_DATA:
                problems.append(f"train.stages[{index}].data: {path} not found")
            continue
        try:
            problems += _capped(stage_data_problems(Path(run_dir), stage)[1])
        except RdistillError as error:
            problems.append(str(error))
    return problems


def extra_file_problems(options: CurateOptions) -> list[str]:
    """Every decontamination file: it exists, parses, and each row has a text field."""
    from rdistill.curate.decontaminate import benchmark_file_problems

    problems = []
    for path in options.decontaminate.extra_files:
        if not Path(path).is_file():
            problems.append(f"curate.decontaminate.extra_files: {path} not found")
            continue
        try:
            problems += _capped(benchmark_file_problems(Path(path), options.decontaminate.text_fields)[1])
        except RdistillError as error:
            problems.append(str(error))
    return problems


def model_problems(base: BaseOptions, generate: GenerateOptions, evaluate: EvaluateOptions) -> list[str]:
    """Local model folders the recipe names (the base student, 'hf' teachers and students) hold a checkpoint."""
    from rdistill.base import local_model
    from rdistill.models import is_gguf

    problems = [] if base.student == "micro" else _guarded(lambda: local_model(base))
    specs = [(spec, f"generate.teachers[{i}]") for i, spec in enumerate(generate.teachers)]
    specs += [(spec, f"evaluate.students[{i}]") for i, spec in enumerate(evaluate.students)]
    for spec, where in specs:
        folder = Path(spec.model or spec.name)
        if spec.backend == "hf" and is_gguf(folder):
            if not folder.is_file():
                problems.append(f"{where}.model: {folder} not found (a .gguf model must be a local file)")
        elif spec.backend == "hf" and not (folder / "config.json").exists():
            problems.append(f"{where}.model: {folder} is not a model folder (no config.json) nor a .gguf file")
    return problems


def endpoint_problems(generate: GenerateOptions, evaluate: EvaluateOptions) -> list[str]:
    """Every served model ('openai' backend): its key is set, an endpoint answers and serves the model.

    The backend's own preflight (a model listing per endpoint, seconds), run before the first stage
    rather than when `generate` or `evaluate` reaches it.
    """
    from rdistill.backends.openai import OpenAIBackend

    specs = [(spec, f"generate.teachers[{i}]") for i, spec in enumerate(generate.teachers)]
    specs += [(spec, f"evaluate.students[{i}]") for i, spec in enumerate(evaluate.students)]
    return [
        problem
        for spec, where in specs
        if spec.backend == "openai"
        for problem in _guarded(lambda spec=spec, where=where: OpenAIBackend(spec, where).check_endpoints())
    ]


def recipe_problems(recipe: Recipe, run_dir: Path, endpoints: bool = False) -> list[str]:
    """Every problem of the recipe and the files it names (with `endpoints`, of its servers); empty when it can run."""
    from rdistill.evaluate import check_options
    from rdistill.generate import check_teachers

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        return [f"--run-dir: {run_dir} is a file, not a run directory"]
    return [
        *_guarded(lambda: check_teachers(recipe.generate)),
        *_guarded(lambda: check_options(recipe.evaluate)),
        *benchmark_problems(recipe.evaluate),
        *train_data_problems(recipe.train, run_dir),
        *extra_file_problems(recipe.curate),
        *model_problems(recipe.base, recipe.generate, recipe.evaluate),
        *(endpoint_problems(recipe.generate, recipe.evaluate) if endpoints else []),
    ]


def check_recipe(recipe: Recipe, run_dir: Path, source: str = "recipe", endpoints: bool = False) -> None:
    """Raise one RecipeError listing every problem `recipe_problems` finds; nothing is written either way.

    `endpoints` asks every server too: `run` and `check` do, before hours of other stages; a stage
    command needs not, since `generate` and `evaluate` run the same preflight as they start.
    """
    problems = recipe_problems(recipe, run_dir, endpoints)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise RecipeError(f"{source}: {count} found before any stage ran (nothing was written):\n{listed}")
