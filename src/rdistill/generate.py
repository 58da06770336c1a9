"""Stage `generate`: sample teacher rollouts for every training problem, resumably.

Rollouts are appended to `rollouts/TEACHER.jsonl`, one line per (problem, sample), as each
completion arrives. A rerun reads the keys already written (dropping a line torn by a kill)
and asks only for the rest, so each key is written exactly once however often the stage is
interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rdistill.backends import Completion, Request, make_backend
from rdistill.backends.micro import check_micro_teacher
from rdistill.backends.sampling_check import SamplingCheck, endpoint_of, print_warning, warning
from rdistill.config import GenerateOptions, ModelSpec
from rdistill.data import PROBLEM_COLUMNS, JsonlAppender, key_seed, read_jsonl, read_records
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import RecipeError

ROLLOUT_DIR = "rollouts"
# Fields of a teacher that change how requests travel, not what comes back: editing them (adding
# an endpoint, raising concurrency, adding vLLM replicas) resumes a run instead of discarding its rollouts.
TRANSPORT_FIELDS = {"base_urls", "api_key_env", "concurrency", "timeout_s", "retry", "batch_size", "ray"}


def finished_keys(path: Path) -> set[tuple[str, int]]:
    """(problem_id, sample_index) keys already in a rollout file; a torn last line is cut off."""
    if not path.exists():
        return set()
    return {(row["problem_id"], row["sample_index"]) for row in read_jsonl(path, tolerate_torn_tail=True)}


def training_problems(run_dir: Path) -> list[dict[str, Any]]:
    """The pool's training split from `problems.parquet`."""
    rows = read_records(Path(run_dir) / "problems.parquet", PROBLEM_COLUMNS)
    return [row for row in rows if row["split"] == "train"]


def rollout_row(teacher: str, completion: Completion) -> dict[str, Any]:
    """A line of `rollouts/TEACHER.jsonl` (docs/schema.md)."""
    request = completion.request
    return {
        "problem_id": request.problem["id"],
        "teacher": teacher,
        "sample_index": request.sample_index,
        "seed": request.seed,
        "messages": request.messages,
        "reasoning": completion.reasoning,
        "response": completion.response,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "latency_s": completion.latency_s,
        "error": completion.error,
        "retries": completion.retries,
    }


def pending_requests(
    teacher: ModelSpec, problems: list[dict[str, Any]], options: GenerateOptions, done: set[tuple[str, int]]
) -> list[Request]:
    """The requests of `teacher` whose keys are not written yet."""
    return [
        Request(
            problem,
            sample,
            key_seed(options.seed, problem["id"], teacher.name, sample),
            [{"role": "user", "content": problem["prompt"]}],
        )
        for problem in problems
        for sample in range(options.samples_per_problem)
        if (problem["id"], sample) not in done
    ]


def generation_progress(console) -> Progress:
    """A bar with requests/s, tokens/s, errors and retries so far, and the time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[rate]} req/s  {task.fields[tokens_per_s]} tok/s  errors {task.fields[errors]}  "
            "retries {task.fields[retries]}"
        ),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class ProgressTally:
    """Counts what the progress bar shows for one teacher."""

    def __init__(self, progress: Progress, description: str, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=total, rate="0", tokens_per_s="0", errors=0, retries=0)
        self.started = time.perf_counter()
        self.done = self.tokens = self.errors = self.retries = 0

    def add(self, completion: Completion) -> None:
        """Count one finished request."""
        self.done += 1
        self.tokens += completion.completion_tokens or 0
        self.errors += completion.finish_reason == "error"
        self.retries += completion.retries
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        fields = {
            "rate": f"{self.done / elapsed:.1f}",
            "tokens_per_s": f"{self.tokens / elapsed:.0f}",
            "errors": self.errors,
            "retries": self.retries,
        }
        self.progress.update(self.task, advance=1, **fields)


def generate_teacher(
    teacher: ModelSpec, where: str, requests: list[Request], options: GenerateOptions, path: Path, progress: Progress
) -> dict[str, Any] | None:
    """Run `requests` through the teacher's backend, appending each rollout to `path` as it arrives.

    Returns the sampling check's verdict (None when it does not apply), warning as soon as the
    first problems' samples show a backend that ignores sampling settings.
    """
    tally = ProgressTally(progress, f"generate {teacher.name}", len(requests))
    params = teacher.sampling or options.sampling
    check = SamplingCheck.for_requests(teacher, [request.problem["id"] for request in requests], params)
    sampling_key = f"{where}.sampling.temperature" if teacher.sampling else "generate.sampling.temperature"
    backend = make_backend(teacher, where)
    writer = JsonlAppender(path)

    def keep(completion: Completion) -> None:
        writer.write(rollout_row(teacher.name, completion))
        tally.add(completion)
        verdict = check.observe(completion.request.problem["id"], completion.text)
        if verdict and verdict["ignores_sampling"]:
            text = warning(verdict, where, endpoint_of(teacher), sampling_key, "generate.samples_per_problem")
            print_warning(progress.console, text)

    try:
        backend.generate(requests, params, keep)
    finally:
        writer.close()
        backend.close()
    return check.finish()


def generation_fingerprint(options: GenerateOptions) -> dict[str, Any]:
    """The options that decide what the rollouts contain (transport settings left out) for the manifest's hash."""
    payload = options.model_dump(mode="json")
    for teacher in payload["teachers"]:
        for name in TRANSPORT_FIELDS:
            teacher.pop(name, None)
    return payload


def check_teachers(options: GenerateOptions) -> None:
    """Fail before anything is written, naming the recipe key, on a teacher that cannot be served."""
    names = [teacher.name for teacher in options.teachers]
    for index, teacher in enumerate(options.teachers):
        if names.count(teacher.name) > 1:
            raise RecipeError(
                f"generate.teachers[{index}].name: {teacher.name!r} is listed twice; teacher names label the "
                f"rollout files"
            )
        if teacher.backend == "micro":
            check_micro_teacher(teacher.name, f"generate.teachers[{index}]")


def run(options: GenerateOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Fill `rollouts/` with `samples_per_problem` rollouts per training problem and teacher."""
    run_dir = Path(run_dir)
    check_teachers(options)

    def work() -> dict[str, Any]:
        problems = training_problems(run_dir)
        counts: dict[str, Any] = {}
        checks = {}
        with generation_progress(ctx.console) as progress:
            for index, teacher in enumerate(options.teachers):
                path = run_dir / ROLLOUT_DIR / f"{teacher.name}.jsonl"
                done = finished_keys(path)
                requests = pending_requests(teacher, problems, options, done)
                where = f"generate.teachers[{index}]"
                verdict = generate_teacher(teacher, where, requests, options, path, progress) if requests else None
                if verdict is not None:
                    checks[teacher.name] = verdict
                counts[teacher.name] = len(done) + len(requests)
        if checks:
            counts["sampling_check"] = checks
        return counts

    fingerprint = generation_fingerprint(options)
    return run_stage(
        run_dir, "generate", fingerprint, ["problems.parquet"], [ROLLOUT_DIR], work, ctx, partials=[ROLLOUT_DIR]
    )
