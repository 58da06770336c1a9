"""Difficulty levels of problems: from how often the teachers solved them, or from given labels."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rdistill.config import DifficultyOptions

NAMED_LABELS = {"easy": 0.0, "medium": 1.0, "hard": 2.0}


def pass_rates(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per problem, the share of its verified samples (every teacher's) that are right; None if none is verifiable."""
    verdicts: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        verdicts.setdefault(row["problem_id"], [])
        if row["correct"] is not None:
            verdicts[row["problem_id"]].append(bool(row["correct"]))
    return {problem: (sum(flags) / len(flags) if flags else None) for problem, flags in verdicts.items()}


def label(problem: dict[str, Any]) -> float | None:
    """A problem's own difficulty: a label in `meta` (LiveCodeBench easy/medium/hard) or the `difficulty` column."""
    meta = json.loads(problem.get("meta") or "{}")
    named = str(meta.get("difficulty", "")).lower()
    if named in NAMED_LABELS:
        return NAMED_LABELS[named]
    return problem.get("difficulty")


def bin_labels(values: dict[str, float | None], levels: int) -> dict[str, int]:
    """Distinct label values spread evenly over the levels by rank (MATH levels 1-5 into 3: 1-2, 3-4, 5)."""
    distinct = sorted({value for value in values.values() if value is not None})
    rank = {value: index * levels // len(distinct) for index, value in enumerate(distinct)}
    return {problem: (rank[value] if value is not None else levels // 2) for problem, value in values.items()}


def bin_pass_rates(rates: dict[str, float | None], levels: int) -> dict[str, int]:
    """Level 0 for problems every sample solved, the last level for those none solved; unknown in the middle."""
    return {
        problem: (levels // 2 if rate is None else min(levels - 1, int((1 - rate) * levels)))
        for problem, rate in rates.items()
    }


def problem_levels(
    rows: list[dict[str, Any]], problems: dict[str, dict[str, Any]], options: DifficultyOptions
) -> tuple[dict[str, int], dict[str, float | None]]:
    """(level of each rolled-out problem, its pass rate), levels binned as the options say."""
    rates = pass_rates(rows)
    if options.source == "pass_rate":
        return bin_pass_rates(rates, options.levels), rates
    return bin_labels({problem: label(problems[problem]) for problem in rates}, options.levels), rates
