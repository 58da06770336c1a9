"""The commands beside the stages (issue 14): --version, init, check, runs."""

from __future__ import annotations

import json

from helpers import rdistill, write_recipe
from rdistill import __version__
from rdistill.config import load_recipe


def test_version_prints_the_package_version():
    code, said = rdistill("--version")
    assert code == 0 and said == f"rdistill {__version__}"


def test_init_writes_a_commented_recipe_that_validates_and_never_overwrites(tmp_path):
    path = tmp_path / "recipe.yaml"
    code, said = rdistill("init", str(path))
    assert code == 0, said
    text = path.read_text()
    assert text.count("#") > 10, "the starter recipe explains its keys"
    assert load_recipe(path).name == "my-run"
    code, said = rdistill("check", str(path))
    assert code == 0 and "no problems found" in said
    path.write_text("name: mine\n")
    code, said = rdistill("init", str(path))
    assert code == 2 and "already exists" in said and path.read_text() == "name: mine\n"


def test_runs_lists_each_run_with_its_stage_states_and_scores(tmp_path):
    done = tmp_path / "runs" / "good"
    recipe = {"name": "good-recipe", "run_dir": str(done), "problems": {"micro": {"math": 8, "code": 4}}}
    assert rdistill("problems", "--recipe", str(write_recipe(tmp_path / "good.yaml", recipe)))[0] == 0
    (done / "eval").mkdir()
    summary = {"groups": {"base": {"in_domain": {"accuracy": 0.25}}, "distilled": {"in_domain": {"accuracy": 0.5}}}}
    (done / "eval" / "summary.json").write_text(json.dumps(summary))
    broken = tmp_path / "runs" / "broken"
    broken.mkdir()
    manifest = {"stages": {"generate": {"status": "failed", "error": "boom"}}}
    (broken / "manifest.json").write_text(json.dumps(manifest))
    code, said = rdistill("runs", str(tmp_path / "runs"))
    assert code == 0, said
    assert "good-recipe" in said and "done: problems" in said and "distilled 50.0%" in said
    assert "failed: generate" in said


def test_plan_matches_the_tokens_a_micro_world_run_counts_within_10_percent(tmp_path):
    from helpers import QUIET, tiny_recipe_dict
    from rdistill.config import Recipe
    from rdistill.data import read_jsonl
    from rdistill.pipeline import run_one
    from rdistill.plan import plan

    recipe = Recipe.model_validate(tiny_recipe_dict(tmp_path / "run"))
    estimate = plan(recipe)
    for stage in ("problems", "generate"):
        run_one(stage, recipe, tmp_path / "run", QUIET)
    for teacher in recipe.generate.teachers:
        rows = read_jsonl(tmp_path / "run" / "rollouts" / f"{teacher.name}.jsonl")
        planned = estimate["generate"][teacher.name]
        assert planned["rollouts"] == len(rows)
        for field in ("prompt_tokens", "completion_tokens"):
            counted = sum(row[field] for row in rows)
            assert abs(planned[field] - counted) <= 0.1 * counted, (teacher.name, field, planned[field], counted)
    assert estimate["train"]["steps"] > 0 and estimate["gpu_hours"]["train"] > 0


def test_plan_prints_gpu_hours_and_dollars_for_a_served_teacher(tmp_path):
    recipe = {
        "generate": {"teachers": [{"name": "big", "backend": "openai", "model": "m", "base_urls": ["http://x/v1"]}]},
        "problems": {"micro": {"math": 10, "code": 10}},
    }
    code, said = rdistill("plan", str(write_recipe(tmp_path / "r.yaml", recipe)), "--teacher-completion-tokens", "1000")
    assert code == 0, said
    assert "generate big: 40 requests" in said and "40,000 completion tokens (declared)" in said
    assert "GPU-hours: train" in said and "total $" in said


def test_the_recipe_reference_documents_every_field_of_each_spec_in_a_list():
    from rdistill.config import options_markdown

    reference = options_markdown()
    for key in ("generate.teachers[].base_urls", "evaluate.benchmarks[].path", "train.stages[].data"):
        assert f"| `{key}` |" in reference, key
    assert "| `evaluate.benchmarks[].name` | required |" in reference
