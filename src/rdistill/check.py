"""`rdistill check`: everything a recipe names, validated before any stage runs.

A stage that fails on a bad file hours into a run wastes the GPU-hours before it; so `run`,
every stage command and `rdistill check` first read every file the recipe names (problem pool
files row by row, benchmark files, training-stage data, decontamination files, model folders)
and every stage's settings, collect all the problems at once and stop with one error (exit 2)
before anything is written.
It reads stage modules' own validators, so it is an entry point, not a component.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rdistill.config import (
    BaseOptions,
    BenchmarkSpec,
    CurateOptions,
    EvaluateOptions,
    GenerateOptions,
    ProblemsOptions,
    Recipe,
    TrainOptions,
)
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


def benchmark_problems(specs: list[tuple[BenchmarkSpec, str]]) -> list[str]:
    """Every local benchmark file (spec, recipe key): it exists, parses, is not empty, each row has its fields."""
    from rdistill.data.benchmarks import duplicate_ids, file_rows, validate_rows

    problems = []
    for spec, where in specs:
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


def decontamination_benchmark_problems(options: CurateOptions, evaluate: EvaluateOptions) -> list[str]:
    """The benchmarks curation decontaminates against, those not already checked as evaluate.benchmarks."""
    specs = (options.decontaminate.benchmarks or []) if options.decontaminate.enabled else []
    return benchmark_problems(
        [
            (spec, f"curate.decontaminate.benchmarks[{index}]")
            for index, spec in enumerate(specs)
            if spec not in evaluate.benchmarks
        ]
    )


def pool_problems(options: ProblemsOptions, evaluate: EvaluateOptions, network: bool = False) -> list[str]:
    """Every row of a file pool (with `network`, of a hub pool too), read and checked as the problems stage will.

    The micro-format benchmarks of such a pool are its held-out rows: each needs some of its domain.
    """
    from rdistill.data.pools import pool_problems as read_pool

    if options.source == "micro" or (options.source == "hub" and not network):
        return []
    try:
        pool, problems = read_pool(options)
    except RdistillError as error:
        return [str(error)]
    held_out = {(problem["split"], problem["domain"]) for problem in pool}
    for index, spec in enumerate(evaluate.benchmarks):
        domain = spec.domain or spec.name
        if spec.format == "micro" and (spec.split, domain) not in held_out and not problems:
            problems.append(
                f"evaluate.benchmarks[{index}]: the pool holds no {spec.split} problems of domain {domain!r} "
                "(give a source eval_size, eval_path or eval_split, or a benchmark with a path)"
            )
    return _capped(problems)


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
    """Every problem of the recipe and the files it names (with `endpoints`, its servers and hub pool too).

    Empty when it can run.
    """
    from rdistill.evaluate import check_options
    from rdistill.generate import check_teachers

    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        return [f"--run-dir: {run_dir} is a file, not a run directory"]
    return [
        *_guarded(lambda: check_teachers(recipe.generate)),
        *_guarded(lambda: check_options(recipe.evaluate)),
        *pool_problems(recipe.problems, recipe.evaluate, network=endpoints),
        *benchmark_problems([(spec, f"evaluate.benchmarks[{i}]") for i, spec in enumerate(recipe.evaluate.benchmarks)]),
        *decontamination_benchmark_problems(recipe.curate, recipe.evaluate),
        *train_data_problems(recipe.train, run_dir),
        *extra_file_problems(recipe.curate),
        *model_problems(recipe.base, recipe.generate, recipe.evaluate),
        *(endpoint_problems(recipe.generate, recipe.evaluate) if endpoints else []),
    ]


def check_recipe(recipe: Recipe, run_dir: Path, source: str = "recipe", endpoints: bool = False) -> None:
    """Raise one RecipeError listing every problem `recipe_problems` finds; nothing is written either way.

    `endpoints` asks every server and reads a hub pool too: `run` and `check` do, before hours of
    other stages; a stage command needs not, since `generate` and `evaluate` run the same
    preflight as they start, and `problems` reads its pool with the same checks.
    """
    problems = recipe_problems(recipe, run_dir, endpoints)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise RecipeError(f"{source}: {count} found before any stage ran (nothing was written):\n{listed}")
