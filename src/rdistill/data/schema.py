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


def require_columns(
    rows: list[dict[str, Any]], columns: tuple[str, ...], path: Path, lines: list[int] | None = None
) -> None:
    """Raise a DataError naming the file, the first bad row (its 1-based line with `lines`) and the missing field."""
    for index, row in enumerate(rows):
        missing = [column for column in columns if column not in row]
        if missing:
            raise DataError(
                f"{row_label(path, index, lines)}: missing field {missing[0]!r} (expected fields: {', '.join(columns)})"
            )


def row_label(path: Path | str, index: int, lines: list[int] | None = None) -> str:
    """`FILE:LINE` for a JSON Lines row (its 1-based line), `FILE: row N` (1-based) for a Parquet or hub row."""
    return f"{path}:{lines[index]}" if lines is not None else f"{path}: row {index + 1}"


def read_records(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a Parquet or JSON Lines file, checked to carry `columns` (a stage's inputs)."""
    from rdistill.data.io import read_jsonl_lines, read_parquet

    path = Path(path)
    if path.suffix == ".jsonl":
        numbered = read_jsonl_lines(path)
        rows, lines = [row for _, row in numbered], [number for number, _ in numbered]
    else:
        rows, lines = read_parquet(path), None
    require_columns(rows, columns, path, lines)
    return rows


def sft_problems(row: dict[str, Any]) -> list[str]:
    """What is wrong with one SFT example (`field: problem`), empty when it can be trained on.

    The chat template needs a list of turns, each a role and a text content, and the loss is
    taken on assistant turns only: a conversation without one teaches nothing and would fail
    deep inside the template, blamed on its generation markers.
    """
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return [f"messages: expected a non-empty list of turns, got {_shown(messages)}"]
    problems = []
    for turn_index, turn in enumerate(messages):
        where = f"messages[{turn_index}]"
        if not isinstance(turn, dict):
            problems.append(f"{where}: expected an object with role and content, got {_shown(turn)}")
            continue
        if turn.get("role") not in ("system", "user", "assistant"):
            problems.append(f"{where}.role: expected system, user or assistant, got {_shown(turn.get('role'))}")
        if not isinstance(turn.get("content"), str):
            problems.append(f"{where}.content: expected text, got {_shown(turn.get('content'))}")
    if not any(isinstance(turn, dict) and turn.get("role") == "assistant" for turn in messages):
        problems.append("messages: no assistant turn to learn from")
    return problems


def _shown(value: Any) -> str:
    """A value as an error message shows it: its type and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


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
