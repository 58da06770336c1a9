"""Stage `verify`: decide for every rollout whether its answer is right (`verified.parquet`).

The rules are the grading component's (`rdistill.grading`), the same that `evaluate` applies to
students: math answers compared with Math-Verify, code run against its tests in the sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdistill.config import VerifyOptions
from rdistill.data import PROBLEM_COLUMNS, ROLLOUT_COLUMNS, read_records, write_parquet
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.grading import describe_isolation, grade_many

OUTPUT = "verified.parquet"


def load_rollouts(run_dir: Path) -> list[dict[str, Any]]:
    """Every teacher's rollouts, in a stable order."""
    rows = []
    for path in sorted((Path(run_dir) / "rollouts").glob("*.jsonl")):
        rows += read_records(path, ROLLOUT_COLUMNS)
    return rows


def run(options: VerifyOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `verified.parquet`: every rollout with its domain, difficulty and verdict."""
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        ctx.log(f"code sandbox isolation: {describe_isolation()}")
        problems = read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)
        by_id = {problem["id"]: problem for problem in problems}
        rollouts = load_rollouts(run_dir)
        items = [(by_id[r["problem_id"]], r["response"] or "") for r in rollouts]
        verdicts = grade_many(items, options.code_timeout_s, options.workers, console=ctx.console)
        rows = [
            {**rollout, "domain": problem["domain"], "difficulty": problem["difficulty"], **verdict}
            for rollout, (problem, _), verdict in zip(rollouts, items, verdicts, strict=False)
        ]
        write_parquet(rows, run_dir / OUTPUT)
        return {"rollouts": len(rows), "correct": sum(bool(r["correct"]) for r in rows)}

    return run_stage(run_dir, "verify", options, ["problems.parquet", "rollouts"], [OUTPUT], work, ctx)
