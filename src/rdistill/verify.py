"""Stage `verify`: decide for every rollout whether its answer is right (`verified.parquet`).

The rules are the grading component's (`rdistill.grading`), the same that `evaluate` applies to
students: math answers compared with Math-Verify, code run against its tests in the sandbox,
in processes on this machine or on a Ray cluster (`verify.executor`). Verdicts are appended to
`verify/verdicts.jsonl` as their batches finish, so an interrupted stage resumes with the
rollouts not graded yet, and none is graded or written twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdistill.config import VerifyOptions
from rdistill.data import PROBLEM_COLUMNS, ROLLOUT_COLUMNS, JsonlAppender, read_jsonl, read_records, write_parquet
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.grading import describe_isolation, grade_many

OUTPUT = "verified.parquet"
PARTS = "verify"
VERDICTS = "verify/verdicts.jsonl"
VERDICT_COLUMNS = ["extracted", "correct", "tests_passed", "tests_total", "verify_error"]


def load_rollouts(run_dir: Path) -> list[dict[str, Any]]:
    """Every teacher's rollouts, in a stable order."""
    rows = []
    for path in sorted((Path(run_dir) / "rollouts").glob("*.jsonl")):
        rows += read_records(path, ROLLOUT_COLUMNS)
    return rows


def rollout_key(row: dict[str, Any]) -> tuple[str, str, int]:
    """What identifies a rollout, and its line in the verdict file."""
    return row["teacher"], row["problem_id"], row["sample_index"]


def verdicts_so_far(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The verdicts an interrupted run wrote, by rollout key (a line torn by a kill is cut off)."""
    rows = read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []
    return {rollout_key(row): {column: row[column] for column in VERDICT_COLUMNS} for row in rows}


def grade_rollouts(
    rollouts: list[dict[str, Any]], by_id: dict[str, dict[str, Any]], options: VerifyOptions, path: Path, console=None
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The verdict of every rollout: those in `path`, then the others, each appended to `path` once graded."""
    verdicts = verdicts_so_far(path)
    pending = [rollout for rollout in rollouts if rollout_key(rollout) not in verdicts]
    if not pending:
        return verdicts
    writer = JsonlAppender(path)

    def keep(position: int, verdict: dict[str, Any]) -> None:
        key = rollout_key(pending[position])
        writer.write(dict(zip(("teacher", "problem_id", "sample_index"), key, strict=True)) | verdict)
        verdicts[key] = verdict

    try:
        items = [(by_id[rollout["problem_id"]], rollout["response"] or "") for rollout in pending]
        grade_many(items, **options.grading_arguments(), console=console, on_verdict=keep)
    finally:
        writer.close()
    return verdicts


def run(options: VerifyOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `verified.parquet`: every rollout with its domain, difficulty and verdict."""
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        if options.executor == "local":
            ctx.log(f"code sandbox isolation: {describe_isolation()}")
        problems = read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)
        by_id = {problem["id"]: problem for problem in problems}
        rollouts = load_rollouts(run_dir)
        verdicts = grade_rollouts(rollouts, by_id, options, run_dir / VERDICTS, ctx.console)
        rows = [
            {
                **rollout,
                "domain": by_id[rollout["problem_id"]]["domain"],
                "difficulty": by_id[rollout["problem_id"]]["difficulty"],
                **verdicts[rollout_key(rollout)],
            }
            for rollout in rollouts
        ]
        write_parquet(rows, run_dir / OUTPUT)
        return {"rollouts": len(rows), "correct": sum(bool(r["correct"]) for r in rows)}

    inputs = ["problems.parquet", "rollouts"]
    return run_stage(run_dir, "verify", options.verdict_settings(), inputs, [OUTPUT], work, ctx, partials=[PARTS])
