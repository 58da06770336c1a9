"""Multiple choice by log-likelihood: the student scores every choice after the prompt and the best one is its answer.

lm-evaluation-harness's definitions, so that the numbers compare with published ones: the
prediction is the choice whose continuation (" A", or " " + the choice's text) has the highest
summed log-probability after the context (`acc`), or the highest divided by the choice's length
in characters (`acc_norm`, lm-eval's `completion_len`). Nothing is generated, so a student that
cannot yet follow the answer format is still measured. Scores are appended to the benchmark's
part file problem by problem, so an interrupted evaluation resumes; the picked letter is graded
like a generated answer ("B" reads as choice B), and `choice_norm` gives `correct_norm`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from rdistill.console import PlainProgress, is_terminal
from rdistill.data import JsonlAppender, read_jsonl
from rdistill.data.benchmarks import LETTERS, Benchmark
from rdistill.errors import RecipeError


def best(values: list[float]) -> int:
    """Index of the largest value, the first one on a tie (numpy's argmax, as lm-eval takes it)."""
    return max(range(len(values)), key=lambda index: (values[index], -index))


def choice_row(problem_id: str, scored: list[tuple[float, bool]], choices: list[str]) -> dict[str, Any]:
    """A part-file line: the letters picked by acc and acc_norm, with every choice's log-likelihood."""
    lls = [ll for ll, _ in scored]
    pick, pick_norm = best(lls), best([ll / len(choice) for ll, choice in zip(lls, choices, strict=True)])
    return {
        "problem_id": problem_id,
        "sample_index": 0,
        "text": LETTERS[pick],
        "response": LETTERS[pick],
        "finish_reason": "stop",
        "has_think": False,
        "tokens": 0,
        "error": None,
        "loglikelihoods": lls,
        "greedy": [greedy for _, greedy in scored],
        "choice_norm": LETTERS[pick_norm],
    }


def score_problems(backend, benchmark: Benchmark, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `problems`, every choice of all of them scored in one batched call."""
    requests = [benchmark.choice_requests(problem) for problem in problems]
    pairs = [(context, continuation) for context, continuations, _ in requests for continuation in continuations]
    scored = iter(backend.loglikelihoods(pairs))
    return [
        choice_row(problem["id"], [next(scored) for _ in continuations], choices)
        for problem, (_, continuations, choices) in zip(problems, requests, strict=True)
    ]


def collect_choice_scores(student, benchmark: Benchmark, path: Path, label: str, console=None) -> list[dict[str, Any]]:
    """Every row of one student on one benchmark: those in `path`, then the missing ones, `batch_size` problems at a
    time with progress."""
    answers = read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []
    done = {answer["problem_id"] for answer in answers}
    pending = [problem for problem in benchmark.problems if problem["id"] not in done]
    if not pending:
        return answers
    backend = student.get()
    if not hasattr(backend, "loglikelihoods"):
        raise RecipeError(
            f"{benchmark.where}.scoring: 'loglikelihood' needs a local 'hf' student; {student.where} is "
            f"{student.spec.backend!r}"
        )
    chunk = student.spec.batch_size
    writer = JsonlAppender(path)
    plain = None if is_terminal(console) else PlainProgress(f"score {label}", len(pending), console=console)
    try:
        with Progress(console=console, transient=False, disable=plain is not None) as progress:
            task = progress.add_task(f"score {label}", total=len(pending))
            for start in range(0, len(pending), chunk):
                for row in score_problems(backend, benchmark, pending[start : start + chunk]):
                    writer.write(row)
                    answers.append(row)
                progress.advance(task, min(chunk, len(pending) - start))
                if plain is not None:
                    plain.update(min(start + chunk, len(pending)))
    finally:
        writer.close()
    return answers
