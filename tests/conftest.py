"""Shared fixtures: a session-wide model cache (the base student is built once) and the tiny recipe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import tiny_recipe_dict
from rdistill.config import Recipe


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
