"""Shared fixtures: a tiny recipe and a session-wide cache so the base student is built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rdistill.config import Recipe

REPO = Path(__file__).resolve().parents[1]


def tiny_recipe_dict(run_dir: Path) -> dict:
    """A recipe small enough for a test: tiny pools, a tiny student, short training."""
    return {
        "name": "tiny",
        "run_dir": str(run_dir),
        "problems": {"micro": {"math": 40, "code": 30, "eval_per_domain": 8, "difficulties": [1, 2]}},
        "generate": {"teachers": [{"name": "stepwise"}, {"name": "compact"}], "samples_per_problem": 2},
        "curate": {"budget": 60},
        "train": {
            "micro_student": {
                "vocab_size": 600,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_layers": 2,
                "num_heads": 2,
                "base_math": 150,
                "base_code": 150,
                "base_arithmetic": 200,
                "fact_repeats": 1,
                "base_epochs": 1.0,
            },
            "sft": {"epochs": 1.0, "batch_size": 16, "save_steps": 2},
        },
        "evaluate": {"sampling": {"temperature": 0.0, "max_tokens": 48}},
    }


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point the micro-student cache at a per-session folder (nothing leaks into ~/.cache)."""
    cache = tmp_path_factory.mktemp("rdistill-cache")
    os.environ["RDISTILL_CACHE"] = str(cache)
    return cache


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Recipe:
    """The tiny recipe, writing into a fresh run directory."""
    return Recipe.model_validate(tiny_recipe_dict(tmp_path / "run"))
