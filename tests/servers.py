"""Start `rdistill serve` on 127.0.0.1 for a test, and the recipe pieces that point a teacher at it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    """Start `rdistill serve ARGS` on a free port of 127.0.0.1; the process and its base URL."""
    command = [sys.executable, "-m", "rdistill", "serve", "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if " at http://127.0.0.1:" not in line:
        process.kill()
        raise AssertionError(f"the server did not start: {line!r}")
    return process, line.split(" at ")[1].strip()


@contextmanager
def served(*args: str) -> Iterator[str]:
    """`rdistill serve ARGS` on 127.0.0.1 for the length of the block; yields its base URL."""
    process, url = start_server(*args)
    try:
        yield url
    finally:
        process.kill()
        process.wait()


def fast_retries(**overrides) -> dict:
    """Retry settings for tests: short backoffs, so faults cost milliseconds."""
    return {"backoff_s": 0.02, "backoff_max_s": 0.2, "max_retries": 12, "endpoint_cooldown_s": 0.2, **overrides}


def openai_teacher(name: str, urls: list[str], **fields) -> dict:
    """A recipe entry for a teacher behind OpenAI-compatible endpoints."""
    return {"name": name, "backend": "openai", "model": "canned", "base_urls": urls, "timeout_s": 2.0, "retry": fast_retries(), **fields}


def generation_recipe(run_dir: Path, teachers: list[dict], math: int = 30, code: int = 20, samples: int = 2) -> dict:
    """A recipe whose pool gives (math + code) * samples requests per teacher."""
    return {
        "name": "served",
        "run_dir": str(run_dir),
        "problems": {"micro": {"math": math, "code": code, "eval_per_domain": 2, "difficulties": [1, 2, 3, 4]}},
        "generate": {"teachers": teachers, "samples_per_problem": samples, "sampling": {"max_tokens": 64}},
    }


def write_recipe(path: Path, recipe: dict) -> Path:
    """Save a recipe as YAML; returns its path."""
    path.write_text(yaml.safe_dump(recipe))
    return path


def rdistill(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the rdistill CLI in this process; its exit code and what it printed, line wrapping undone."""
    from typer.testing import CliRunner

    from rdistill.cli import app

    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())
