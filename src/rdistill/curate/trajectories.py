"""Traces per problem: keep the k most different acceptable traces (DED's diverse trajectories).

Distance between two traces is the Jaccard distance of their (whitespace) word 3-gram sets; the traces are
ordered farthest-first from a seeded start (greedy k-center), so that any prefix of the order
is a spread-out choice, and capped at k, which may depend on the problem's difficulty level.
"""

from __future__ import annotations

import random
from typing import Any

from rdistill.config import TrajectoryOptions
from rdistill.similarity.text import word_ngrams

TRACE_SHINGLE = 3


def trace_distance(first: set[str], second: set[str]) -> float:
    """Jaccard distance of two traces' 3-gram sets (0: the same words in the same order)."""
    union = len(first | second)
    return 1 - len(first & second) / union if union else 0.0


def diverse_order(traces: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Traces farthest-first: a seeded first one, then each time the one farthest from all already chosen."""
    if len(traces) <= 1:
        return list(traces)
    grams = [word_ngrams(f"{t['reasoning']}\n{t['response']}".lower().split(), TRACE_SHINGLE) for t in traces]
    order = [rng.randrange(len(traces))]
    nearest = [trace_distance(grams[order[0]], g) for g in grams]
    while len(order) < len(traces):
        remaining = [index for index in range(len(traces)) if index not in order]
        chosen = max(remaining, key=lambda index: (nearest[index], -index))
        order.append(chosen)
        nearest = [min(nearest[index], trace_distance(grams[chosen], grams[index])) for index in range(len(traces))]
    return [traces[index] for index in order]


def cap(level: int, options: TrajectoryOptions) -> int | None:
    """Most traces kept for a problem of this difficulty level (None: no limit)."""
    if options.per_level:
        return options.per_level[level]
    return options.per_problem


def arrange(
    traces: list[dict[str, Any]], level: int, options: TrajectoryOptions, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(traces kept in the order they enter the budget, traces over the cap).

    Without a cap the order is simply seeded-random, so that a plain random selection stays a
    uniform draw; with one, the kept traces are the most different ones.
    """
    limit = cap(level, options)
    if limit is None:
        shuffled = list(traces)
        rng.shuffle(shuffled)
        return shuffled, []
    ordered = diverse_order(traces, rng)
    return ordered[:limit], ordered[limit:]
