"""Verification on real benchmark data from ../shared/data and LiveCodeBench-format problems."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from pathlib import Path

import pytest

from helpers import fenced, humaneval_mutants
from rdistill.errors import DataError
from rdistill.grading import grade_many
from rdistill.grading.answers import _normalise, answers_equal, last_boxed, quick_verdict
from rdistill.grading.livecodebench import decode_private_tests, problem_tests

# ../shared/data beside the checkout, or beside a folder holding it (a git worktree, say).
DATA = next(
    (p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir()),
    Path("shared/data"),
)
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")


def read_jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name / "test.jsonl").read_text().splitlines()]


@needs_data
def test_every_math500_reference_boxed_answer_equals_its_answer_field():
    rows = read_jsonl("math500")
    disagreements = [
        (r["unique_id"], last_boxed(r["solution"]), r["answer"])
        for r in rows
        if not answers_equal(last_boxed(r["solution"]) or "", r["answer"])
    ]
    assert len(rows) == 500
    assert disagreements == []


@pytest.mark.parametrize(
    ("predicted", "gold", "equal"),
    [
        ("0.5", r"\frac{1}{2}", True),
        (r"\frac34", r"\dfrac{3}{4}", True),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \frac{\pi}{2})", True),
        ("[-2,5)", "[-2, 5)", True),
        (r"\sqrt{8}", r"2\sqrt{2}", True),
        (r"\{2,1\}", r"\{1, 2\}", True),
        ("90", r"90^\circ", True),
        ("Evelyn", r"\text{Evelyn}", True),
        ("2x + x^2", "x^2+2x", True),
        (r"\frac{1}{3}", r"\frac{1}{2}", False),
        ("(2,1)", "(1,2)", False),
        ("[-2,5]", "[-2, 5)", False),
    ],
)
def test_math_verify_equivalence_of_math500_answer_forms(predicted, gold, equal):
    assert answers_equal(predicted, gold) is equal


@pytest.mark.parametrize(
    ("predicted", "gold", "quick"),
    [
        (r"\left( 3, \dfrac{\pi}{2} \right)", r"(3,\frac{\pi}{2})", True),
        (r"\text{ Evelyn }.", "evelyn", True),
        (r"{\tfrac{1}{2}}", r"\frac{1}{2}", True),
        (r"\Delta", r"\delta", None),
        (r"\pi r", r"\pir", None),
        (r"\{1,2\}", "1,2", None),
        ("1,2,...", "1,2,", None),
        (r"\frac{1}{2}", "0.5", None),
    ],
)
def test_quick_verdict_settles_only_respellings(predicted, gold, quick):
    assert quick_verdict(predicted, gold) is quick


@needs_data
def test_quick_verdict_tells_math500_answers_apart_and_settles_their_respellings():
    """Different MATH-500 answers stay different under the fast path (Math-Verify decides those
    it merges); the usual re-spellings of each answer are settled equal without parsing."""
    from math_verify import parse, verify

    golds = sorted({row["answer"] for row in read_jsonl("math500")})
    merged: dict[str, list[str]] = {}
    for gold in golds:
        merged.setdefault(_normalise(gold), []).append(gold)
    merged_groups = [group for group in merged.values() if len(group) > 1]
    assert all(
        verify(parse(f"\\boxed{{{first}}}"), parse(f"\\boxed{{{other}}}"))
        for first, *rest in merged_groups
        for other in rest
    )
    assert len(merged) >= len(golds) - 2
    respellings = [(gold, spelling) for gold in golds for spelling in respelled(gold)]
    assert [pair for pair in respellings if quick_verdict(pair[1], gold=pair[0]) is not True] == []
    assert len(respellings) > 4 * len(golds)


def respelled(answer: str) -> list[str]:
    """Ways of writing `answer` that change nothing but its spelling."""
    spellings = [
        answer.replace(r"\frac", r"\dfrac"),
        f"{{{answer}}}",
        rf"\text{{ {answer} }}",
        f"{answer}.",
        f"$ {answer} $",
    ]
    if answer.startswith("(") and answer.endswith(")"):
        spellings.append(rf"\left{answer[:-1]} \right)")
    return spellings


def humaneval_problem(row: dict) -> dict:
    return {
        "id": row["task_id"],
        "domain": "code",
        "tests": [{"input": None, "output": None, "entry_point": row["entry_point"], "test": row["test"]}],
    }


@needs_data
def test_humaneval_canonical_solutions_pass_and_mutants_fail():
    rows = read_jsonl("humaneval")
    assert len(rows) == 164
    canonical = grade_many(
        [(humaneval_problem(r), fenced(r["prompt"] + r["canonical_solution"])) for r in rows], timeout_s=10
    )
    failures = [(r["task_id"], v["verify_error"]) for r, v in zip(rows, canonical, strict=False) if not v["correct"]]
    assert failures == []
    sample = rows[::8]
    items = [(humaneval_problem(r), fenced(program)) for r in sample for program in humaneval_mutants(r).values()]
    verdicts = grade_many(items, timeout_s=1)
    survivors = [
        (item[0]["id"], kind)
        for item, kind, v in zip(items, [k for r in sample for k in humaneval_mutants(r)], verdicts, strict=False)
        if v["correct"]
    ]
    assert survivors == []
    reasons = {v["verify_error"] for v in verdicts}
    assert {"wrong_answer", "timeout", "runtime_error"} <= reasons


def lcb_row(public: list[dict], private: list[dict]) -> dict:
    """A problem in LiveCodeBench's released format (private tests: base64 of zlib of a pickled JSON string)."""
    blob = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode()
    return {"question_content": "Sum the numbers.", "public_test_cases": json.dumps(public), "private_test_cases": blob}


SUM_ROW = lcb_row(
    [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}],
    [
        {"input": "2\n10 -4\n", "output": "6\n", "testtype": "stdin"},
        {"input": "1\n7\n", "output": "7", "testtype": "stdin"},
    ],
)
MEAN_ROW = lcb_row(
    [{"input": "2\n1 2\n", "output": "1.5000000\n", "testtype": "stdin"}],
    [{"input": "3\n1 1 2\n", "output": "1.333333333\n", "testtype": "stdin"}],
)


def test_livecodebench_private_tests_decode_to_stdin_stdout_pairs():
    tests = problem_tests(SUM_ROW)
    assert [t["input"] for t in tests] == ["3\n1 2 3\n", "2\n10 -4\n", "1\n7\n"]
    assert all(t["entry_point"] is None for t in tests)


def test_livecodebench_decoder_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(DataError, match="refusing to load"):
        decode_private_tests(blob)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(DataError, match="expected a JSON string"):
        decode_private_tests(base64.b64encode(zlib.compress(pickle.dumps([1, 2]))).decode())


def test_stdin_stdout_solutions_pass_when_right_and_fail_when_wrong():
    sum_problem = {"id": "sum", "domain": "code", "tests": problem_tests(SUM_ROW)}
    mean_problem = {"id": "mean", "domain": "code", "tests": problem_tests(MEAN_ROW)}
    right_sum = "n = int(input())\nprint(sum(map(int, input().split())))"
    right_mean = "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs) / n)"
    items = [
        (sum_problem, fenced(right_sum)),
        (sum_problem, fenced("import sys\ndata = sys.stdin.read().split()\nprint(sum(map(int, data[1:])))")),
        (sum_problem, fenced("n = int(input())\nprint(sum(map(int, input().split())) + 1)")),
        (sum_problem, fenced("print(6)")),
        (mean_problem, fenced(right_mean)),
        (mean_problem, fenced("n = int(input())\nxs = list(map(int, input().split()))\nprint(round(sum(xs) / n, 2))")),
    ]
    assert [v["correct"] for v in grade_many(items)] == [True, True, False, False, True, False]
