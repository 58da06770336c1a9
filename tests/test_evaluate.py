"""The evaluate stage end to end: the tiny micro student through the hf backend on a slice of every real benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from helpers import DATA, QUIET, needs_data, tiny_recipe_dict, trained_micro_base
from rdistill import base as base_stage
from rdistill import problems
from rdistill.cli import app
from rdistill.config import EvaluateOptions, Recipe
from rdistill.data import EVAL_COLUMNS, read_jsonl, read_parquet, write_json
from rdistill.data.manifest import read_manifest
from rdistill.errors import RecipeError
from rdistill.evaluate import run
from test_evaluate_benchmarks import LCB_ROWS

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REAL = [("math500", "math500"), ("aime24", "aime"), ("aime25", "aime"), ("humaneval", "humaneval"), ("mbpp", "mbpp")]


@pytest.fixture(scope="module")
def tiny_base(one_torch_thread) -> Path:
    return trained_micro_base()


def recipe_dict(run_dir: Path, lcb_file: Path, base: Path) -> dict:
    """The tiny recipe evaluating the base and another student on one problem of every real benchmark, two samples each.

    The other student is the base itself, so its deltas must be 0; one problem and six tokens a
    sample keep this test to seconds (long prompts on a CPU), at the cost of wide intervals.
    """
    recipe = tiny_recipe_dict(run_dir)
    slice_ = {"limit": 1, "samples": 2, "max_tokens": 6}
    real = [{"name": name, "format": fmt, "path": str(DATA / name), **slice_} for name, fmt in REAL]
    recipe["evaluate"] = {
        "sampling": {"temperature": 0.0, "max_tokens": 24},
        "benchmarks": [
            {"name": "math", "limit": 4},
            *real,
            {"name": "lcb", "format": "livecodebench", "path": str(lcb_file), **slice_},
            {"name": "text", "group": "out_of_domain", "limit": 4},
            {
                "name": "mmlu",
                "format": "mcq",
                "path": str(DATA / "mmlu_stem_nonmath"),
                "group": "out_of_domain",
                **slice_,
            },
        ],
        "distilled": False,
        "students": [{"name": "other", "backend": "hf", "model": str(base)}],
        "bootstrap_samples": 200,
    }
    return recipe


@needs_data
def test_students_on_a_slice_of_every_benchmark_through_the_cli_then_resume(tmp_path, tiny_base, monkeypatch):
    run_dir = tmp_path / "run"
    # A benchmark path relative to the working directory (not to the run directory).
    monkeypatch.chdir(tmp_path)
    lcb_file = Path("lcb.jsonl")
    lcb_file.write_text("".join(json.dumps(row) + "\n" for row in LCB_ROWS))
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe_dict(run_dir, lcb_file, tiny_base)))
    recipe = Recipe.model_validate(recipe_dict(run_dir, lcb_file, tiny_base))
    problems.run(recipe.problems, run_dir, QUIET)
    base_stage.run(recipe.base, run_dir, QUIET)

    result = CliRunner().invoke(app, ["evaluate", "--recipe", str(recipe_file)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Students per benchmark" in result.output and "Scores per student" in result.output
    assert "│ mean " in result.output and "Δ other" in result.output

    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    names = ["math", "math500", "aime24", "aime25", "humaneval", "mbpp", "lcb", "text", "mmlu"]
    assert summary["in_domain"] == names[:7] and summary["out_of_domain"] == ["text", "mmlu"]
    assert list(summary["students"]) == ["base", "other"] and summary["reference"] == "base"
    assert summary["benchmarks"]["aime24"] | {"source": None} == {
        "scoring": "generate",
        "format": "aime",
        "domain": "math",
        "group": "in_domain",
        "problems": 1,
        "k": 2,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 6,
        "source": None,
    }
    for name in names:
        rows = read_parquet(run_dir / "eval" / f"{name}.parquet")
        assert set(EVAL_COLUMNS) <= set(rows[0])
        assert len(rows) == 2 * (4 if name in ("math", "text") else 2) and {row["student"] for row in rows} == {
            "base",
            "other",
        }
        scores = summary["students"]["other"][name]
        assert scores["delta"]["accuracy"] == 0.0 and scores["delta"]["accuracy_ci"] == [0.0, 0.0], (
            "greedy or seeded alike: same weights, same answers"
        )
        low, high = scores["accuracy_ci"]
        assert low <= scores["accuracy"] <= high
    real_rows = read_parquet(run_dir / "eval" / "humaneval.parquet")
    assert not any(row["finished"] for row in real_rows), "six tokens never finish a program"
    assert summary["students"]["base"]["humaneval"]["completion_rate"] == 0.0
    assert "maj_at_k" in summary["students"]["base"]["mmlu"] and "maj_at_k" not in summary["students"]["base"]["mbpp"]
    assert set(summary["groups"]["other"]) == {"in_domain", "out_of_domain"}

    # An interrupted evaluation: one part lost its graded rows and half its answers; the rest is read back.
    part = run_dir / "eval" / "parts" / "other" / "math"
    part.with_suffix(".parquet").unlink()
    kept = read_jsonl(part.with_suffix(".jsonl"))[:2]
    part.with_suffix(".jsonl").write_text("".join(json.dumps(row) + "\n" for row in kept) + '{"torn')
    manifest = read_manifest(run_dir)
    manifest["stages"]["evaluate"]["status"] = "running"
    write_json(manifest, run_dir / "manifest.json")
    before = read_parquet(run_dir / "eval" / "math.parquet")
    result = CliRunner().invoke(app, ["evaluate", "--recipe", str(recipe_file)])
    assert result.exit_code == 0, result.output
    assert "answer other on math" in result.output and "answer base" not in result.output
    assert len(read_jsonl(part.with_suffix(".jsonl"))) == 4
    after = read_parquet(run_dir / "eval" / "math.parquet")
    assert [(r["student"], r["problem_id"], r["sample_index"], r["response"]) for r in after] == [
        (r["student"], r["problem_id"], r["sample_index"], r["response"]) for r in before
    ], "greedy answers resumed where they stopped"


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(RecipeError, match=r"evaluate.students\[0\].name: student name 'base' is used twice"):
        run(EvaluateOptions(students=[{"name": "base", "backend": "hf", "model": "x"}]), tmp_path, QUIET)
    with pytest.raises(RecipeError, match=r"evaluate.benchmarks\[1\].name: 'a/b' must be letters"):
        run(EvaluateOptions(benchmarks=[{"name": "math"}, {"name": "a/b"}]), tmp_path, QUIET)
    with pytest.raises(
        RecipeError, match=r"evaluate.students\[0\].sampling: students are sampled with each benchmark's settings"
    ):
        run(EvaluateOptions(students=[{"name": "x", "backend": "hf", "model": "x", "sampling": {}}]), tmp_path, QUIET)
    with pytest.raises(RecipeError, match=r"evaluate: no student to evaluate"):
        run(EvaluateOptions(base=False, distilled=False), tmp_path, QUIET)


@needs_data
def test_a_student_served_by_rdistill_serve_is_evaluated_through_the_openai_backend(tmp_path, tiny_base):
    from helpers import served

    run_dir = tmp_path / "run"
    recipe = recipe_dict(run_dir, tmp_path / "unused.jsonl", tiny_base)
    benchmarks = [spec for spec in recipe["evaluate"]["benchmarks"] if spec["name"] != "lcb"]
    recipe["evaluate"]["benchmarks"] = [
        {**spec, "temperature": 0.0} if "format" in spec else spec for spec in benchmarks
    ]
    with served(str(tiny_base), "--model-name", "student", "--batch-size", "1") as url:
        recipe["evaluate"]["students"] = [
            {"name": "served", "backend": "openai", "model": "student", "base_urls": [url], "timeout_s": 60}
        ]
        parsed = Recipe.model_validate(recipe)
        problems.run(parsed.problems, run_dir, QUIET)
        base_stage.run(parsed.base, run_dir, QUIET)
        run(parsed.evaluate, run_dir, QUIET)

    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert list(summary["students"]) == ["base", "served"]
    responses = {}
    for spec in benchmarks:
        for row in read_parquet(run_dir / "eval" / f"{spec['name']}.parquet"):
            responses.setdefault((spec["name"], row["problem_id"], row["sample_index"]), {})[row["student"]] = row[
                "response"
            ]
    # The server hands back the completion without surrounding white space.
    same = [answers["base"].strip() == answers["served"].strip() for answers in responses.values()]
    assert len(same) == 2 * 5 + 4 * 2 + 2, "every benchmark answered by both students"
    assert sum(same) >= 0.8 * len(same), "greedy answers of the same weights agree, whether local or served"
