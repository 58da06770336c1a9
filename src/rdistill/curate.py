"""Stage `curate`: turn verified rollouts into a small training set, explaining every choice.

Steps, in order: keep the chosen teachers, drop unfinished traces, filter by correctness
(`correct`, `all` or `incorrect`: the Valley paper's experiment), then draw the budget at
random. Every rollout gets a row in `selection.parquet` saying which step kept or dropped it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from rdistill.config import CurateOptions
from rdistill.data import VERIFIED_COLUMNS, read_records, sft_messages, write_jsonl, write_parquet
from rdistill.data.manifest import run_stage

SFT_OUTPUT = "sft.jsonl"
SELECTION_OUTPUT = "selection.parquet"


def drop_reason(rollout: dict[str, Any], chosen: set[str], correctness: str) -> str | None:
    """Why a rollout fails the filters, or None when it passes them."""
    if rollout["teacher"] not in chosen:
        return "teacher not chosen"
    if rollout["finish_reason"] != "stop":
        return f"unfinished ({rollout['finish_reason']})"
    if correctness == "correct" and rollout["correct"] is not True:
        return "incorrect"
    if correctness == "incorrect" and rollout["correct"] is not False:
        return "correct (keeping incorrect only)"
    return None


def select(rows: list[dict[str, Any]], chosen: set[str], options: CurateOptions) -> list[tuple[dict[str, Any], bool, str]]:
    """(rollout, kept, why) for every rollout: filters first, then a seeded random draw of the budget."""
    reasons = [drop_reason(row, chosen, options.correctness) for row in rows]
    eligible = [index for index, reason in enumerate(reasons) if reason is None]
    drawn = set(random.Random(options.seed).sample(eligible, min(options.budget, len(eligible))))
    decisions = []
    for index, row in enumerate(rows):
        if reasons[index] is not None:
            decisions.append((row, False, reasons[index]))
        elif index in drawn:
            decisions.append((row, True, f"random draw within budget {options.budget}"))
        else:
            decisions.append((row, False, f"over budget {options.budget}"))
    return decisions


def run(options: CurateOptions, run_dir: Path, force: bool = False, log=print) -> dict[str, Any]:
    """Write `sft.jsonl` (chat examples) and `selection.parquet` (the reason for every rollout)."""
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        rows = read_records(run_dir / "verified.parquet", VERIFIED_COLUMNS)
        chosen = set(json.loads((run_dir / "teachers.json").read_text())["chosen"])
        decisions = select(rows, chosen, options)
        examples = [
            {
                "messages": sft_messages(row),
                "problem_id": row["problem_id"],
                "teacher": row["teacher"],
                "why": why,
            }
            for row, kept, why in decisions
            if kept
        ]
        write_jsonl(examples, run_dir / SFT_OUTPUT)
        selection = [
            {key: row[key] for key in ("problem_id", "teacher", "sample_index", "domain", "difficulty", "correct")} | {"kept": kept, "why": why}
            for row, kept, why in decisions
        ]
        write_parquet(selection, run_dir / SELECTION_OUTPUT)
        return {"examples": len(examples), "rollouts": len(rows)}

    return run_stage(
        run_dir,
        "curate",
        options,
        inputs=["verified.parquet", "teachers.json"],
        outputs=[SFT_OUTPUT, SELECTION_OUTPUT],
        work=work,
        force=force,
        log=log,
    )
