"""Stage `generate`: sample teacher rollouts for every training problem, resumably.

Rollouts are appended to `rollouts/TEACHER.jsonl`, one line per (problem, sample). A rerun
reads the keys already written (dropping a line torn by a kill) and asks only for the rest,
so each key is written exactly once however often the stage is interrupted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rich.progress import Progress

from rdistill.config import GenerateOptions
from rdistill.data import PROBLEM_COLUMNS, append_jsonl, read_jsonl, read_records
from rdistill.data.manifest import run_stage
from rdistill.generate import micro

ROLLOUT_DIR = "rollouts"
BATCH = 256


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


def run(options: GenerateOptions, run_dir: Path, force: bool = False, log=print, console=None) -> dict[str, Any]:
    """Fill `rollouts/` with `samples_per_problem` rollouts per training problem and teacher."""
    run_dir = Path(run_dir)
    for index, teacher in enumerate(options.teachers):
        micro.check_teacher(teacher.name, f"generate.teachers[{index}].name")

    def work() -> dict[str, Any]:
        problems = training_problems(run_dir)
        counts = {}
        with Progress(console=console, transient=False) as progress:
            for teacher in options.teachers:
                path = run_dir / ROLLOUT_DIR / f"{teacher.name}.jsonl"
                done = finished_keys(path)
                todo = [
                    (problem, sample, rollout_seed(options.seed, problem["id"], teacher.name, sample))
                    for problem in problems
                    for sample in range(options.samples_per_problem)
                    if (problem["id"], sample) not in done
                ]
                task = progress.add_task(f"generate {teacher.name}", total=len(todo))
                for start in range(0, len(todo), BATCH):
                    batch = todo[start : start + BATCH]
                    append_jsonl(micro.generate(teacher.name, batch), path)
                    progress.advance(task, len(batch))
                counts[teacher.name] = len(done) + len(todo)
        return counts

    return run_stage(run_dir, "generate", options, inputs=["problems.parquet"], outputs=[ROLLOUT_DIR], work=work, force=force, partials=[ROLLOUT_DIR], log=log)
