"""Problem pools from JSON Lines, Parquet, folders and hubs: field mapping, held-out rows, load checks, the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from helpers import DATA, micro_student, needs_data, openai_teacher, rdistill, served, tiny_recipe_dict, write_recipe
from rdistill.config import ProblemsOptions, Recipe
from rdistill.curate import curate
from rdistill.data import read_parquet
from rdistill.data.pools import load_pool, pool_problems
from rdistill.errors import DataError, RecipeError
from rdistill.grading import grade
from test_curate import world

pytestmark = needs_data

MATH_TEMPLATE = "{prompt}\n\nPut your final answer within \\boxed{{}}."
MBPP_TEMPLATE = "{prompt} Your code should pass these tests:\n{test_list}"


def rows_of(name: str, lines: list[int]) -> list[dict]:
    """Rows of ../shared/data/NAME/test.jsonl at the given 1-based lines."""
    text = (DATA / name / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(text[line - 1]) for line in lines]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def math_source(path: Path, **fields) -> dict:
    """MATH-500's fields mapped onto the pool's columns."""
    mapping = {"prompt": "problem", "id": "unique_id", "difficulty": "level"}
    return {"path": str(path), "domain": "math", "fields": mapping, "template": MATH_TEMPLATE, **fields}


def mbpp_source(path: Path, **fields) -> dict:
    """Sanitized MBPP: its assert lines as function tests, shown in the prompt as MBPP's own prompt does."""
    return {
        "path": str(path),
        "domain": "code",
        "fields": {"tests": "test_list", "id": "task_id"},
        "template": MBPP_TEMPLATE,
        **fields,
    }


def pool(sources: list[dict], **options) -> list[dict]:
    return load_pool(ProblemsOptions.model_validate({"source": "file", "sources": sources, **options}))


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def test_a_jsonl_pool_maps_math500_and_mbpp_and_grades_their_reference_answers(tmp_path):
    math = write_jsonl(tmp_path / "math.jsonl", rows_of("math500", [1, 2, 3, 4]))
    mbpp_rows = rows_of("mbpp", [1, 2, 3])
    mbpp = write_jsonl(tmp_path / "mbpp.jsonl", mbpp_rows)
    problems = pool([math_source(math), mbpp_source(mbpp)])
    assert [(p["domain"], p["split"], p["source"]) for p in problems] == [("math", "train", str(math))] * 4 + [
        ("code", "train", str(mbpp))
    ] * 3
    first = problems[0]
    assert first["id"] == "test/precalculus/807.json" and first["difficulty"] == 2.0
    assert first["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first["prompt"].endswith("Put your final answer within \\boxed{}.")
    assert json.loads(first["meta"]) == {"row": f"{math}:1"}
    assert grade(first, "so \\boxed{(3, \\frac{\\pi}{2})}")["correct"] is True
    assert grade(first, "\\boxed{(3, \\pi)}")["correct"] is False
    code = problems[4:]
    assert [p["id"] for p in code] == ["2", "3", "4"]
    assert "assert is_not_prime(2) == False" in code[1]["prompt"]
    assert code[0]["tests"][0] == {
        "input": None,
        "output": None,
        "entry_point": None,
        "test": mbpp_rows[0]["test_list"][0],
    }
    for problem, row in zip(code, mbpp_rows, strict=True):
        verdict = grade(problem, fenced(row["code"]))
        assert (verdict["correct"], verdict["tests_passed"]) == (True, len(row["test_list"]))
    assert grade(code[1], fenced("def is_not_prime(n):\n    return True"))["correct"] is False


def test_a_parquet_pool_of_humaneval_runs_check_candidate_on_the_entry_point(tmp_path):
    rows = rows_of("humaneval", [1, 3])
    path = write_parquet(tmp_path / "humaneval.parquet", rows)
    problems = pool(
        [{"path": str(path), "domain": "code", "fields": {"tests": "test", "id": "task_id"}, "template": "{prompt}"}]
    )
    assert [p["id"] for p in problems] == ["HumanEval/0", "HumanEval/2"]
    assert [t["entry_point"] for p in problems for t in p["tests"]] == ["has_close_elements", "truncate_number"]
    for problem, row in zip(problems, rows, strict=True):
        assert grade(problem, fenced(row["prompt"] + row["canonical_solution"]))["correct"] is True
        wrong = row["prompt"] + "    return None\n"
        assert grade(problem, fenced(wrong))["correct"] is False


def test_a_folder_is_one_source_of_its_jsonl_and_parquet_files_in_name_order(tmp_path):
    folder = tmp_path / "pool"
    write_jsonl(folder / "a.jsonl", rows_of("math500", [1, 2]))
    write_parquet(folder / "b" / "part-0.parquet", rows_of("math500", [3]))
    (folder / "notes.txt").write_text("not data")
    problems = pool([math_source(folder)])
    assert [json.loads(p["meta"])["row"] for p in problems] == [
        f"{folder / 'a.jsonl'}:1",
        f"{folder / 'a.jsonl'}:2",
        f"{folder / 'b' / 'part-0.parquet'}: row 1",
    ]
    (folder / "empty").mkdir()
    with pytest.raises(RecipeError, match=r"problems.sources\[0\].path: .*empty holds no .jsonl or .parquet file"):
        pool([math_source(folder / "empty")])


def test_held_out_rows_are_a_seeded_share_or_count_or_a_file_of_their_own(tmp_path):
    math = write_jsonl(tmp_path / "math.jsonl", rows_of("math500", list(range(1, 9))))

    def held(**fields) -> list[str]:
        seed = fields.pop("seed", 0)
        return [p["id"] for p in pool([math_source(math, **fields)], seed=seed) if p["split"] == "eval"]

    assert len(held(eval_size=0.25)) == 2 and len(held(eval_size=0.3)) == 3 and len(held(eval_size=3)) == 3
    assert held(eval_size=3) == held(eval_size=3)
    assert {tuple(held(eval_size=3, seed=seed)) for seed in range(6)} != {tuple(held(eval_size=3))}
    assert held() == []
    eval_rows = rows_of("math500", [20, 21])
    eval_file = write_jsonl(tmp_path / "eval.jsonl", eval_rows)
    assert held(eval_path=str(eval_file)) == [row["unique_id"] for row in eval_rows]
    with pytest.raises(RecipeError, match=r"eval_size: 8 holds out 8 of 8 rows"):
        held(eval_size=8)
    with pytest.raises(ValueError, match="not both"):
        ProblemsOptions.model_validate(
            {"source": "file", "sources": [math_source(math, eval_size=2, eval_path=str(eval_file))]}
        )


def test_mcq_answers_given_as_letter_index_or_text_become_the_letter_and_the_prompt_lists_the_choices(tmp_path):
    rows = rows_of("mmlu_stem_nonmath", [1, 2, 3])
    rows[1]["answer"] = "ABCD".index(rows[1]["answer"])
    rows[2]["answer"] = rows[2]["choices"]["ABCD".index(rows[2]["answer"])]
    letters = [row["answer"] for row in rows_of("mmlu_stem_nonmath", [1, 2, 3])]
    path = write_jsonl(tmp_path / "mmlu.jsonl", rows)
    problems = pool([{"path": str(path), "domain": "mcq", "fields": {"prompt": "question"}}])
    assert [p["answer"] for p in problems] == letters
    assert problems[0]["prompt"].endswith(f"D) {rows[0]['choices'][3]}")
    assert json.loads(problems[0]["meta"])["choices"] == 4
    assert grade(problems[0], f"\\boxed{{{letters[0]}}}")["correct"] is True


def test_rows_carry_their_own_domain_when_the_source_has_none(tmp_path):
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"prompt": "What is 2 + 3?", "answer": "5", "domain": "math"},
            {"prompt": "Print the sum.", "tests": [{"input": "1 2\n", "output": "3\n"}], "domain": "code"},
            {"prompt": "Colour of the sky?", "answer": "blue", "domain": "poetry"},
        ],
    )
    _, errors = pool_problems(ProblemsOptions(source="file", sources=[{"path": str(path)}]))
    assert errors == [
        f"{path}:3: field 'domain': domain 'poetry' is not one of math, code, mcq, text (or set the source's domain)"
    ]
    problems = load_pool(ProblemsOptions(source="file", sources=[{"path": str(path), "limit": 2}]))
    assert problems[1]["tests"] == [{"input": "1 2\n", "output": "3\n", "entry_point": None, "test": None}]
    assert grade(problems[1], fenced("a, b = map(int, input().split())\nprint(a + b)"))["correct"] is True


def test_hub_sources_load_through_datasets_and_an_unreachable_hub_stops_the_run_before_any_stage(monkeypatch, tmp_path):
    import datasets

    asked = []

    def fake_load(name, config=None, split=None):
        asked.append((name, config, split))
        if name == "offline/none":
            raise ConnectionError("Couldn't reach 'offline/none' on the Hub")
        return datasets.Dataset.from_list(rows_of("math500", [1, 2, 3, 5] if split == "train" else [4]))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    source = {"hub": "someone/math", "hub_config": "default", "eval_split": "test", "domain": "math", "limit": 3}
    source["fields"] = {"prompt": "problem", "id": "unique_id"}
    problems = load_pool(ProblemsOptions(source="hub", sources=[source]))
    assert asked == [("someone/math", "default", "train"), ("someone/math", "default", "test")]
    assert [(p["split"], p["source"]) for p in problems] == [("train", "hub:someone/math")] * 3 + [
        ("eval", "hub:someone/math")
    ]
    assert json.loads(problems[3]["meta"])["row"] == "hub:someone/math/test: row 1"
    with pytest.raises(RecipeError, match=r"problems.sources\[0\].hub: cannot load 'offline/none'.*ConnectionError"):
        load_pool(ProblemsOptions(source="hub", sources=[{"hub": "offline/none"}]))
    run_dir = tmp_path / "run"
    recipe = tiny_recipe_dict(run_dir) | {"problems": {"source": "hub", "sources": [{"hub": "offline/none"}]}}
    code, said = rdistill("run", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 2 and "problems.sources[0].hub: cannot load 'offline/none'" in said and not run_dir.exists()


def test_source_kinds_and_places_are_checked_with_the_recipe():
    with pytest.raises(ValueError, match="exactly one of `path`"):
        ProblemsOptions.model_validate({"source": "file", "sources": [{"path": "a.jsonl", "hub": "x/y"}]})
    with pytest.raises(ValueError, match=r"sources\[0\]: source 'file' reads `path`"):
        ProblemsOptions.model_validate({"source": "file", "sources": [{"hub": "x/y"}]})
    with pytest.raises(ValueError, match="needs at least one source"):
        ProblemsOptions.model_validate({"source": "hub"})
    with pytest.raises(ValueError, match="only read with source 'file' or 'hub'"):
        ProblemsOptions.model_validate({"sources": [{"path": "a.jsonl"}]})


def test_a_duplicate_id_names_both_rows(tmp_path):
    path = write_jsonl(tmp_path / "math.jsonl", rows_of("math500", [1, 2, 1]))
    with pytest.raises(
        DataError, match=rf"{path}:3: duplicate problem id 'test/precalculus/807.json' \(first at {path}:1\)"
    ):
        pool([math_source(path)])


# Bad rows: `rdistill run` stops with exit 2 before any stage, naming file, line and field.

GOOD_MATH = {"problem": "What is 2 + 3?", "answer": "5"}
GOOD_CODE = {"problem": "Add.", "tests": [{"input": "1 2\n", "output": "3\n"}]}
GOOD_MCQ = {"problem": "Pick.", "choices": ["a", "b", "c", "d"], "answer": "B"}
BAD_ROWS = {
    "missing prompt": ("math", GOOD_MATH, '{"answer": "4"}', "field 'problem': missing"),
    "math row without answer": (
        "math",
        GOOD_MATH,
        '{"problem": "What is 2 + 2?"}',
        "field 'answer': a gold answer is needed",
    ),
    "stdin/stdout test without output": (
        "code",
        GOOD_CODE,
        '{"problem": "Echo.", "tests": [{"input": "1\\n", "output": "1\\n"}, {"input": "2\\n"}]}',
        "field 'tests'[1]: stdin/stdout test without an 'output' text",
    ),
    "function test not parseable": (
        "code",
        GOOD_CODE,
        '{"problem": "Write f.", "tests": ["assert f(1) == "]}',
        "field 'tests'[0].test: not parseable Python (line 1: invalid syntax)",
    ),
    "mcq answer not among choices": (
        "mcq",
        GOOD_MCQ,
        '{"problem": "Pick.", "choices": ["a", "b", "c", "d"], "answer": "E"}',
        "field 'answer': 'E' is not among the 4 choices (A-D)",
    ),
    "torn JSON line": ("math", GOOD_MATH, '{"problem": "What is 2 + 2?", "answ', "invalid JSON"),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_a_bad_row_stops_the_run_before_any_stage_naming_file_line_and_field(tmp_path, kind):
    domain, good, bad, message = BAD_ROWS[kind]
    path = tmp_path / "pool.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + bad + "\n" + json.dumps(good | {"problem": "Another."}) + "\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("kept")
    source = {"path": str(path), "domain": domain, "fields": {"prompt": "problem"}, "eval_size": 1}
    recipe = tiny_recipe_dict(run_dir) | {"problems": {"source": "file", "sources": [source]}}
    code, said = rdistill("run", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 2, said
    assert f"{path}:3: {message}" in said
    assert "before any stage ran (nothing was written)" in said
    assert sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"] and (run_dir / "notes.txt").read_text() == "kept"


def test_a_bad_parquet_row_is_named_by_its_row_number(tmp_path):
    path = write_parquet(tmp_path / "pool.parquet", [GOOD_MATH, {"problem": "What is 2 + 2?", "answer": None}])
    recipe = tiny_recipe_dict(tmp_path / "run") | {
        "problems": {
            "source": "file",
            "sources": [{"path": str(path), "domain": "math", "fields": {"prompt": "problem"}}],
        }
    }
    code, said = rdistill("check", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 2 and f"{path}: row 2: field 'answer': a gold answer is needed, got null" in said
    assert not (tmp_path / "run").exists()


def test_check_asks_for_held_out_rows_where_a_micro_format_benchmark_reads_them(tmp_path):
    path = write_jsonl(tmp_path / "math.jsonl", rows_of("math500", [1, 2, 3]))
    recipe = tiny_recipe_dict(tmp_path / "run") | {"problems": {"source": "file", "sources": [math_source(path)]}}
    recipe["evaluate"] = {"benchmarks": [{"name": "math"}]}
    code, said = rdistill("check", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 2 and "evaluate.benchmarks[0]: the pool holds no eval problems of domain 'math'" in said
    recipe["problems"]["sources"][0]["eval_size"] = 1
    code, said = rdistill("check", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 0, said


# Decontamination against the recipe's benchmarks.


def test_curation_decontaminates_against_the_recipes_benchmarks_unless_turned_off():
    aime = rows_of("aime24", [5])[0]
    rows, problems = world()
    problems["math4"] = {**problems["math4"], "prompt": f"Solve this: {aime['problem']}"}
    benchmark = {"name": "aime24", "format": "aime", "path": str(DATA / "aime24"), "limit": 1}
    recipe = Recipe.model_validate({"evaluate": {"benchmarks": [{"name": "math"}, benchmark]}})
    assert [spec.name for spec in recipe.curate.decontaminate.benchmarks] == ["aime24"]
    curate(rows, problems, {"a", "b", "c"}, recipe.curate)
    assert {r["matched"].split(" (")[0] for r in rows if r["problem_id"] == "math4"} == {
        f"contaminated: 13-gram overlap with aime24/{aime['id']}"
    }
    rows, problems = world()
    problems["math4"] = {**problems["math4"], "prompt": f"Solve this: {aime['problem']}"}
    off = Recipe.model_validate(
        {"evaluate": {"benchmarks": [benchmark]}, "curate": {"decontaminate": {"benchmarks": []}}}
    )
    curate(rows, problems, {"a", "b", "c"}, off.curate)
    assert {r["step"] for r in rows if r["problem_id"] == "math4"} != {"decontaminate"}
    assert all(r["matched"] is None for r in rows if r["problem_id"] == "math4")


# The whole pipeline on a file pool, its teacher served over the OpenAI API.


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["jsonl", "parquet"])
def test_a_file_pool_runs_through_the_whole_pipeline(tmp_path, kind):
    """MATH-500 and MBPP slices, one AIME problem copied in; a canned teacher whose '\\boxed{42}' is right once.

    MATH-500 line 6's answer is 42: the one correct trace; the copied AIME problem is dropped as
    contamination of the recipe's AIME benchmark, though no extra file names it. The base is the
    tiny micro student at random initialisation (a local folder): building the trained one
    would take most of the test's time and prove nothing more here.
    """
    writer = write_jsonl if kind == "jsonl" else write_parquet
    aime = rows_of("aime24", [2])[0]
    math_rows = rows_of("math500", [4, 6]) + [
        {"problem": aime["problem"], "answer": aime["answer"], "unique_id": aime["id"]}
    ]
    math = writer(tmp_path / f"math.{kind}", math_rows)
    math_eval = writer(tmp_path / f"math-eval.{kind}", rows_of("math500", [7]))
    mbpp = writer(tmp_path / f"mbpp.{kind}", rows_of("mbpp", [2, 4, 6]))
    run_dir = tmp_path / "run"
    with served("--canned-tokens", "12") as url:
        recipe = tiny_recipe_dict(run_dir) | {
            "problems": {
                "source": "file",
                "sources": [math_source(math, eval_path=str(math_eval)), mbpp_source(mbpp, eval_size=1)],
            },
            "base": {"student": str(micro_student(tmp_path / "student"))},
            "generate": {"teachers": [openai_teacher("canned", [url])], "samples_per_problem": 1},
            "curate": {"budget": 10, "filters": {"max_repetition": 1.0}},
            "evaluate": {
                "sampling": {"temperature": 0.0, "max_tokens": 8},
                "benchmarks": [
                    {"name": "math"},
                    {"name": "code"},
                    {
                        "name": "aime24",
                        "format": "aime",
                        "path": str(DATA / "aime24"),
                        "limit": 1,
                        "samples": 1,
                        "max_tokens": 8,
                        "group": "generalisation",
                    },
                ],
            },
        }
        code, said = rdistill("run", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 0, said
    problems = read_parquet(run_dir / "problems.parquet")
    assert (
        sorted((p["split"], p["domain"]) for p in problems)
        == [("eval", "code"), ("eval", "math")] + [("train", "code")] * 2 + [("train", "math")] * 3
    )
    verified = read_parquet(run_dir / "verified.parquet")
    assert sorted(r["problem_id"] for r in verified if r["correct"]) == ["test/prealgebra/1622.json"]
    assert {r["verify_error"] for r in verified if r["domain"] == "code"} == {"no_code"}
    curation = json.loads((run_dir / "curation.json").read_text())
    assert [(hit["benchmark"], hit["item_id"]) for hit in curation["decontamination"]] == [("aime24", aime["id"])]
    sft = [json.loads(line) for line in (run_dir / "sft.jsonl").read_text().splitlines()]
    assert [example["problem_id"] for example in sft] == ["test/prealgebra/1622.json"]
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert {name: bench["problems"] for name, bench in summary["benchmarks"].items()} == {
        "math": 1,
        "code": 1,
        "aime24": 1,
    }
    assert set(summary["students"]) == {"base", "distilled"}
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert [spec["name"] for spec in resolved["curate"]["decontaminate"]["benchmarks"]] == ["aime24"]
