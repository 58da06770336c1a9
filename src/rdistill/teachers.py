"""Stage `teachers`: score every teacher from its verified rollouts and choose whose traces to keep.

The DED paper's point is that a teacher's own accuracy does not decide how well a student
learns from it; this stage records the evidence (accuracy overall and per domain, trace
length) so that the choice can be audited. The rule is deliberately simple for now.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rdistill.config import TeachersOptions
from rdistill.data import VERIFIED_COLUMNS, read_records, write_json
from rdistill.data.manifest import run_stage
from rdistill.errors import RecipeError

OUTPUT = "teachers.json"


def score_teachers(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-teacher rollout count, accuracy, accuracy by domain and mean completion length."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["teacher"]].append(row)
    scores = {}
    for teacher, teacher_rows in sorted(grouped.items()):
        by_domain: dict[str, list[bool]] = defaultdict(list)
        for row in teacher_rows:
            by_domain[row["domain"]].append(bool(row["correct"]))
        correct = sum(bool(row["correct"]) for row in teacher_rows)
        scores[teacher] = {
            "rollouts": len(teacher_rows),
            "correct": correct,
            "accuracy": correct / len(teacher_rows),
            "mean_completion_tokens": sum(row["completion_tokens"] or 0 for row in teacher_rows) / len(teacher_rows),
            "by_domain": {domain: sum(flags) / len(flags) for domain, flags in sorted(by_domain.items())},
        }
    return scores


def choose(scores: dict[str, dict[str, Any]], options: TeachersOptions) -> tuple[list[str], str]:
    """The teachers whose traces go on to curation, and why."""
    if options.teacher is not None:
        if options.teacher not in scores:
            raise RecipeError(f"teachers.teacher: {options.teacher!r} has no rollouts (teachers: {', '.join(scores)})")
        return [options.teacher], "forced by the recipe (teachers.teacher)"
    if options.choose == "accuracy":
        best = max(scores, key=lambda name: scores[name]["accuracy"])
        return [best], f"highest verified accuracy ({scores[best]['accuracy']:.1%})"
    return sorted(scores), "every teacher's traces are kept (teachers.choose: all)"


def run(options: TeachersOptions, run_dir: Path, force: bool = False, log=print) -> dict[str, Any]:
    """Write `teachers.json`: scores of every teacher and the choice."""
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        scores = score_teachers(read_records(run_dir / "verified.parquet", VERIFIED_COLUMNS))
        chosen, why = choose(scores, options)
        write_json({"rule": "forced" if options.teacher else options.choose, "chosen": chosen, "why": why, "teachers": scores}, run_dir / OUTPUT)
        return {"teachers": len(scores), "chosen": len(chosen)}

    return run_stage(run_dir, "teachers", options, inputs=["verified.parquet"], outputs=[OUTPUT], work=work, force=force, log=log)
