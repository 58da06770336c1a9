"""Stage `generate`: sample teacher rollouts for every training problem, resumably.

Rollouts are appended to `rollouts/TEACHER.jsonl`, one line per (problem, sample), as each
completion arrives. A rerun reads the keys already written (dropping a line torn by a kill)
and asks only for the rest, so each key is written exactly once however often the stage is
interrupted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rich.progress import Progress

from rdistill.config import GenerateOptions, TeacherSpec
from rdistill.data import PROBLEM_COLUMNS, append_jsonl, read_jsonl, read_records
from rdistill.data.manifest import run_stage
from rdistill.errors import RecipeError
from rdistill.generate.backend import Completion, Request, make_backend
from rdistill.generate.micro import check_micro_teacher

ROLLOUT_DIR = "rollouts"
FLUSH_EVERY = 256


def rollout_seed(base_seed: int, problem_id: str, teacher: str, sample_index: int) -> int:
    """A per-rollout seed that depends only on its key, so reruns reproduce the same samples."""
    digest = hashlib.sha256(f"{base_seed}/{problem_id}/{teacher}/{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


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
    }


def pending_requests(teacher: TeacherSpec, problems: list[dict[str, Any]], options: GenerateOptions, done: set[tuple[str, int]]) -> list[Request]:
    """The requests of `teacher` whose keys are not written yet."""
    return [
        Request(problem, sample, rollout_seed(options.seed, problem["id"], teacher.name, sample), [{"role": "user", "content": problem["prompt"]}])
        for problem in problems
        for sample in range(options.samples_per_problem)
        if (problem["id"], sample) not in done
    ]


def generate_teacher(teacher: TeacherSpec, where: str, requests: list[Request], options: GenerateOptions, path: Path, progress: Progress) -> None:
    """Run `requests` through the teacher's backend, appending rollouts to `path` as they arrive."""
    task = progress.add_task(f"generate {teacher.name}", total=len(requests))
    pending: list[dict[str, Any]] = []

    def keep(completion: Completion) -> None:
        pending.append(rollout_row(teacher.name, completion))
        progress.advance(task)
        if len(pending) >= FLUSH_EVERY:
            append_jsonl(pending, path)
            pending.clear()

    backend = make_backend(teacher, where)
    try:
        backend.generate(requests, teacher.sampling or options.sampling, keep)
    finally:
        append_jsonl(pending, path)
        backend.close()


def check_teachers(options: GenerateOptions) -> None:
    """Fail before anything is written, naming the recipe key, on a teacher that cannot be served."""
    names = [teacher.name for teacher in options.teachers]
    for index, teacher in enumerate(options.teachers):
        if names.count(teacher.name) > 1:
            raise RecipeError(f"generate.teachers[{index}].name: {teacher.name!r} is listed twice; teacher names label the rollout files")
        if teacher.backend == "micro":
            check_micro_teacher(teacher.name, f"generate.teachers[{index}]")


def run(options: GenerateOptions, run_dir: Path, force: bool = False, log=print, console=None) -> dict[str, Any]:
    """Fill `rollouts/` with `samples_per_problem` rollouts per training problem and teacher."""
    run_dir = Path(run_dir)
    check_teachers(options)

    def work() -> dict[str, Any]:
        problems = training_problems(run_dir)
        counts = {}
        with Progress(console=console, transient=False) as progress:
            for index, teacher in enumerate(options.teachers):
                path = run_dir / ROLLOUT_DIR / f"{teacher.name}.jsonl"
                done = finished_keys(path)
                requests = pending_requests(teacher, problems, options, done)
                if requests:
                    generate_teacher(teacher, f"generate.teachers[{index}]", requests, options, path, progress)
                counts[teacher.name] = len(done) + len(requests)
        return counts

    return run_stage(run_dir, "generate", options, inputs=["problems.parquet"], outputs=[ROLLOUT_DIR], work=work, force=force, partials=[ROLLOUT_DIR], log=log)
