"""Verification: answer extraction, comparison and the code sandbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from helpers import kill_and_resume_verify
from rdistill.grading import _chunks, extract_code, grade, grade_many
from rdistill.grading.answers import answers_equal, extract_answer, last_boxed
from rdistill.grading.sandbox import _WarmHarness, harness_pid, run_program

FUNCTION_TESTS = [{"input": None, "output": None, "entry_point": "f", "test": "assert f([3, 1, 2]) == [2, 1, 3]"}]
CODE_PROBLEM = {"domain": "code", "tests": FUNCTION_TESTS}


def fenced(program: str) -> str:
    return f"Here it is.\n```python\n{program}\n```\n"


def test_last_boxed_handles_nested_braces_and_takes_the_last():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed("no box here") is None
    assert last_boxed(r"\boxed{unclosed") is None


def test_extract_answer_falls_back_to_the_answer_is():
    assert extract_answer("so the answer is 42.") == "42"
    assert extract_answer(r"The answer is \boxed{7}.") == "7"
    assert extract_answer("I do not know") is None


def test_answers_equal_compares_numbers_and_text():
    assert answers_equal("12", "12.0")
    assert answers_equal(" Red ", "red")
    assert not answers_equal("13", "12")


def test_grade_math_reports_reasons():
    problem = {"domain": "math", "answer": "18"}
    assert grade(problem, r"\boxed{18}")["correct"] is True
    wrong = grade(problem, r"\boxed{17}")
    assert (wrong["correct"], wrong["verify_error"], wrong["extracted"]) == (False, "wrong_answer", "17")
    assert grade(problem, "eighteen")["verify_error"] == "no_answer"


def test_extract_code_takes_last_fenced_block():
    text = "```python\nx = 1\n```\nand finally\n```python\ny = 2\n```"
    assert extract_code(text) == "y = 2\n"
    assert extract_code("no code") is None


@pytest.mark.parametrize(
    ("program", "error"),
    [
        ("def f(xs):\n    return xs[::-1]", None),
        ("def f(xs):\n    return xs", "wrong_answer"),
        ("def f(xs):\n    raise ValueError('boom')", "runtime_error"),
        ("import os\nos._exit(0)", "runtime_error"),
        ("import sys\nsys.exit(0)", "runtime_error"),
        ("def f(xs):\n    while True:\n        pass", "timeout"),
    ],
)
def test_sandbox_verdicts(program, error):
    verdict = grade(CODE_PROBLEM, fenced(program), timeout_s=2)
    assert verdict["verify_error"] == error
    assert verdict["correct"] is (error is None)
    assert verdict["tests_total"] == 1


def test_no_code_block_is_reported():
    assert grade(CODE_PROBLEM, "def f(xs): return xs")["verify_error"] == "no_code"


def test_stdin_stdout_tests_compare_whitespace_normalised_output():
    tests = [{"input": "3\n1 2 3\n", "output": "6\n", "entry_point": None, "test": None}]
    good = "n = int(input())\nprint(sum(map(int, input().split())))"
    assert run_program(good, tests, timeout_s=5).passed == 1
    assert run_program("print(5)", tests, timeout_s=5).error == "wrong_answer"


def test_sandbox_environment_has_no_secrets(monkeypatch):
    monkeypatch.setenv("RDISTILL_TEST_SECRET", "hunter2")
    program = "import os\ndef f(xs):\n    assert 'RDISTILL_TEST_SECRET' not in os.environ\n    return xs[::-1]"
    assert run_program(program, FUNCTION_TESTS, timeout_s=5).passed == 1
    assert os.environ["RDISTILL_TEST_SECRET"] == "hunter2"


def test_grade_many_runs_each_distinct_program_once_and_keeps_order():
    problem = {"id": "p1", **CODE_PROBLEM}
    right, wrong = fenced("def f(xs):\n    return xs[::-1]"), fenced("def f(xs):\n    return xs")
    preamble = "Some thinking first.\n" + right  # a different response with the same program
    verdicts = grade_many([(problem, right), (problem, wrong), (problem, preamble), (problem, right)], timeout_s=5)
    assert [v["correct"] for v in verdicts] == [True, False, True, True]
    verdicts[0]["correct"] = None
    assert verdicts[3]["correct"] is True, "verdicts are copies, not shared objects"


MODES = ["bubblewrap", "namespaces", "rlimits"]
MODE_PROBE = """
from rdistill.grading.sandbox import isolation, run_program
tests = [{"input": None, "output": None, "entry_point": "f", "test": "assert f([3, 1, 2]) == [2, 1, 3]"}]
stdio = [{"input": "2\\n1 2\\n", "output": "3\\n", "entry_point": None, "test": None}]
print(isolation())
print(run_program("import fractions, math, heapq\\ndef f(xs):\\n    return xs[::-1]", tests, 5).error)
print(run_program("def f(xs):\\n    return xs", tests, 5).error)
print(run_program("input()\\nprint(sum(map(int, input().split())))", stdio, 5).error)
"""


@pytest.mark.parametrize("requested", MODES)
def test_each_isolation_mode_degrades_to_a_weaker_one_and_grades_alike(requested):
    env = {**os.environ, "RDISTILL_SANDBOX": requested}
    lines = subprocess.run(
        [sys.executable, "-c", MODE_PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split("\n")
    assert MODES.index(lines[0]) >= MODES.index(requested), (
        "a mode is never stronger than asked, only weaker where it cannot start"
    )
    if requested == "bubblewrap" and shutil.which("bwrap") is None:
        assert lines[0] != "bubblewrap"
    assert lines[1:4] == ["None", "wrong_answer", "None"], (
        f"{lines[0]}: a right program that imports the standard library passes"
    )


def test_a_dead_harness_is_replaced():
    run_program("x = 1", [{"input": None, "output": None, "entry_point": None, "test": "assert x == 1"}], 5)
    first = harness_pid()
    os.killpg(first, signal.SIGKILL)
    # Wait for the kill to land: otherwise the next solution may still reach the dying harness.
    _WarmHarness.harness.process.wait(timeout=10)
    assert run_program("def f(xs):\n    return xs[::-1]", FUNCTION_TESTS, timeout_s=5).passed == 1
    assert harness_pid() not in (None, first)


def test_batches_keep_a_problems_items_together():
    keys = [(problem, "answer", index) for index in range(10) for problem in ("a", "b", "c")]
    chunks = _chunks(keys, workers=2)
    assert sorted(key for chunk in chunks for key in chunk) == sorted(keys)
    flat = [key[0] for chunk in chunks for key in chunk]
    assert flat == ["a"] * 10 + ["b"] * 10 + ["c"] * 10
    assert max(len(chunk) for chunk in chunks) == 2


@pytest.mark.slow
def test_a_driver_killed_mid_stage_resumes_without_grading_or_writing_a_verdict_twice(tmp_path):
    kill_and_resume_verify(tmp_path / "run", "local")
