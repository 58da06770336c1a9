"""Recipes: defaults work, the demo recipe is the defaults, bad recipes fail clearly and write nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from helpers import REPO
from rdistill.cli import app
from rdistill.config import Recipe, load_recipe
from rdistill.errors import RecipeError


def test_demo_recipe_is_the_documented_defaults():
    assert load_recipe(REPO / "recipes" / "micro.yaml") == Recipe(name="micro")


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("**/*.yaml")), ids=lambda path: path.name)
def test_every_shipped_recipe_is_valid(path):
    assert load_recipe(path).name == path.stem


def test_empty_recipe_takes_every_default(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_recipe(path) == Recipe()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curate:\n  budgett: 10\n", r"curate\.budgett: unknown key"),
        ("curate:\n  budget: many\n", r"curate\.budget: .*integer"),
        ("generate:\n  teachers:\n    - name: stepwise\n      backend: nope\n", r"generate\.teachers\.0\.backend"),
        ("train:\n  sft:\n    epochs: [1]\n", r"train\.sft\.epochs"),
        ("- a list\n", "expected a mapping"),
        ("curate: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_recipes_name_file_and_key(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=expected) as error:
        load_recipe(path)
    assert str(path) in str(error.value)


def test_cli_rejects_a_bad_recipe_with_exit_code_2_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.yaml"
    run_dir = tmp_path / "run"
    path.write_text(f"run_dir: {run_dir}\ncurate:\n  budget: -5\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "curate.budget" in result.output
    assert not run_dir.exists()


def test_unknown_micro_teacher_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(f"run_dir: {tmp_path / 'run'}\ngenerate:\n  teachers:\n    - name: nobody\n")
    for stage in ("problems", "generate"):
        result = CliRunner().invoke(app, [stage, "--recipe", str(path)])
        assert result.exit_code == 2, "the whole recipe is checked before the first stage runs"
        assert "generate.teachers[0].name" in result.output and "nobody" in result.output
    assert not (tmp_path / "run").exists()


def test_console_script_help_lists_every_stage():
    result = subprocess.run([sys.executable, "-m", "rdistill", "--help"], capture_output=True, text=True, check=True)
    for command in (
        "problems",
        "generate",
        "verify",
        "teachers",
        "curate",
        "train",
        "evaluate",
        "report",
        "run",
        "demo",
    ):
        assert command in result.stdout


def test_recipe_reference_is_up_to_date():
    from rdistill.config import options_markdown

    assert (REPO / "docs" / "recipes.md").read_text() == options_markdown(), (
        "regenerate: python -m rdistill.config > docs/recipes.md"
    )


def test_a_pool_larger_than_the_world_can_draw_is_a_recipe_error(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(
        f"run_dir: {tmp_path / 'run'}\nproblems:\n  micro:\n    math: 0\n    code: 2000\n    difficulties: [1]\n"
    )
    result = CliRunner().invoke(app, ["problems", "--recipe", str(path)])
    assert result.exit_code == 2
    assert "problems.micro.code" in result.output and "cannot give" in result.output
