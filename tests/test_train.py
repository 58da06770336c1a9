"""Training: a run killed mid-way resumes from its checkpoint and ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from helpers import tiny_recipe_dict
from rdistill.data.manifest import read_manifest
from rdistill.pipeline import run_one

BEFORE_TRAIN = ("problems", "base", "generate", "verify", "teachers", "curate")


def prepare(tmp_path, name):
    recipe_dict = tiny_recipe_dict(tmp_path / name)
    recipe_dict["train"]["sft"] |= {"epochs": 4.0, "batch_size": 8, "save_steps": 5, "logging_steps": 1}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe_dict))
    from rdistill.config import load_recipe

    recipe = load_recipe(path)
    for stage in BEFORE_TRAIN:
        run_one(stage, recipe, tmp_path / name)
    return recipe, path


def losses(run_dir):
    log = json.loads((run_dir / "student" / "training_log.json").read_text())
    return {entry["step"]: entry["loss"] for entry in log["log_history"] if "loss" in entry}, log


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    recipe, path = prepare(tmp_path, "killed")
    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "rdistill", "train", "--recipe", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run_dir / "student" / "checkpoints" / "checkpoint-10" / "trainer_state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not checkpoint.exists() and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists()
    assert read_manifest(run_dir)["stages"]["train"]["status"] == "running"
    subprocess.run(command, check=True, capture_output=True)
    resumed_losses, resumed_log = losses(run_dir)
    assert resumed_log["resumed_from"] is not None

    uninterrupted, _ = prepare(tmp_path, "clean")
    run_one("train", uninterrupted, tmp_path / "clean")
    clean_losses, clean_log = losses(tmp_path / "clean")
    assert resumed_log["steps"] == clean_log["steps"]
    late_steps = [step for step in clean_losses if step > int(resumed_log["resumed_from"].split("-")[1])]
    assert late_steps
    for step in late_steps:
        assert abs(resumed_losses[step] - clean_losses[step]) < 1e-3 * max(1.0, clean_losses[step]), step
    # The log, the report and the manifest describe the whole run, not its last leg (issue 14, case 8).
    assert resumed_log["legs"] == 2 and resumed_log["last_leg"]["steps"] < resumed_log["steps"]
    assert abs(resumed_log["train_loss"] - clean_log["train_loss"]) < 0.02 * clean_log["train_loss"]
    assert resumed_log["seconds"] > resumed_log["last_leg"]["seconds"]
    counts = read_manifest(run_dir)["stages"]["train"]["counts"]
    assert counts["train_loss"] == resumed_log["train_loss"] and counts["legs"] == 2
