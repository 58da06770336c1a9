"""Sweeps: grid expansion, overrides, the summary over seeds, and a tiny sweep run end to end and resumed."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_recipe_dict
from rdistill.config import Recipe, SweepOptions
from rdistill.data.manifest import read_manifest
from rdistill.errors import RecipeError
from rdistill.report import build_sections
from rdistill.sweep import Cell, cell_recipe, cells, run_sweep, summarise


def test_cells_cross_variants_grid_and_seeds_seed_first():
    options = SweepOptions(
        variants={"small": {"curate.budget": 10}, "big": {"curate.budget": 50}},
        grid={"curate.strategy": ["random", "s1"]},
        seeds=[0, 1],
    )
    grid = cells(options)
    assert len(grid) == 8
    assert [c.name for c in grid[:4]] == [
        "small-strategy=random-seed0",
        "small-strategy=s1-seed0",
        "big-strategy=random-seed0",
        "big-strategy=s1-seed0",
    ]
    assert dict(grid[3].overrides) == {"curate.budget": 50, "curate.strategy": "s1"} and grid[3].seed == 0
    assert cells(SweepOptions()) == []


def test_cell_recipe_applies_overrides_and_seed_and_rejects_what_a_cell_cannot_vary(tmp_path):
    recipe = Recipe()
    cell = Cell("c", (("curate.quotas", {"math": 0.5, "code": 0.5}), ("train.sft.epochs", 2.0)), seed=7)
    sub = cell_recipe(recipe, cell, tmp_path)
    assert sub.curate.quotas == {"math": 0.5, "code": 0.5} and sub.train.sft.epochs == 2.0
    assert sub.curate.seed == sub.train.sft.seed == 7 and sub.run_dir == tmp_path / "sweep" / "c-seed7"
    stages = [{"name": "first", "sft": {"epochs": 6}}, {"name": "second", "sft": {"seed": 3}}]
    staged = cell_recipe(recipe, Cell("s", (("train.stages", stages),), seed=7), tmp_path)
    assert [stage.sft.seed for stage in staged.train.stages] == [7, 7]  # every stage trains with the cell's seed
    for key, value, message in (
        ("report.title", "x", "a cell may vary problems"),
        ("problems.micro.math", -1, "problems.micro.math"),
        ("curate.budgett", 10, "unknown key 'budgett'"),
        ("curate.budget", -1, "curate.budget"),
    ):
        with pytest.raises(RecipeError, match=message):
            cell_recipe(recipe, Cell("bad", ((key, value),), None), tmp_path)


def test_summary_gives_mean_and_spread_over_seeds():
    def result(group, seed, math, code, text):
        return {
            "name": f"{group}-{seed}",
            "group": group,
            "seed": seed,
            "overrides": {},
            "examples": 10,
            "accuracy": {"math": math, "code": code, "text": text},
            "base_accuracy": {"math": 0.1},
            "in_domain": (math + code) / 2,
            "generalisation": None,
            "out_of_domain": text,
        }

    summary = summarise([result("a", 0, 0.2, 0.4, 0.5), result("a", 1, 0.4, 0.6, 0.7), result("b", 0, 0.1, 0.1, 0.1)])
    first, second = summary["groups"]
    assert (
        first["seeds"] == [0, 1]
        and first["in_domain"]["mean"] == pytest.approx(0.4)
        and first["in_domain"]["std"] == pytest.approx(0.1414, abs=1e-4)
    )
    assert first["out_of_domain"] == {
        "mean": pytest.approx(0.6),
        "std": pytest.approx(0.1414, abs=1e-4),
        "min": 0.5,
        "max": 0.7,
    }
    assert second["in_domain"]["std"] == 0.0 and summary["base"] == {"math": 0.1}


def test_tiny_sweep_runs_every_cell_reuses_the_parent_files_and_skips_finished_cells(tmp_path, capsys):
    raw = tiny_recipe_dict(tmp_path / "run")
    raw["sweep"] = {
        "variants": {"curated": {"curate.strategy": "stratified", "curate.trajectories": {"per_problem": 1}}},
        "seeds": [0, 1],
    }
    raw["curate"] = {"budget": 40}
    raw["evaluate"]["sampling"]["max_tokens"] = 24
    parent = run_sweep(Recipe.model_validate(raw))
    summary = json.loads((parent / "sweep" / "summary.json").read_text())
    assert [(g["group"], g["seeds"], g["examples"]["mean"]) for g in summary["groups"]] == [("curated", [0, 1], 40)]
    assert 0 <= summary["groups"][0]["in_domain"]["mean"] <= 1
    cell_dir = parent / "sweep" / "curated-seed0"
    assert not (parent / "sweep" / "upstream").exists() and [c["upstream"] for c in summary["cells"]] == [".", "."]
    assert (cell_dir / "verified.parquet").resolve() == (parent / "verified.parquet").resolve()
    assert (cell_dir / "verified.parquet").is_symlink() and (cell_dir / "eval" / "summary.json").exists()
    assert {"curate", "train", "evaluate"} <= set(
        read_manifest(cell_dir)["stages"]
    ) and "generate" not in read_manifest(cell_dir)["stages"]
    second_base = sorted((parent / "sweep" / "curated-seed1" / "eval" / "parts" / "base").iterdir())
    assert second_base and all(
        p.is_symlink() and p.resolve().parent == (cell_dir / "eval" / "parts" / "base").resolve() for p in second_base
    ), "the base is answered once"
    assert summary["cells"][0]["base_accuracy"] == summary["cells"][1]["base_accuracy"]
    assert "## Sweep" in (parent / "report.md").read_text()
    assert "Curation steps" in [section.title for section in build_sections(cell_dir)]
    capsys.readouterr()
    run_sweep(Recipe.model_validate(raw))
    skipped = capsys.readouterr().out
    assert "skip train" in skipped and "skip evaluate" in skipped and "skip generate" in skipped
