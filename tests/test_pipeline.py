"""The whole pipeline on a tiny micro-world: every file with its schema, a rerun that skips everything, and
a second run of the same recipe elsewhere that gives the same numbers."""

from __future__ import annotations

import json

from rdistill.data import (
    EVAL_COLUMNS,
    PROBLEM_COLUMNS,
    ROLLOUT_COLUMNS,
    SFT_COLUMNS,
    VERDICT_COLUMNS,
    read_jsonl,
    read_parquet,
)
from rdistill.data.manifest import read_manifest
from rdistill.pipeline import STAGES, run_recipe


def test_pipeline_end_to_end_then_skips_on_rerun(tiny_recipe, capsys):
    run_dir = run_recipe(tiny_recipe)
    problems = read_parquet(run_dir / "problems.parquet")
    assert set(PROBLEM_COLUMNS) <= set(problems[0])
    assert {p["split"] for p in problems} == {"train", "eval", "generalisation"}

    rollouts = read_jsonl(run_dir / "rollouts" / "stepwise.jsonl")
    assert set(ROLLOUT_COLUMNS) <= set(rollouts[0])
    assert len(rollouts) == 70 * 2

    verified = read_parquet(run_dir / "verified.parquet")
    assert set(VERDICT_COLUMNS) <= set(verified[0]) and len(verified) == 70 * 2 * 2
    teachers = json.loads((run_dir / "teachers.json").read_text())
    accuracies = {name: evidence["accuracy"] for name, evidence in teachers["teachers"].items()}
    assert accuracies["compact"] > accuracies["stepwise"], "the compact teacher is the most accurate"

    sft = read_jsonl(run_dir / "sft.jsonl")
    assert len(sft) == 60 and set(SFT_COLUMNS) <= set(sft[0])
    assert sft[0]["messages"][-1]["content"].startswith("<think>\n")
    selection = read_parquet(run_dir / "selection.parquet")
    assert len(selection) == len(verified) and sum(row["kept"] for row in selection) == 60
    kept_ids = {(row["problem_id"], row["teacher"]) for row in selection if row["kept"]}
    assert all(row["correct"] for row in selection if row["kept"])
    assert {(row["problem_id"], row["teacher"]) for row in sft} <= kept_ids

    log = json.loads((run_dir / "student" / "training_log.json").read_text())
    assert log["steps"] > 0 and log["parameters"] > 10_000
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert set(summary["students"]) == {"base", "distilled"}
    assert summary["in_domain"] == ["math", "code"] and summary["out_of_domain"] == ["text"]
    assert summary["generalisation"] == ["math-long", "code-long"]
    math_rows = read_parquet(run_dir / "eval" / "math.parquet")
    assert set(EVAL_COLUMNS) <= set(math_rows[0]) and len(math_rows) == 2 * 8
    assert not any(row["has_think"] for row in math_rows if row["student"] == "base"), "the base never learned to think"
    assert (run_dir / "report.html").read_text().count("distilled") >= 1

    manifest = read_manifest(run_dir)
    assert [manifest["stages"][stage]["status"] for stage in STAGES] == ["done"] * len(STAGES)
    capsys.readouterr()
    run_recipe(tiny_recipe)
    output = capsys.readouterr().out
    assert all(f"skip {stage}" in output for stage in STAGES)
    assert read_manifest(run_dir) == manifest

    again = run_recipe(tiny_recipe.model_copy(update={"run_dir": run_dir.parent / "again"}))
    repeated = json.loads((again / "eval" / "summary.json").read_text())
    assert repeated["students"] == summary["students"], "the same recipe on the same machine gives the same numbers"
