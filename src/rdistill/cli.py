"""The `rdistill` command line: one command per stage, `run` for a whole recipe, `demo` for the micro-world.

Every command reads the same recipe; errors a user can cause exit with code 2 and a message
naming the file and key, with nothing written.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from rdistill.config import Recipe, load_recipe
from rdistill.console import make_console, quiet_libraries
from rdistill.errors import RdistillError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Data-efficient reasoning distillation.")
console = make_console()

RecipeOption = Annotated[Optional[Path], typer.Option("--recipe", "-r", help="Recipe YAML (default: the micro-world's defaults).")]
RunDirOption = Annotated[Optional[Path], typer.Option("--run-dir", help="Run directory (default: the recipe's, runs/NAME).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Rerun even if inputs and config are unchanged.")]


def _load(recipe_path: Path | None) -> Recipe:
    return load_recipe(recipe_path) if recipe_path is not None else Recipe(name="micro")


def _fail(error: RdistillError) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False)
    raise typer.Exit(code=2)


def _stage_command(stage: str, recipe_path: Path | None, run_dir: Path | None, force: bool) -> None:
    from rdistill.pipeline import run_one

    try:
        recipe = _load(recipe_path)
        quiet_libraries()
        entry = run_one(stage, recipe, run_dir or recipe.resolved_run_dir(), force, console)
    except RdistillError as error:
        _fail(error)
    if stage == "evaluate":
        _print_evaluation(run_dir or recipe.resolved_run_dir())
    else:
        console.print(f"{stage}: {json.dumps(entry.get('counts', {}))}")


def _print_evaluation(run_dir: Path) -> None:
    """The comparison of the students with intervals, then every student's detailed scores."""
    from rdistill.report import comparison_table, scores_table

    summary = json.loads((Path(run_dir) / "eval" / "summary.json").read_text())
    console.print(comparison_table(summary))
    console.print(scores_table(summary))


def _register(stage: str, help_text: str) -> None:
    def command(recipe: RecipeOption = None, run_dir: RunDirOption = None, force: ForceOption = False) -> None:
        _stage_command(stage, recipe, run_dir, force)

    command.__doc__ = help_text
    app.command(name=stage, help=help_text)(command)


for _stage, _help in (
    ("problems", "Build the problem pool and held-out eval sets (problems.parquet)."),
    ("generate", "Sample teacher rollouts for every training problem (rollouts/*.jsonl)."),
    ("verify", "Grade every rollout: math answers and code tests (verified.parquet)."),
    ("teachers", "Score the teachers and choose whose traces to keep (teachers.json)."),
    ("curate", "Filter and select the training set (sft.jsonl, selection.parquet)."),
    ("train", "Fine-tune the student on the curated set (student/)."),
    ("evaluate", "Evaluate the students on the recipe's benchmarks and print the comparison (eval/)."),
    ("report", "Write report.md and report.html from the run directory."),
):
    _register(_stage, _help)


def _run_and_summarise(recipe: Recipe, run_dir: Path | None, force: bool) -> None:
    from rdistill.pipeline import run_recipe
    from rdistill.report import comparison_table

    started = time.perf_counter()
    try:
        quiet_libraries()
        directory = run_recipe(recipe, run_dir, force, console)
    except RdistillError as error:
        _fail(error)
    summary = json.loads((directory / "eval" / "summary.json").read_text())
    console.rule("[bold]result")
    console.print(comparison_table(summary))
    console.print(f"run directory: {directory}   report: {directory / 'report.html'}   wall time: {time.perf_counter() - started:.0f} s")


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
    console.print(f"run directory: {directory}   report: {directory / 'report.html'}   wall time: {time.perf_counter() - started:.0f} s")


@app.command()
def demo(run_dir: RunDirOption = None, force: ForceOption = False) -> None:
    """Run the micro-world end to end on this machine's CPU and print base vs distilled."""
    _run_and_summarise(Recipe(name="micro"), run_dir, force)


@app.command()
def serve(
    model_dir: Annotated[Optional[Path], typer.Argument(help="Local transformers model folder (not needed with --canned-tokens).")] = None,
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000; 0 picks a free one).")] = None,
    model_name: Annotated[Optional[str], typer.Option(help="Model name to answer to (default: the folder's name).")] = None,
    api_key_env: Annotated[Optional[str], typer.Option(help="Environment variable holding the key clients must send.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Most concurrent requests generated in one batch.")] = None,
    reasoning_field: Annotated[Optional[str], typer.Option(help="reasoning_content, reasoning or none.")] = None,
    canned_tokens: Annotated[Optional[int], typer.Option(help="Canned mode: answer with this many tokens, no model.")] = None,
    canned_delay: Annotated[Optional[float], typer.Option(help="Canned mode: seconds per answer.")] = None,
    fault_rate_limit: Annotated[Optional[float], typer.Option(help="Share of requests answered 429.")] = None,
    retry_after: Annotated[Optional[float], typer.Option(help="Seconds the 429 answers ask clients to wait.")] = None,
    fault_server_error: Annotated[Optional[float], typer.Option(help="Share answered 500.")] = None,
    fault_hang: Annotated[Optional[float], typer.Option(help="Share held for --hang-s before answering.")] = None,
    hang_s: Annotated[Optional[float], typer.Option(help="Seconds a hung request is held.")] = None,
    fault_malformed: Annotated[Optional[float], typer.Option(help="Share answered with a body that is not JSON.")] = None,
    fault_disconnect: Annotated[Optional[float], typer.Option(help="Share whose connection is closed mid-answer.")] = None,
    revoke_after: Annotated[Optional[int], typer.Option(help="Answer 401 after this many completions.")] = None,
    fault_seed: Annotated[Optional[int], typer.Option(help="Seed of the fault draws.")] = None,
    ignore_n: Annotated[Optional[bool], typer.Option("--ignore-n", help="Answer one choice whatever n asks.")] = None,
) -> None:
    """Serve a local model (or canned replies) as an OpenAI-compatible API, optionally injecting faults."""
    from rdistill.serve import serve as run_server, serve_options

    flags = {"host": host, "port": port, "model_name": model_name, "api_key_env": api_key_env, "batch_size": batch_size,
             "reasoning_field": reasoning_field, "canned_tokens": canned_tokens, "canned_delay_s": canned_delay}
    faults = {"rate_limit": fault_rate_limit, "retry_after_s": retry_after, "server_error": fault_server_error, "hang": fault_hang,
              "hang_s": hang_s, "malformed": fault_malformed, "disconnect": fault_disconnect, "revoke_after": revoke_after, "seed": fault_seed, "ignore_n": ignore_n}
    try:
        run_server(model_dir, serve_options(flags, faults), announce=lambda line: print(line, flush=True))
    except RdistillError as error:
        _fail(error)


def main() -> None:
    """Entry point for `python -m rdistill`."""
    app(prog_name="rdistill")


if __name__ == "__main__":
    sys.exit(main())
