"""Helpers the test files share: the tiny recipe, data on disk, tiny models, servers on 127.0.0.1, disguised problems.

Fixtures live in conftest.py; everything a test module imports from another place lives here.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from rdistill.config import MicroStudentConfig
from rdistill.data.manifest import StageContext

REPO = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout (a worktree may sit deeper, so look further up too);
# RDISTILL_SHARED_DATA points elsewhere.
DATA = Path(
    os.environ.get("RDISTILL_SHARED_DATA")
    or next(
        (folder / "shared" / "data" for folder in REPO.parents if (folder / "shared" / "data").exists()),
        REPO.parent / "shared" / "data",
    )
)
needs_data = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")
MATH_FILES = [DATA / "math500" / "test.jsonl", DATA / "aime24" / "test.jsonl", DATA / "aime25" / "test.jsonl"]
# A stage context that prints nothing: no messages, no progress bars.
QUIET = StageContext(console=Console(quiet=True))


def tiny_recipe_dict(run_dir: Path) -> dict:
    """A recipe small enough for a test: tiny pools, a tiny student, short training."""
    return {
        "name": "tiny",
        "run_dir": str(run_dir),
        "problems": {
            "micro": {
                "math": 40,
                "code": 30,
                "eval_per_domain": 8,
                "generalisation_per_domain": 4,
                "difficulties": [1, 2],
            }
        },
        "base": {
            "micro": {
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
        },
        "generate": {"teachers": [{"name": "stepwise"}, {"name": "compact"}], "samples_per_problem": 2},
        "curate": {"budget": 60},
        "train": {"sft": {"epochs": 1.0, "batch_size": 16, "save_steps": 2}},
        "evaluate": {"sampling": {"temperature": 0.0, "max_tokens": 48}},
    }


def tiny_micro_config() -> MicroStudentConfig:
    """The tiny recipe's micro student configuration."""
    return MicroStudentConfig.model_validate(tiny_recipe_dict(Path("unused"))["base"]["micro"])


def micro_student(folder: Path) -> Path:
    """The tiny micro student at random initialisation (its template has its own generation markers)."""
    from rdistill.micro.student import build_model, build_tokenizer

    config = tiny_micro_config()
    tokenizer = build_tokenizer(config)
    build_model(config, tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def trained_micro_base() -> Path:
    """The tiny recipe's trained micro base, built once per test session (the cache is per session)."""
    from rdistill.base import ensure_micro_base

    return ensure_micro_base(tiny_micro_config())


def trace_conversations(count: int) -> list[list[dict[str, str]]]:
    """Micro-world traces of every difficulty, so that rows pack examples of different lengths."""
    from rdistill.micro.problems import generate_problems
    from rdistill.micro.teachers import TEACHERS, write_trace

    problems = generate_problems("math", count, [1, 2, 3, 4], seed=7)
    styles = list(TEACHERS.values())
    conversations = []
    for index, problem in enumerate(problems):
        trace = write_trace(problem, styles[index % len(styles)], seed=index)
        conversations.append(
            [
                {"role": "user", "content": problem["prompt"]},
                {"role": "assistant", "content": f"<think>\n{trace.reasoning}\n</think>\n{trace.response}"},
            ]
        )
    return conversations


# Servers: `rdistill serve` on 127.0.0.1 and the recipe pieces that point a teacher at it.


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
    return {
        "name": name,
        "backend": "openai",
        "model": "canned",
        "base_urls": urls,
        "timeout_s": 10.0,
        "retry": fast_retries(),
        **fields,
    }


def generation_recipe(run_dir: Path, teachers: list[dict], math: int = 30, code: int = 20, samples: int = 2) -> dict:
    """A recipe whose pool gives (math + code) * samples requests per teacher."""
    return {
        "name": "served",
        "run_dir": str(run_dir),
        "problems": {"micro": {"math": math, "code": code, "eval_per_domain": 4, "difficulties": [1, 2, 3, 4]}},
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


# Real benchmark problems and the disguises a copied problem takes (curation tests and benchmark).

RENAMES = {"x": "t", "y": "u", "z": "w", "a": "p", "b": "q", "c": "r", "n": "j", "m": "l", "k": "s"}


def math_problems() -> list[str]:
    """Every MATH-500, AIME 2024 and AIME 2025 problem text."""
    return [
        json.loads(line)["problem"] for path in MATH_FILES for line in path.read_text().splitlines() if line.strip()
    ]


def clean_pool() -> list[str]:
    """Problems that share no item with MATH-500 or AIME: MBPP, HumanEval and MMLU questions."""
    texts = [
        json.loads(line)["prompt"] for line in (DATA / "mbpp" / "test.jsonl").read_text().splitlines() if line.strip()
    ]
    texts += [
        json.loads(line)["prompt"]
        for line in (DATA / "humaneval" / "test.jsonl").read_text().splitlines()
        if line.strip()
    ]
    texts += [
        json.loads(line)["question"]
        for line in (DATA / "mmlu_stem_nonmath" / "test.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return texts


def respace(text: str, rng: random.Random) -> str:
    """Spaces doubled, turned into line breaks, or removed around operators."""
    text = re.sub(r"\s*([=+\-<>])\s*", r"\1", text)
    return re.sub(" ", lambda _: rng.choice(["  ", "\n", " \t ", " "]), text)


def repunctuate(text: str, rng: random.Random) -> str:
    """Sentence punctuation (before a space or the end, so never a decimal point) swapped, dropped or doubled."""
    return re.sub(r"[.,;:?!](?=\s|$)", lambda _: rng.choice(["", ".", ";", " ,", "!!"]), text)


def rename_variables(text: str) -> str:
    """One-letter variables inside $...$ renamed (x -> t, n -> j, ...); LaTeX commands untouched."""

    def inside(match: re.Match) -> str:
        return re.sub(
            r"(?<![\\A-Za-z])([a-z])(?![A-Za-z])", lambda m: RENAMES.get(m.group(1), m.group(1)), match.group(0)
        )

    return re.sub(r"\$[^$]+\$", inside, text)


def disguises(text: str, rng: random.Random) -> dict[str, str]:
    """The problem verbatim, re-spaced, re-punctuated, with renamed variables, and all three at once."""
    return {
        "verbatim": text,
        "respaced": respace(text, rng),
        "repunctuated": repunctuate(text, rng),
        "renamed": rename_variables(text),
        "all three": rename_variables(repunctuate(respace(text, rng), rng)),
    }


# Code to grade: hostile programs (the sandbox suite's), broken versions of reference solutions.

FUNCTION_TEST = [{"input": None, "output": None, "entry_point": "f", "test": "assert f([3, 1, 2]) == [2, 1, 3]"}]
STDIO_TEST = [{"input": "1 2\n", "output": "3\n", "entry_point": None, "test": None}]
# Hostile programs that need nothing of the test's own process (no port, pid or path of its
# own), each with the tests it is run against: none may pass.
HOSTILE = {
    "infinite_loop": ("def f(xs):\n    while True:\n        pass\n", FUNCTION_TEST),
    "fork_bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        FUNCTION_TEST,
    ),
    "memory_hog": ("hog = bytearray(8 << 30)\ndef f(xs):\n    return xs[::-1]\n", FUNCTION_TEST),
    "gigabyte_of_output": (
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n",
        STDIO_TEST,
    ),
    "sys_exit": ("import sys\nsys.exit(0)\n", FUNCTION_TEST),
    "os_exit": ("import os\nos._exit(0)\n", FUNCTION_TEST),
    "rebound_exec": (
        "import builtins\nbuiltins.exec = lambda *a, **k: None\ndef f(xs):\n    return xs\n",
        FUNCTION_TEST,
    ),
    "rebound_callable_and_write": (
        "import builtins, os\nbuiltins.callable = lambda x: False\nos.write = lambda *a: 0\n"
        "def f(xs):\n    return xs\n",
        FUNCTION_TEST,
    ),
    "forged_result": (
        "print('[\"pass\"]')\nimport os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, "
        "b'[\"pass\"]\\n')\n    except OSError:\n        pass\nos._exit(0)\n",
        STDIO_TEST,
    ),
    "background_child": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    while True:\n        time.sleep(0.1)\ndef "
        "f(xs):\n    return xs\n",
        FUNCTION_TEST,
    ),
}


def humaneval_mutants(row: dict) -> dict[str, str]:
    """Broken versions of a HumanEval canonical solution: each must fail."""
    canonical = row["prompt"] + row["canonical_solution"]
    entry = row["entry_point"]
    wrapper = (
        f"\n_original = {entry}\n"
        f"def {entry}(*args, **kwargs):\n"
        "    result = _original(*args, **kwargs)\n"
        "    if isinstance(result, bool):\n        return not result\n"
        "    if isinstance(result, (int, float)):\n        return result + 1\n"
        "    if isinstance(result, (str, list, tuple)):\n        return result[:-1] if result else result + "
        "result[:0] + type(result)('x' if isinstance(result, str) else [0])\n"
        "    return None\n"
    )
    return {
        "off_by_one": canonical + wrapper,
        "wrong_value": canonical + f"\ndef {entry}(*args, **kwargs):\n    return None\n",
        "infinite_loop": canonical + f"\ndef {entry}(*args, **kwargs):\n    while True:\n        pass\n",
        "exception": canonical + f"\ndef {entry}(*args, **kwargs):\n    raise ValueError('mutant')\n",
    }


def fenced(program: str) -> str:
    """A response whose last fenced block is `program`."""
    return f"```python\n{program}\n```"


def slow_code_run(run_dir: Path, count: int, seconds: float) -> int:
    """A run directory holding `count` code problems, one rollout each that sleeps `seconds` and passes.

    Every program differs (grading runs each distinct program once), so grading takes about
    `count * seconds / workers`: long enough to be interrupted. Returns `count`.
    """
    from rdistill.data import write_parquet

    problems = [
        {
            "id": f"p{index}",
            "domain": "code",
            "prompt": "Reverse the list.",
            "answer": None,
            "tests": FUNCTION_TEST,
            "difficulty": 1,
            "source": "test",
            "split": "train",
            "meta": None,
        }
        for index in range(count)
    ]
    write_parquet(problems, run_dir / "problems.parquet")
    rollouts = run_dir / "rollouts" / "slow.jsonl"
    rollouts.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(count):
        program = f"import time\ntime.sleep({seconds})\ndef f(xs):\n    return xs[::-1]  # {index}\n"
        rollout = {
            "problem_id": f"p{index}",
            "teacher": "slow",
            "sample_index": 0,
            "seed": 0,
            "messages": [],
            "reasoning": None,
            "response": fenced(program),
            "finish_reason": "stop",
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "latency_s": 0.0,
            "error": None,
        }
        lines.append(json.dumps(rollout))
    rollouts.write_text("\n".join(lines) + "\n")
    return count


def kill_verify_midway(run_dir: Path, executor: str, timeout_s: float = 180) -> int:
    """Run `rdistill verify` on `run_dir` in a new process and SIGKILL it once some verdicts are written.

    Returns how many verdict lines it had written (the last one may be torn).
    """
    import signal
    import time

    recipe = write_recipe(
        run_dir.parent / "verify.yaml", {"run_dir": str(run_dir), "verify": {"executor": executor, "workers": 2}}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "rdistill", "verify", "--recipe", str(recipe)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    verdicts, deadline = run_dir / "verify" / "verdicts.jsonl", time.monotonic() + timeout_s
    while not (verdicts.exists() and verdicts.read_bytes().count(b"\n") >= 3):
        assert process.poll() is None, "verify ended before it could be killed"
        assert time.monotonic() < deadline, "verify wrote no verdict in time"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return verdicts.read_bytes().count(b"\n")


def kill_and_resume_verify(run_dir: Path, executor: str) -> None:
    """Kill `rdistill verify` midway through slow code rollouts, rerun it here: each verdict is written once."""
    from rdistill.config import VerifyOptions
    from rdistill.data import read_jsonl, read_parquet
    from rdistill.verify import run

    count = slow_code_run(run_dir, 40, 0.25)
    written = kill_verify_midway(run_dir, executor)
    assert 0 < written < count, "killed after some verdicts and before the last"
    run(VerifyOptions(executor=executor), run_dir, QUIET)
    lines = read_jsonl(run_dir / "verify" / "verdicts.jsonl")
    keys = [(row["teacher"], row["problem_id"], row["sample_index"]) for row in lines]
    assert len(keys) == len(set(keys)) == count, "no verdict is written twice, none is missing"
    verified = read_parquet(run_dir / "verified.parquet")
    assert len(verified) == count and all(row["correct"] for row in verified)
