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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's models (torch itself and `rdistill.backends.hf`, which reads
    OMP_NUM_THREADS): on a shared 2-core machine two threads of a small model mostly wait for each other."""
    import torch

    previous_threads, previous_env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(previous_threads)
    if previous_env is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = previous_env


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Recipe:
    """The tiny recipe, writing into a fresh run directory."""
    return Recipe.model_validate(tiny_recipe_dict(tmp_path / "run"))
