"""Benchmark loaders on the real files of ../shared/data: reference answers and solutions grade as right.

Slices where grading everything would be slow (each noted); the full sets are checked by
tests/test_verify_real.py for MATH-500 and HumanEval.
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from rdistill.config import BenchmarkSpec, EvaluateOptions
from rdistill.data.benchmarks import LCB_SYSTEM, LETTERS, convert_rows, load_benchmark, sampling_of
from rdistill.errors import DataError, RecipeError
from rdistill.grading import grade_many

# ../shared/data beside the checkout (a worktree sits one level deeper, so look further up too).
DATA = next(
    (
        folder / "shared" / "data"
        for folder in Path(__file__).resolve().parents
        if (folder / "shared" / "data").exists()
    ),
    Path("shared/data"),
)
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")


def raw_rows(folder: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / folder / "test.jsonl").read_text().splitlines()]


def load(name: str, fmt: str, path: Path | None = None, **spec):
    return load_benchmark(
        BenchmarkSpec(name=name, format=fmt, path=str(path or DATA / name), **spec),
        EvaluateOptions(),
        Path("."),
        "test",
    )


def fenced(program: str) -> str:
    return f"Here is the program.\n```python\n{program}\n```"


def wrong_letter(answer: str) -> str:
    return LETTERS[(LETTERS.index(answer) + 1) % 4]


LETTER_FORMS = {  # response to a question whose answer is B -> graded right?
    "\\boxed{B}": True,
    "\\boxed{b}": True,
    "\\boxed{(B)}": True,
    "\\boxed{\\text{B}}": True,
    "The answer is B": True,
    "The answer is (B).": True,
    "\\boxed{A}": False,
    "\\boxed{C}": False,
    "\\boxed{D}": False,
    "The answer is A": False,
    "no letter at all": False,
    # A letter followed by its choice text is the letter (the "C) text" form).
    "\\boxed{B) Paris}": True,
    "Answer: B": True,
    "B) Paris": True,
    "The answer is:": False,
}


@pytest.fixture(scope="module")
def graded() -> dict[str, list[tuple[dict, dict]]]:
    """Per check: (problem, verdict) pairs, all graded in one grade_many call (starting its workers costs seconds)."""
    rows = {name: raw_rows(name) for name in ("math500", "aime24", "aime25", "humaneval", "mbpp", "mmlu_stem_nonmath")}
    mmlu = load("mmlu_stem_nonmath", "mcq").problems
    items = {
        # Slices: every 5th MATH-500 solution, every 4th HumanEval and every 6th MBPP task keep this
        # module to seconds; the full MATH-500 and HumanEval sets run in test_verify_real.
        "math500": list(
            zip(
                load("math500", "math500").problems[::5],
                [row["solution"] for row in rows["math500"][::5]],
                strict=False,
            )
        ),
        "aime24": [
            (p, f"So the answer is \\boxed{{{row['answer']}}}.")
            for p, row in zip(load("aime24", "aime").problems, rows["aime24"], strict=False)
        ],
        "aime25": [
            (p, f"So the answer is \\boxed{{{row['answer']}}}.")
            for p, row in zip(load("aime25", "aime").problems, rows["aime25"], strict=False)
        ],
        "humaneval": [
            (p, fenced(row["prompt"] + row["canonical_solution"]))
            for p, row in zip(load("humaneval", "humaneval").problems[::4], rows["humaneval"][::4], strict=False)
        ],
        "mbpp": [
            (p, fenced(row["code"]))
            for p, row in zip(load("mbpp", "mbpp").problems[::6], rows["mbpp"][::6], strict=False)
        ],
        "mmlu": [(p, f"The answer is \\boxed{{{p['answer']}}}") for p in mmlu],
        "mmlu_wrong": [(p, f"\\boxed{{{wrong_letter(p['answer'])}}}") for p in mmlu[::10]],
        "letter_forms": [({"id": "q", "domain": "mcq", "answer": "B"}, response) for response in LETTER_FORMS],
    }
    flat = [item for group in items.values() for item in group]
    verdicts = iter(grade_many(flat, timeout_s=10))
    return {name: [(problem, next(verdicts)) for problem, _ in group] for name, group in items.items()}


def wrong_ids(pairs: list[tuple[dict, dict]]) -> list[tuple[str, str]]:
    return [(problem["id"], verdict["verify_error"]) for problem, verdict in pairs if not verdict["correct"]]


@needs_data
def test_math500_loads_with_the_boxed_template_and_reference_solutions_grade_right(graded):
    benchmark = load("math500", "math500")
    row = raw_rows("math500")[0]
    assert len(benchmark.problems) == 500 and benchmark.domain == "math"
    assert benchmark.problems[0]["prompt"].endswith("put your final answer within \\boxed{}.")
    assert benchmark.problems[0]["id"] == row["unique_id"] and benchmark.problems[0]["difficulty"] == float(
        row["level"]
    )
    assert (benchmark.samples, benchmark.sampling.temperature, benchmark.sampling.top_p) == (4, 0.6, 0.95)
    assert len(graded["math500"]) == 100 and wrong_ids(graded["math500"]) == []


@needs_data
def test_aime_answers_grade_right(graded):
    assert [len(graded[name]) for name in ("aime24", "aime25")] == [30, 30]
    assert load("aime24", "aime").samples == 16
    assert wrong_ids(graded["aime24"]) == [] and wrong_ids(graded["aime25"]) == []


@needs_data
def test_humaneval_and_mbpp_reference_code_passes(graded):
    humaneval, mbpp = load("humaneval", "humaneval"), load("mbpp", "mbpp")
    first_mbpp = raw_rows("mbpp")[0]
    assert len(humaneval.problems) == 164 and humaneval.domain == "code" and len(mbpp.problems) == 427
    assert "```python\nfrom typing import List" in humaneval.problems[0]["prompt"]
    assert (
        len(mbpp.problems[0]["tests"]) == len(first_mbpp["test_list"])
        and first_mbpp["test_list"][0] in mbpp.problems[0]["prompt"]
    )
    assert (len(graded["humaneval"]), len(graded["mbpp"])) == (41, 72)
    assert wrong_ids(graded["humaneval"]) == [] and wrong_ids(graded["mbpp"]) == []
    assert graded["mbpp"][0][1]["tests_total"] == 3, "each assert line is its own test"


@needs_data
def test_mmlu_letters_grade_right_and_other_letters_wrong(graded):
    benchmark = load("mmlu_stem_nonmath", "mcq")
    row = raw_rows("mmlu_stem_nonmath")[0]
    assert len(benchmark.problems) == 1954 and benchmark.domain == "mcq" and benchmark.samples == 1
    assert "\nA) " in benchmark.problems[0]["prompt"] and "\nD) " in benchmark.problems[0]["prompt"]
    assert json.loads(benchmark.problems[0]["meta"])["subject"] == row["subject"]
    assert wrong_ids(graded["mmlu"]) == []
    assert not any(verdict["correct"] for _, verdict in graded["mmlu_wrong"])


@needs_data
def test_mcq_letter_forms_the_answer_grader_accepts(graded):
    assert [verdict["correct"] for _, verdict in graded["letter_forms"]] == list(LETTER_FORMS.values())


def lcb_row(
    question_id: str, public: list[dict], private: list[dict], starter: str = "", metadata: dict | None = None
) -> dict:
    """A row in LiveCodeBench's code_generation_lite format (private tests: base64 of zlib of a pickled JSON string)."""
    return {
        "question_title": question_id,
        "question_content": f"Problem {question_id}.",
        "platform": "atcoder" if not starter else "leetcode",
        "question_id": question_id,
        "contest_id": "c1",
        "contest_date": "2024-08-01T00:00:00",
        "starter_code": starter,
        "difficulty": "easy" if not starter else "medium",
        "public_test_cases": json.dumps(public),
        "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode(),
        "metadata": json.dumps(metadata or {}),
    }


STARTER = "class Solution:\n    def addAll(self, nums: List[int], k: int) -> int:\n        "
LCB_ROWS = [
    lcb_row(
        "abc001_a",
        [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"}],
        [{"input": "2\n10 -3\n", "output": "7\n", "testtype": "stdin"}],
    ),
    lcb_row(
        "leet-1",
        [{"input": "[1, 2, 3]\n4", "output": "10", "testtype": "functional"}],
        [{"input": "[]\n0", "output": "0", "testtype": "functional"}],
        STARTER,
        {"func_name": "addAll"},
    ),
]
LCB_RIGHT = [
    fenced("n = int(input())\nprint(sum(map(int, input().split())))"),
    fenced(
        "from typing import List\nclass Solution:\n    def addAll(self, nums: List[int], k: int) -> int:\n"
        "        return sum(nums) + k"
    ),
]
LCB_WRONG = [fenced("print(6)"), fenced("class Solution:\n    def addAll(self, nums, k):\n        return sum(nums)")]


def test_livecodebench_rows_load_with_its_prompt_and_grade_stdin_and_functional_tests(tmp_path):
    path = tmp_path / "lcb.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in LCB_ROWS))
    benchmark = load("lcb", "livecodebench", path)
    stdin, functional = benchmark.problems
    assert benchmark.system == LCB_SYSTEM and benchmark.messages(stdin)[0] == {"role": "system", "content": LCB_SYSTEM}
    assert stdin["prompt"].startswith("### Question:\nProblem abc001_a.\n\n### Format: Read the inputs from stdin")
    assert "```python\n# YOUR CODE HERE\n```" in stdin["prompt"] and STARTER in functional["prompt"]
    assert (stdin["difficulty"], functional["difficulty"]) == (1.0, 2.0) and len(stdin["tests"]) == 2 == len(
        functional["tests"]
    )
    verdicts = grade_many(list(zip(benchmark.problems * 2, LCB_RIGHT + LCB_WRONG, strict=False)))
    assert [v["correct"] for v in verdicts] == [True, True, False, False]


def test_sampling_defaults_per_format_and_overrides():
    options = EvaluateOptions()
    assert sampling_of(BenchmarkSpec(name="math"), options) == (1, options.sampling)
    k, params = sampling_of(BenchmarkSpec(name="a", format="aime", path="x"), options)
    assert (k, params.temperature, params.top_p, params.max_tokens) == (16, 0.6, 0.95, 32768)
    k, params = sampling_of(
        BenchmarkSpec(name="a", format="aime", path="x", samples=2, max_tokens=64, temperature=0.0), options
    )
    assert (k, params.temperature, params.max_tokens) == (2, 0.0, 64)


def test_loader_errors_name_the_recipe_key_or_the_file_row_and_field(tmp_path):
    with pytest.raises(RecipeError, match=r"test: format 'aime' needs a local `path` or a `hub`"):
        load_benchmark(BenchmarkSpec(name="a", format="aime"), EvaluateOptions(), tmp_path, "test")
    with pytest.raises(RecipeError, match=r"test.path: .*missing.jsonl not found"):
        load("a", "aime", tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"id": "1", "problem": "p", "answer": "3"}) + "\n" + json.dumps({"id": "2", "question": "p"}) + "\n"
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'problem'"):
        load("a", "aime", bad)
    twice = tmp_path / "twice.jsonl"
    twice.write_text((json.dumps({"id": "1", "problem": "p", "answer": "3"}) + "\n") * 2)
    with pytest.raises(DataError, match=r"twice.jsonl:2: duplicate problem id '1'"):
        load("a", "aime", twice)
    assert len(load("a", "aime", twice, limit=1).problems) == 1


def test_hub_style_rows_convert_like_the_local_files():
    """cais/mmlu stores the answer as an index, HuggingFaceH4/aime_2024 the id as a number: both load (offline)."""
    mcq = convert_rows(
        [{"question": "2+2?", "subject": "x", "choices": ["3", "4", "5", "6"], "answer": 1}],
        BenchmarkSpec(name="m", format="mcq", hub="cais/mmlu"),
        "hub:cais/mmlu",
    )
    assert mcq[0]["answer"] == "B" and mcq[0]["domain"] == "mcq" and mcq[0]["id"]
    aime = convert_rows(
        [{"id": 60, "problem": "p", "answer": 204}], BenchmarkSpec(name="a", format="aime", hub="x/aime"), "hub:x/aime"
    )
    assert (aime[0]["id"], aime[0]["answer"]) == ("60", "204")
