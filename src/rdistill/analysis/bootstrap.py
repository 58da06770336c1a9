"""Percentile bootstrap intervals, and the two-level bootstrap over seeds and problems.

A sweep's number for one arm (a curation method, a data size) is a mean over seeds (training
runs) of a mean over problems (the benchmark), and both are samples: another seed trains a
different student, another draw of problems asks it different questions. The two-level
bootstrap resamples both, nested:

1. draw S seed indices with replacement from the S seeds;
2. for each drawn seed slot, draw P problem indices with replacement from the P problems,
   independently per slot;
3. the replicate is the mean over the S x P drawn (seed, problem) scores.

This is the usual hierarchical (two-stage) bootstrap; it slightly overstates the variance (the
problem noise enters at both levels), which errs on the side of wider intervals. Two arms are
compared *paired*: the same seed and problem draws index both, so a seed or a problem that is
hard for both cancels out. Seeds pair by index (seed i of arm A with seed i of arm B: the cells
of a sweep share `curate.seed` and `train.sft.seed`), problems by position (the same benchmark).
Several arms can share one set of draws (`two_level_replicates` over a stacked array), which
keeps differences and slopes between them paired as well.

Draws come from `numpy.random.default_rng(seed)`, so every interval is deterministic given the
seed; the indexing is vectorised and done in blocks of replicates to bound memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_REPLICATES = 10_000
# Replicates indexed at once: 1000 x 3 seeds x 200 problems is 600,000 scores per block per arm.
BLOCK = 1000


def resample_indices(problems: int, samples: int, seed: int) -> np.ndarray:
    """Bootstrap draws of problem positions (samples x problems); shared by every student of a benchmark."""
    return np.random.default_rng(seed).integers(0, problems, size=(samples, problems))


def interval(replicates: np.ndarray, confidence: float) -> list[float]:
    """Percentile bootstrap interval of a statistic from its replicates."""
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return [float(low), float(high)]


def two_level_replicates(scores: np.ndarray, replicates: int = DEFAULT_REPLICATES, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of the mean over seeds and problems, for each arm of `scores` (..., seeds, problems).

    Returns an array (replicates, ...): one replicate of every arm per row, all arms resampled
    with the same seed and problem draws (paired). The module docstring gives the scheme.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim < 2 or 0 in scores.shape[-2:]:
        raise ValueError(f"scores must be (..., seeds, problems) with at least one of each, not {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (a missing problem or seed has no score to resample)")
    seeds, problems = scores.shape[-2:]
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, replicates, BLOCK):
        count = min(BLOCK, replicates - start)
        seed_draws = rng.integers(0, seeds, size=(count, seeds, 1))
        problem_draws = rng.integers(0, problems, size=(count, seeds, problems))
        # (..., count, seeds, problems) -> mean over the drawn slots and problems -> (..., count)
        blocks.append(scores[..., seed_draws, problem_draws].mean(axis=(-2, -1)))
    return np.moveaxis(np.concatenate(blocks, axis=-1), -1, 0)


@dataclass(frozen=True)
class Effect:
    """A difference A - B with its percentile interval: what the verdict rule judges."""

    estimate: float
    low: float
    high: float
    confidence: float
    seeds: int
    problems: int
    replicates: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON-ready fields."""
        return asdict(self)


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = 0.95,
    seed: int = 0,
) -> Effect:
    """Mean of A - B over seeds and problems, with a two-level paired bootstrap interval.

    `a` and `b` are (seeds, problems) scores (e.g. the share of a problem's samples that are
    right, per training seed) on the same problems in the same order, seeds paired by row.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired arms need equal (seeds, problems) shapes, not {a.shape} and {b.shape}")
    differences = a - b
    low, high = interval(two_level_replicates(differences, replicates, seed), confidence)
    return Effect(float(differences.mean()), low, high, confidence, *differences.shape, replicates)
