"""What can be measured about a teacher from its rollouts alone: accuracy, length and its spread, diversity.

The DED paper and "Not All Correct Answers Are Equal" name these as signals that, unlike a
teacher's own benchmark score, bear on how well a student learns from its traces: lengths that
vary, samples that differ from each other. The student-side signals (NLL, rank–surprisal, local
naturalness) need a forward pass of the student and live in `rdistill.signals`.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections import defaultdict
from typing import Any


def _word_bigrams(text: str) -> set[tuple[str, str]]:
    words = text.split()
    return set(zip(words, words[1:], strict=False)) or {(text, "")}


def sample_diversity(texts: list[str]) -> float | None:
    """Mean pairwise Jaccard distance of word bigrams between a problem's samples (None with fewer than two)."""
    pairs = list(itertools.combinations([_word_bigrams(text) for text in texts], 2))
    if not pairs:
        return None
    return sum(1 - len(a & b) / len(a | b) for a, b in pairs) / len(pairs)


def trace_statistics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (overall, per domain), completion length and its spread, and diversity between samples."""
    by_domain: dict[str, list[bool]] = defaultdict(list)
    by_problem: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_domain[row["domain"]].append(bool(row["correct"]))
        by_problem[row["problem_id"]].append(row["reasoning"] or "")
    lengths = [row["completion_tokens"] or 0 for row in rows]
    diversities = [value for texts in by_problem.values() if (value := sample_diversity(texts)) is not None]
    correct = sum(bool(row["correct"]) for row in rows)
    mean_length = statistics.fmean(lengths)
    return {
        "rollouts": len(rows),
        "correct": correct,
        "accuracy": correct / len(rows),
        "mean_completion_tokens": mean_length,
        "length_cv": statistics.pstdev(lengths) / mean_length if mean_length else None,
        "diversity": statistics.fmean(diversities) if diversities else None,
        "by_domain": {domain: sum(flags) / len(flags) for domain, flags in sorted(by_domain.items())},
    }


def common_problem_sample(
    rows_by_teacher: dict[str, list[dict[str, Any]]], count: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Each teacher's first-sample rollouts on the same `count` problems: teachers compared on equal ground."""
    first_samples = {
        teacher: {row["problem_id"]: row for row in rows if row["sample_index"] == 0}
        for teacher, rows in rows_by_teacher.items()
    }
    shared = sorted(set.intersection(*(set(samples) for samples in first_samples.values())))
    chosen = random.Random(seed).sample(shared, min(count, len(shared)))
    return {teacher: [samples[problem_id] for problem_id in chosen] for teacher, samples in first_samples.items()}
