"""Grading: whether an answer to a problem is right, by the same rules for teachers and students.

Math and short answers: the final answer (`rdistill.grading.answers`: the last well-formed
`\\boxed{}`, else the last answer phrase) compared with the gold answer by Math-Verify;
multiple choice: the chosen letter. Code: the model's program, built and judged the way the
benchmark's reference harness does (`rdistill.grading.programs`), run against the problem's
tests in a sandboxed process (`rdistill.grading.sandbox`). `grade_many` grades many answers in
worker processes, on this machine or on a Ray cluster (`rdistill.grading.executors`); the
`verify` stage (teachers' rollouts), `evaluate` (students' answers) and the `teachers` stage's
proxy students all call it. Nothing here reads or writes run files.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from rdistill.grading.answers import LETTERS, answers_equal, extract_answer, extract_choice
from rdistill.grading.programs import extract_code, problem_meta, program_to_run, solution_code, stdout_rule
from rdistill.grading.sandbox import describe_isolation, run_program

# Worker processes import this package, so it imports nothing heavy (no pydantic options,
# pyarrow or rich at the top): a worker starts in milliseconds rather than a second.
__all__ = ["describe_isolation", "extract_code", "grade", "grade_many"]


def _verdict(
    extracted: str | None, correct: bool | None, passed: int | None, total: int | None, error: str | None
) -> dict[str, Any]:
    return {
        "extracted": extracted,
        "correct": correct,
        "tests_passed": passed,
        "tests_total": total,
        "verify_error": error,
    }


def grade_answer(problem: dict[str, Any], response: str) -> dict[str, Any]:
    """Verdict for an answer problem: a math or short answer, or (mcq) the letter of a choice."""
    choice = problem["domain"] == "mcq"
    letters = LETTERS[: problem_meta(problem).get("choices", len(LETTERS))] if choice else ""
    answer = extract_choice(response, letters) if choice else extract_answer(response)
    if answer is None:
        return _verdict(None, False, None, None, "no_answer")
    if problem.get("answer") is None:
        return _verdict(answer, None, None, None, "no_gold_answer")
    gold = str(problem["answer"])
    correct = answer == gold.strip().strip("()").upper() if choice else answers_equal(answer, gold)
    return _verdict(answer, correct, None, None, None if correct else "wrong_answer")


def grade_code(problem: dict[str, Any], response: str, timeout_s: float) -> dict[str, Any]:
    """Verdict for a code problem: its tests run in the sandbox, on the program its benchmark's harness would run."""
    code = solution_code(problem, response)
    tests = problem.get("tests") or []
    if code is None:
        return _verdict(None, False, 0, len(tests), "no_code")
    if not tests:
        return _verdict(code, None, None, None, "no_tests")
    result = run_program(program_to_run(problem, code), tests, timeout_s, stdout_rule(problem))
    return _verdict(code, result.passed == result.total, result.passed, result.total, result.error)


def grade(problem: dict[str, Any], response: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """Verdict columns for one response to one problem."""
    if problem["domain"] == "code":
        return grade_code(problem, response, timeout_s)
    return grade_answer(problem, response)


def _dedup_key(problem: dict[str, Any], response: str) -> tuple:
    """Responses with the same key get the same verdict: code is judged by its fenced program alone."""
    if problem["domain"] == "code":
        fenced = extract_code(response)
        return (problem["id"], "code", fenced) if fenced is not None else (problem["id"], "raw", response)
    return (problem["id"], "answer", response)


def grade_chunk(items: list[tuple[dict[str, Any], str]], timeout_s: float) -> list[dict[str, Any]]:
    """Verdicts for a batch of items, graded in one task: one round trip to a worker per batch."""
    return [grade(problem, response, timeout_s) for problem, response in items]


def _chunks(keys: list[tuple], workers: int) -> list[list[tuple]]:
    """Keys in batches of a problem's items together, so that a worker parses a gold answer once.

    About eight batches per worker keep the workers evenly loaded to the end; 64 items at most
    keep one slow batch (code that times out) from holding up the last seconds.
    """
    by_problem: dict[Any, list[tuple]] = {}
    for key in keys:
        by_problem.setdefault(key[0], []).append(key)
    ordered = [key for group in by_problem.values() for key in group]
    size = max(1, min(64, math.ceil(len(ordered) / (8 * workers))))
    return [ordered[start : start + size] for start in range(0, len(ordered), size)]


def grade_many(
    items: list[tuple[dict[str, Any], str]],
    timeout_s: float = 5.0,
    workers: int = 2,
    description: str = "verify",
    console=None,
    executor: str = "local",
    ray_address: str | None = None,
    trusted_code: bool = False,
    on_verdict: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Verdicts for (problem, response) pairs, graded by `workers` processes, with a progress bar.

    Each distinct (problem, answer or program) is graded once however many rollouts wrote it
    (teachers often agree word for word). `executor` 'local' grades in processes on this
    machine; 'ray' in Ray actors on the cluster at `ray_address` (None: a local Ray instance),
    where a node that cannot isolate code refuses it unless `trusted_code`
    (`rdistill.grading.executors`). `on_verdict(position, verdict)` is called once per item, as
    soon as its batch is graded, so that a caller can keep verdicts as they come.
    """
    from rich.progress import Progress

    from rdistill.grading.executors import make_executor

    unique: dict[tuple, tuple[dict[str, Any], str]] = {}
    positions: dict[tuple, list[int]] = {}
    for position, (problem, response) in enumerate(items):
        key = _dedup_key(problem, response)
        unique.setdefault(key, (problem, response))
        positions.setdefault(key, []).append(position)
    if not unique:
        return []
    chunks = _chunks(list(unique), workers)
    verdicts: dict[tuple, dict[str, Any]] = {}
    log = console.print if console is not None else print
    with (
        Progress(console=console, transient=False) as progress,
        make_executor(executor, workers, ray_address, trusted_code, log) as pool,
    ):
        task = progress.add_task(description, total=len(unique))
        batches = [[unique[key] for key in chunk] for chunk in chunks]
        for index, results in pool.map(functools.partial(grade_chunk, timeout_s=timeout_s), batches):
            for key, verdict in zip(chunks[index], results, strict=True):
                verdicts[key] = verdict
                if on_verdict is not None:
                    for position in positions[key]:
                        on_verdict(position, dict(verdict))
            progress.advance(task, len(chunks[index]))
    return [dict(verdicts[_dedup_key(problem, response)]) for problem, response in items]
