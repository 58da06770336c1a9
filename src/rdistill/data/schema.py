"""Column sets of the records stages exchange (see docs/schema.md for each field's meaning).

Every stage may add columns, none may drop these. Readers check them with `require_columns`
so that a foreign or stale file fails with its name, row and missing field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rdistill.errors import DataError, StageInputError

PROBLEM_COLUMNS = ("id", "domain", "prompt", "answer", "tests", "difficulty", "source", "split", "meta")
ROLLOUT_COLUMNS = (
    "problem_id",
    "teacher",
    "sample_index",
    "seed",
    "messages",
    "reasoning",
    "response",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "error",
)
VERDICT_COLUMNS = ("extracted", "correct", "tests_passed", "tests_total", "verify_error")
VERIFIED_COLUMNS = ROLLOUT_COLUMNS + ("domain", "difficulty") + VERDICT_COLUMNS
SFT_COLUMNS = ("messages", "problem_id", "teacher", "why")
EVAL_COLUMNS = ("benchmark", "problem_id", "sample_index", "correct", "finished", "has_think", "tokens")

DOMAINS = ("math", "code", "mcq", "text")
# Benchmark groups of eval/summary.json, in the order tables show them, and how they are labelled.
GROUPS = ("in_domain", "generalisation", "out_of_domain")
GROUP_LABELS = {"in_domain": "in-domain", "generalisation": "generalisation", "out_of_domain": "out-of-domain"}
BASE_FILE = "base.json"


def require_columns(rows: list[dict[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    """Raise a DataError naming the file, the first bad row and the missing field."""
    for number, row in enumerate(rows):
        missing = [column for column in columns if column not in row]
        if missing:
            raise DataError(
                f"{path}: row {number}: missing field {missing[0]!r} (expected fields: {', '.join(columns)})"
            )


def read_records(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a Parquet or JSON Lines file, checked to carry `columns` (a stage's inputs)."""
    from rdistill.data.io import read_jsonl, read_parquet

    path = Path(path)
    rows = read_jsonl(path) if path.suffix == ".jsonl" else read_parquet(path)
    require_columns(rows, columns, path)
    return rows


def assistant_content(reasoning: str | None, response: str) -> str:
    """The assistant turn a student learns from a rollout: the reasoning in a think block, then the answer."""
    return f"<think>\n{reasoning or ''}\n</think>\n{response}"


def sft_messages(rollout: dict[str, Any]) -> list[dict[str, str]]:
    """The chat conversation of an SFT example made from one rollout (its prompt, then the assistant turn)."""
    return [
        *rollout["messages"],
        {"role": "assistant", "content": assistant_content(rollout["reasoning"], rollout["response"])},
    ]


def read_base(run_dir: Path) -> Path:
    """The base student's model folder, from the run directory's `base.json` (written by the `base` stage)."""
    path = Path(run_dir) / BASE_FILE
    if not path.exists():
        raise StageInputError(f"{path}: missing; run the base stage first (rdistill base)")
    try:
        model = Path(json.loads(path.read_text(encoding="utf-8"))["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a base record with a 'model' field ({exc})") from exc
    if not (model / "config.json").exists():
        raise StageInputError(f"{path}: the base student {model} is gone (a cleared cache?); rerun the base stage")
    return model
