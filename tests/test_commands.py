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
