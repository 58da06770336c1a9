"""The study recipes: every claim names groups its sweep has, and the real-model studies pass a dry run offline."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import REPO
from rdistill.cli import app
from rdistill.config import load_recipe
from rdistill.sweep import cell_recipe, cells

STUDIES = sorted((REPO / "recipes" / "study").glob("**/*.yaml"))
REAL = sorted((REPO / "recipes" / "study" / "real").glob("*.yaml"))
CLAIM_IDS = {"DED-1", "DED-2", "DED-3", "Valley-1", "Valley-2", "Valley-3", "Valley-4"}


@pytest.mark.parametrize("path", STUDIES, ids=lambda path: path.relative_to(REPO / "recipes" / "study").as_posix())
def test_a_study_states_claims_its_cells_can_decide(path: Path):
    recipe = load_recipe(path)
    grid = cells(recipe.sweep)
    groups = {cell.group for cell in grid}
    assert recipe.sweep.claims and len(recipe.sweep.seeds) >= 3, "every claim over three seeds or more"
    for claim in recipe.sweep.claims:
        assert claim.id in CLAIM_IDS
        for comparison in claim.comparisons:
            assert {comparison.a, comparison.b} <= groups, f"{claim.id} compares groups the sweep does not have"
        if claim.size_key:
            assert claim.size_key in recipe.sweep.grid and len(recipe.sweep.grid[claim.size_key]) >= 3
        if claim.kind == "teacher_choice":
            assert "curate.teacher" in recipe.sweep.grid
    for cell in grid:
        assert cell_recipe(recipe, cell, Path("parent")).name == cell.name


def test_the_micro_world_studies_cover_every_claim_on_both_bases():
    micro = [load_recipe(path) for path in STUDIES if path not in REAL]
    by_base = {
        kind: {claim.id for recipe in micro if recipe.base.micro.kind == kind for claim in recipe.sweep.claims}
        for kind in ("direct", "reasoner")
    }
    assert by_base == {"direct": CLAIM_IDS, "reasoner": CLAIM_IDS}


@pytest.mark.parametrize("path", REAL, ids=lambda path: path.name)
def test_a_real_study_prints_one_command_per_cell_without_touching_a_hub_or_an_endpoint(path: Path, tmp_path):
    recipe = load_recipe(path)
    assert recipe.problems.source == "hub" and all(t.backend == "openai" for t in recipe.generate.teachers)
    printed = CliRunner().invoke(app, ["sweep", str(path), "--run-dir", str(tmp_path / "run"), "--print-commands"])
    assert printed.exit_code == 0, printed.output
    commands = [shlex.split(line) for line in printed.output.splitlines() if line and not line.startswith("#")]
    assert len(commands) == len(cells(recipe.sweep)) + 2 and not (tmp_path / "run").exists()


def test_the_real_studies_cover_every_claim_for_both_students():
    students: dict[str, set[str]] = {}
    for path in REAL:
        recipe = load_recipe(path)
        students.setdefault(recipe.base.student, set()).update(claim.id for claim in recipe.sweep.claims)
    assert students == {"models/Qwen2.5-7B-Instruct": CLAIM_IDS, "models/DeepSeek-R1-Distill-Qwen-32B": CLAIM_IDS}
