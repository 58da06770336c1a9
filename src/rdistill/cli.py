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
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from rdistill.config import Recipe, ServeOptions, load_recipe
from rdistill.console import make_console, quiet_libraries
from rdistill.data.manifest import StageContext
from rdistill.errors import RdistillError, RecipeError
from rdistill.pipeline import STAGES, run_one, run_recipe

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Data-efficient reasoning distillation.")
console = make_console()

RecipeOption = Annotated[
    Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (default: the micro-world's defaults).")
]
RunDirOption = Annotated[
    Path | None, typer.Option("--run-dir", help="Run directory (default: the recipe's, runs/NAME).")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Rerun even if inputs and config are unchanged.")]


def _load(recipe_path: Path | None) -> Recipe:
    return load_recipe(recipe_path) if recipe_path is not None else Recipe(name="micro")


def _fail(error: RdistillError) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False)
    raise typer.Exit(code=2)


def _stage_command(stage: str, recipe_path: Path | None, run_dir: Path | None, force: bool) -> None:
    try:
        recipe = _load(recipe_path)
        quiet_libraries()
        directory = run_dir or recipe.resolved_run_dir()
        entry = run_one(stage, recipe, directory, StageContext(force=force, console=console))
    except RdistillError as error:
        _fail(error)
    if stage == "evaluate":
        _print_evaluation(directory)
    else:
        console.print(f"{stage}: {json.dumps(entry.get('counts', {}))}")


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


def _run_and_summarise(recipe: Recipe, run_dir: Path | None, force: bool) -> None:
    from rdistill.report import comparison_table

    started = time.perf_counter()
    try:
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
    _run_and_summarise(loaded, run_dir, force)


@app.command()
def sweep(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file with a `sweep:` section.")],
    run_dir: RunDirOption = None,
    force: ForceOption = False,
) -> None:
    """Run a grid of curate + train + evaluate cells (sweep/CELL/), skipping finished ones; write sweep/summary.json."""
    from rdistill.sweep import SUMMARY, run_sweep, summary_table

    started = time.perf_counter()
    try:
        loaded = load_recipe(recipe)
        quiet_libraries()
        directory = run_sweep(loaded, run_dir, force, console)
    except RdistillError as error:
        _fail(error)
    console.rule("[bold]sweep")
    console.print(summary_table(json.loads((directory / SUMMARY).read_text())))
    elapsed = time.perf_counter() - started
    console.print(f"run directory: {directory}   report: {directory / 'report.html'}   wall time: {elapsed:.0f} s")


@app.command()
def demo(run_dir: RunDirOption = None, force: ForceOption = False) -> None:
    """Run the micro-world end to end on this machine's CPU and print base vs distilled."""
    _run_and_summarise(Recipe(name="micro"), run_dir, force)


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


def options_from_flags(model: type[BaseModel], given: dict[tuple[str, ...], Any]) -> BaseModel:
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
        raise RecipeError(f"invalid serve options: {problems}") from exc


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
        Path | None, typer.Argument(help="Local transformers model folder (not needed with --canned-tokens).")
    ],
)
serve.__signature__ = inspect.Signature([_model_dir, *(parameter for _, parameter in SERVE_FLAGS)])
app.command()(serve)


def main() -> None:
    """Entry point for `python -m rdistill`."""
    app(prog_name="rdistill")


if __name__ == "__main__":
    sys.exit(main())
