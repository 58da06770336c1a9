"""Generation writes each (problem, teacher, sample) exactly once, even when killed and rerun."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from helpers import QUIET
from rdistill.config import GenerateOptions, ProblemsOptions
from rdistill.data import read_jsonl
from rdistill.generate import finished_keys
from rdistill.generate import run as generate
from rdistill.problems import run as make_problems


def big_recipe(run_dir):
    return {
        "name": "kill",
        "run_dir": str(run_dir),
        "problems": {"micro": {"math": 3000, "code": 3000, "eval_per_domain": 4, "difficulties": [3, 4]}},
        "generate": {"teachers": [{"name": "stepwise"}, {"name": "checker"}], "samples_per_problem": 4},
    }


def rollout_lines(run_dir):
    lines = []
    for path in sorted((run_dir / "rollouts").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    for row in lines:
        row.pop("latency_s")
    return sorted(lines, key=lambda r: (r["teacher"], r["problem_id"], r["sample_index"]))


@pytest.mark.slow
def test_killed_generation_resumes_with_every_key_exactly_once(tmp_path):
    recipe = big_recipe(tmp_path / "killed")
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    command = [sys.executable, "-m", "rdistill", "problems", "--recipe", str(recipe_path)]
    subprocess.run(command, check=True, capture_output=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "rdistill", "generate", "--recipe", str(recipe_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first_file = tmp_path / "killed" / "rollouts" / "stepwise.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not first_file.exists() or first_file.stat().st_size < 200_000):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["status"] == "running", (
        "the kill must land mid-stage for this test to mean anything"
    )
    with first_file.open("a") as handle:  # a write torn by the kill
        handle.write('{"problem_id": "torn')
    subprocess.run(
        [sys.executable, "-m", "rdistill", "generate", "--recipe", str(recipe_path)], check=True, capture_output=True
    )

    clean_dir = tmp_path / "clean"
    options = GenerateOptions.model_validate(recipe["generate"])
    make_problems(ProblemsOptions.model_validate(recipe["problems"]), clean_dir, QUIET)
    generate(options, clean_dir, QUIET)

    resumed, clean = rollout_lines(tmp_path / "killed"), rollout_lines(clean_dir)
    keys = Counter((r["teacher"], r["problem_id"], r["sample_index"]) for r in resumed)
    assert max(keys.values()) == 1
    assert len(resumed) == 2 * 6000 * 4
    assert resumed == clean


def test_finished_keys_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"problem_id": "a", "sample_index": 0}\n{"problem_id": "b", "sam')
    assert finished_keys(path) == {("a", 0)}
    assert path.read_text().endswith("}\n"), "the torn line is removed so the next append starts clean"


def test_a_local_transformers_teacher_writes_rollouts_through_the_hf_backend(tiny_recipe, tmp_path):
    from rdistill.base import ensure_micro_base

    model_dir = ensure_micro_base(tiny_recipe.base.micro)
    options = GenerateOptions.model_validate(
        {
            "teachers": [{"name": "local", "backend": "hf", "model": str(model_dir), "batch_size": 8}],
            "samples_per_problem": 2,
            "sampling": {"temperature": 0.8, "max_tokens": 24},
        }
    )
    make_problems(tiny_recipe.problems, tmp_path, QUIET)
    generate(options, tmp_path, QUIET)
    rows = read_jsonl(tmp_path / "rollouts" / "local.jsonl")
    assert len(rows) == 70 * 2
    assert {row["finish_reason"] for row in rows} <= {"stop", "length"}
    assert all(row["completion_tokens"] <= 24 and row["prompt_tokens"] > 0 for row in rows)
    assert all(row["teacher"] == "local" and row["messages"][0]["role"] == "user" for row in rows)


def test_split_think_separates_reasoning_from_the_answer():
    from rdistill.backends import split_think

    assert split_think("<think>\nadd 2\n</think>\nThe answer is 4.") == ("add 2", "The answer is 4.")
    assert split_think("The answer is 4.") == (None, "The answer is 4.")
    assert split_think("<think>\nstill going") == ("still going", ""), "an unclosed block is all reasoning"
