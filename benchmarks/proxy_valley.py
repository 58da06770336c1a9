"""Where a proxy student leaves the valley: one teacher's proxy fine-tune at a few schedules.

The `teachers` stage's proxy rule is only worth its cost if its students have climbed past the
base (README, "The valley"): below it, the gain says which teacher hurts the base least. This
trains the proxy student of one teacher on the proxy's own problems (`teachers.proxy`, the
recipe's), once per schedule, and prints each schedule's optimiser steps, wall-clock and CPU
seconds, and validation accuracy and gain over the base with its bootstrap interval.

Usage: python benchmarks/proxy_valley.py RUN_DIR [--teacher stepwise] [--schedule 12x32 --schedule 12x8]
(RUN_DIR has problems, base, generate and verify done; a schedule is EPOCHSxBATCH.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import yaml

from rdistill.config import Recipe
from rdistill.data import PROBLEM_COLUMNS, VERIFIED_COLUMNS, read_base, read_records
from rdistill.teachers import by_teacher
from rdistill.teachers.proxy import (
    accuracy_by_domain,
    gain_interval,
    split_problems,
    teacher_conversations,
    validation_correct,
)
from rdistill.training import fine_tune


def main() -> None:
    """Train and score one proxy student per schedule; print a line per schedule and write valley.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--teacher", default="stepwise")
    parser.add_argument("--schedule", action="append", default=None, help="EPOCHSxBATCH, repeatable")
    args = parser.parse_args()
    run_dir = args.run_dir
    options = Recipe.model_validate(yaml.safe_load((run_dir / "recipe.yaml").read_text())).teachers.proxy
    rows = by_teacher(read_records(run_dir / "verified.parquet", VERIFIED_COLUMNS))
    problems = [p for p in read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS) if p["split"] == "train"]
    validation, train_ids = split_problems(problems, rows, options)
    base_dir = read_base(run_dir)
    base = validation_correct(base_dir, validation, options.max_tokens)
    base_accuracy = accuracy_by_domain({k: float(v) for k, v in base.items()}, validation)
    print(f"base: {base_accuracy}; {len(train_ids)} training traces, {len(validation)} validation problems")
    results = []
    for schedule in args.schedule or ["12x32", "12x8"]:
        epochs, batch = schedule.split("x")
        sft = options.sft.model_copy(update={"epochs": float(epochs), "batch_size": int(batch)})
        model_dir = run_dir / "valley" / schedule
        wall, cpu = time.perf_counter(), time.process_time()
        training = fine_tune(base_dir, teacher_conversations(rows[args.teacher], train_ids), model_dir, sft)
        train_s, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
        correct = validation_correct(model_dir, validation, options.max_tokens)
        accuracy = accuracy_by_domain({k: float(v) for k, v in correct.items()}, validation)
        interval = gain_interval([correct[p["id"]] - base[p["id"]] for p in validation], options.seed)
        result = {
            "schedule": schedule,
            "steps": training["steps"],
            "train_seconds": round(train_s, 1),
            "train_cpu_seconds": round(train_cpu, 1),
            "accuracy": accuracy,
            "gain": accuracy["overall"] - base_accuracy["overall"],
            "gain_interval": interval,
        }
        print(json.dumps(result), flush=True)
        results.append(result)
        shutil.rmtree(model_dir)
    out = run_dir / "valley.json"
    out.write_text(json.dumps({"teacher": args.teacher, "base": base_accuracy, "results": results}, indent=2))


if __name__ == "__main__":
    main()
