"""Per-trace filters: teacher, truncation, correctness, think tags, extracted answer, repetition, length.

Each filter returns a short, fixed reason so that the funnel can count traces per reason; the
first filter that fires is the one recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rdistill.config import CurateOptions, FilterOptions
from rdistill.data import assistant_content
from rdistill.errors import RecipeError

REPETITION_WORDS = 4


def repetition(text: str) -> float:
    """Share of the text's word 4-grams that repeat an earlier one: near 1 for a trace stuck in a loop."""
    words = text.lower().split()
    total = len(words) - REPETITION_WORDS + 1
    if total <= 1:
        return 0.0
    distinct = {tuple(words[start : start + REPETITION_WORDS]) for start in range(total)}
    return 1 - len(distinct) / total


def load_tokenizer(spec: str):
    """The student's tokenizer: the default micro student's (built by rdistill.micro) or a local folder."""
    if spec == "micro":
        from rdistill.micro.student import MicroStudentConfig, build_tokenizer

        return build_tokenizer(MicroStudentConfig())
    from transformers import AutoTokenizer

    if not Path(spec).is_dir():
        raise RecipeError(f"curate.filters.tokenizer: {spec} is not a tokenizer folder; use 'micro' or a local path")
    return AutoTokenizer.from_pretrained(spec)


def student_token_counts(rows: list[dict[str, Any]], options: FilterOptions) -> list[int] | None:
    """Tokens of each assistant turn in the student's tokenizer, or None when no bound needs them."""
    if options.min_tokens == 0 and options.max_tokens is None:
        return None
    tokenizer = load_tokenizer(options.tokenizer)
    encoded = tokenizer(
        [assistant_content(row["reasoning"], row["response"]) for row in rows], add_special_tokens=False
    )["input_ids"]
    return [len(ids) for ids in encoded]


def _think_problem(row: dict[str, Any]) -> str | None:
    if not (row["reasoning"] or "").strip():
        return "no reasoning"
    if any(tag in (row[field] or "") for field in ("reasoning", "response") for tag in ("<think>", "</think>")):
        return "unbalanced think tags"
    return None


def trace_checks(options: CurateOptions, chosen: set[str]) -> list[Callable[[dict[str, Any]], str | None]]:
    """The enabled filters, in the order they are tried; each maps a rollout to a reason or None."""
    filters = options.filters
    checks: list[Callable[[dict[str, Any]], str | None]] = [
        lambda row: None if row["teacher"] in chosen else "teacher not chosen"
    ]
    if filters.drop_truncated:
        checks.append(lambda row: None if row["finish_reason"] == "stop" else f"unfinished ({row['finish_reason']})")
    if options.correctness == "correct":
        checks.append(lambda row: None if row["correct"] is True else "incorrect")
    if options.correctness == "incorrect":
        checks.append(lambda row: None if row["correct"] is False else "correct (keeping incorrect only)")
    if filters.require_think:
        checks.append(_think_problem)
    if filters.require_answer:
        checks.append(lambda row: None if row["extracted"] else "no extracted answer or code")
    if filters.max_repetition < 1:
        limit = filters.max_repetition
        checks.append(
            lambda row: f"repetitive (over {limit:g} of 4-grams repeated)" if row["repetition"] > limit else None
        )
    if filters.min_tokens > 0:
        checks.append(
            lambda row: (
                f"too short (under {filters.min_tokens} student tokens)"
                if row["student_tokens"] < filters.min_tokens
                else None
            )
        )
    if filters.max_tokens is not None:
        checks.append(
            lambda row: (
                f"too long (over {filters.max_tokens} student tokens)"
                if row["student_tokens"] > filters.max_tokens
                else None
            )
        )
    return checks


def first_failure(row: dict[str, Any], checks: list[Callable[[dict[str, Any]], str | None]]) -> str | None:
    """The reason of the first filter the rollout fails, or None when it passes them all."""
    return next((reason for check in checks if (reason := check(row)) is not None), None)
