"""Stage `evaluate`: the base and the distilled student on the held-out problems of each domain.

Each student answers every eval problem `samples_per_problem` times; the answers are graded by
the verification rules (`rdistill.verify.grade_many`) and scored for accuracy, completion
(stopped before the token limit) and think-tag use (opened and closed the think block).
Work is saved per (student, benchmark), so an interrupted evaluation resumes.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.progress import Progress

from rdistill.config import EvaluateOptions
from rdistill.data import PROBLEM_COLUMNS, read_parquet, read_records, write_json, write_parquet
from rdistill.data.manifest import run_stage
from rdistill.generate.backend import Completion, Request
from rdistill.generate.hf import HFBackend
from rdistill.verify import grade_many

EVAL_DIR = "eval"
SUMMARY = "eval/summary.json"
IN_DOMAIN = ("math", "code")
OUT_OF_DOMAIN = ("text", "mcq")


def sample_student(model_dir: Path, problems: list[dict[str, Any]], options: EvaluateOptions, label: str, console=None) -> list[Completion]:
    """`samples_per_problem` completions per problem from a local checkpoint, in request order."""
    backend = HFBackend(model_dir, where=label, batch_size=options.batch_size)
    requests = [
        Request(problem, sample, options.sampling.seed + index, [{"role": "user", "content": problem["prompt"]}])
        for index, (problem, sample) in enumerate((p, s) for p in problems for s in range(options.samples_per_problem))
    ]
    results: dict[tuple[str, int], Completion] = {}
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task(f"answer {label}", total=len(requests))

        def keep(completion: Completion) -> None:
            results[(completion.request.problem["id"], completion.request.sample_index)] = completion
            progress.advance(task)

        try:
            backend.generate(requests, options.sampling, keep)
        finally:
            backend.close()
    return [results[(request.problem["id"], request.sample_index)] for request in requests]


def score_rows(student: str, benchmark: str, samples: list[Completion], verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Eval rows (docs/schema.md) from generated samples and their verdicts."""
    rows = []
    for sample, verdict in zip(samples, verdicts):
        rows.append(
            {
                "student": student,
                "benchmark": benchmark,
                "problem_id": sample.request.problem["id"],
                "sample_index": sample.request.sample_index,
                "difficulty": sample.request.problem["difficulty"],
                "correct": bool(verdict["correct"]),
                "finished": sample.finish_reason == "stop",
                "has_think": sample.closed_think,
                "tokens": sample.completion_tokens,
                "response": sample.text,
                "verify_error": verdict["verify_error"],
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Accuracy, completion rate, think-tag rate and mean tokens of a set of eval rows."""
    count = len(rows)
    return {
        "n": count,
        "accuracy": sum(row["correct"] for row in rows) / count,
        "completion_rate": sum(row["finished"] for row in rows) / count,
        "think_rate": sum(row["has_think"] for row in rows) / count,
        "mean_tokens": sum(row["tokens"] for row in rows) / count,
    }


def evaluate_student(name: str, model_dir: Path, benchmark: str, problems: list[dict[str, Any]], options: EvaluateOptions, part: Path, console=None) -> list[dict[str, Any]]:
    """Eval rows of one student on one benchmark, read back from `part` when already done."""
    if part.exists():
        return read_parquet(part)
    samples = sample_student(model_dir, problems, options, f"{name} on {benchmark}", console)
    verdicts = grade_many([(s.request.problem, s.response) for s in samples], description=f"grade {name} on {benchmark}", console=console)
    rows = score_rows(name, benchmark, samples, verdicts)
    write_parquet(rows, part)
    return rows


def run(options: EvaluateOptions, run_dir: Path, base_model: Path, force: bool = False, log=print, console=None) -> dict[str, Any]:
    """Write `eval/BENCH.parquet` per benchmark and `eval/summary.json` for the base and distilled students."""
    run_dir = Path(run_dir)
    students = {"base": Path(base_model), "distilled": run_dir / "student"}

    def work() -> dict[str, Any]:
        problems = read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)
        by_benchmark: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for problem in problems:
            if problem["split"] == "eval":
                by_benchmark[problem["domain"]].append(problem)
        summary: dict[str, Any] = {
            "in_domain": [b for b in by_benchmark if b in IN_DOMAIN],
            "out_of_domain": [b for b in by_benchmark if b in OUT_OF_DOMAIN],
            "students": defaultdict(dict),
        }
        for benchmark, benchmark_problems in sorted(by_benchmark.items()):
            rows = []
            for name, model_dir in students.items():
                part = run_dir / EVAL_DIR / "parts" / f"{name}-{benchmark}.parquet"
                student_rows = evaluate_student(name, model_dir, benchmark, benchmark_problems, options, part, console)
                summary["students"][name][benchmark] = summarise(student_rows)
                rows += student_rows
            write_parquet(rows, run_dir / EVAL_DIR / f"{benchmark}.parquet")
        write_json(summary, run_dir / SUMMARY)
        return {f"{name}/{bench}": round(scores["accuracy"], 4) for name, benches in summary["students"].items() for bench, scores in benches.items()}

    config = {"options": options.model_dump(mode="json"), "base_model": str(base_model)}
    return run_stage(run_dir, "evaluate", config, inputs=["problems.parquet", "student"], outputs=[SUMMARY], work=work, force=force, partials=[EVAL_DIR], log=log)
