"""Grading: whether an answer to a problem is right, by the same rules for teachers and students.

Math and short answers: the last `\\boxed{}` (or 'the answer is …') compared with the gold
answer by Math-Verify. Code: the program in the last fenced block, run against the problem's
tests in a sandboxed process (`rdistill.grading.sandbox`). `grade_many` grades many answers in
worker processes; the `verify` stage (teachers' rollouts), `evaluate` (students' answers) and
the `teachers` stage's proxy students all call it. Nothing here reads or writes run files.
"""

from __future__ import annotations

import math
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from rdistill.grading.answers import answers_equal, extract_answer
from rdistill.grading.sandbox import describe_isolation, run_program

# Worker processes import this package, so it imports nothing heavy (no pydantic options,
# pyarrow or rich at the top): a worker starts in milliseconds rather than a second.
__all__ = ["describe_isolation", "extract_code", "grade", "grade_many"]

FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(response: str) -> str | None:
    """The program in the last fenced code block of a response, or None."""
    blocks = FENCE.findall(response)
    return blocks[-1] if blocks else None


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
    """Verdict for an answer problem (math, mcq, text)."""
    answer = extract_answer(response)
    if answer is None:
        return _verdict(None, False, None, None, "no_answer")
    if problem.get("answer") is None:
        return _verdict(answer, None, None, None, "no_gold_answer")
    correct = answers_equal(answer, problem["answer"])
    return _verdict(answer, correct, None, None, None if correct else "wrong_answer")


def grade_code(problem: dict[str, Any], response: str, timeout_s: float) -> dict[str, Any]:
    """Verdict for a code problem: its tests run in the sandbox."""
    program = extract_code(response)
    tests = problem.get("tests") or []
    if program is None:
        return _verdict(None, False, 0, len(tests), "no_code")
    if not tests:
        return _verdict(program, None, None, None, "no_tests")
    result = run_program(program, tests, timeout_s)
    return _verdict(program, result.passed == result.total, result.passed, result.total, result.error)


def grade(problem: dict[str, Any], response: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """Verdict columns for one response to one problem."""
    if problem["domain"] == "code":
        return grade_code(problem, response, timeout_s)
    return grade_answer(problem, response)


def _dedup_key(problem: dict[str, Any], response: str) -> tuple:
    """Responses with the same key get the same verdict: code is judged by its program alone."""
    if problem["domain"] == "code":
        return (problem["id"], "code", extract_code(response))
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


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a fresh server process that has imported the graders once.

    Processes, not threads: Math-Verify's time limits use signals, which work only in a
    process's main thread. Not forked from this process, which may hold a model; and not
    spawned, which would import Math-Verify and this program's main module (the CLI, say) in
    every worker of every call, a second or more each. The server starts once per program.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "rdistill.grading", "math_verify"])
    return ProcessPoolExecutor(workers, mp_context=context)


def grade_many(
    items: list[tuple[dict[str, Any], str]],
    timeout_s: float = 5.0,
    workers: int = 2,
    description: str = "verify",
    console=None,
) -> list[dict[str, Any]]:
    """Verdicts for (problem, response) pairs, graded in `workers` processes, with a progress bar.

    Each distinct (problem, answer or program) is graded once however many rollouts wrote it
    (teachers often agree word for word).
    """
    from rich.progress import Progress

    unique: dict[tuple, tuple[dict[str, Any], str]] = {}
    for problem, response in items:
        unique.setdefault(_dedup_key(problem, response), (problem, response))
    verdicts: dict[tuple, dict[str, Any]] = {}
    with Progress(console=console, transient=False) as progress, _worker_pool(workers) as pool:
        task = progress.add_task(description, total=len(unique))
        futures = {
            pool.submit(grade_chunk, [unique[key] for key in chunk], timeout_s): chunk
            for chunk in _chunks(list(unique), workers)
        }
        for future in as_completed(futures):
            verdicts.update(zip(futures[future], future.result(), strict=False))
            progress.advance(task, len(futures[future]))
    return [dict(verdicts[_dedup_key(problem, response)]) for problem, response in items]
