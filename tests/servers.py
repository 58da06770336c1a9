"""Start `rdistill serve` on 127.0.0.1 for a test, and the recipe pieces that point a teacher at it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml


@contextmanager
def served(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[str]:
    """Run `rdistill serve ARGS` on a free port of 127.0.0.1; yield its base URL, stop it afterwards."""
    errors = log.open("w") if log else subprocess.DEVNULL
    command = [sys.executable, "-m", "rdistill", "serve", "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert " at http://127.0.0.1:" in line, f"the server did not start: {line!r}"
        yield line.split(" at ")[1].strip()
    finally:
        process.kill()
        process.wait()
        if log:
            errors.close()


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


def rdistill(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the rdistill CLI in a subprocess, capturing its output."""
    return subprocess.run([sys.executable, "-m", "rdistill", *args], capture_output=True, text=True, env=env, timeout=timeout)
