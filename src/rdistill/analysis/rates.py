"""Does a format rate follow data size or accuracy? Correlations across cells, with bootstrap intervals.

Valley-4 says the completion rate (answers that stop before the token limit) and the think-tag
rate follow the amount of distillation data rather than the student's accuracy. Across a sweep's
cells (one point per trained student), size and accuracy are themselves correlated, so a rate
that follows either correlates with both; the question is which more. Three answers, each with a
percentile interval from one bootstrap over cells (resampling whole cells with replacement; a
cell's rates are already means over its problems and samples):

- Spearman (rank, the claim's "follows" needs only monotone) and Pearson correlations of the
  rate with ln(size) and with accuracy;
- `difference`: |rho(rate, ln size)| - |rho(rate, accuracy)|, positive when size is the closer
  companion (absolute values: a rate may fall as well as rise with data);
- partial correlations from the Spearman coefficients: the rate with ln(size) holding accuracy
  fixed, and with accuracy holding ln(size) fixed. A rate that follows size keeps its partial
  with size and loses the one with accuracy.

Replicates in which a correlation is undefined (a resample with one size only, say) are left out
of that interval; `replicates_used` says how many counted.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from rdistill.analysis.bootstrap import DEFAULT_REPLICATES, interval


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return stats.pearsonr(x, y, axis=-1).statistic


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho per row: Pearson on average ranks, which is what scipy.stats.spearmanr computes."""
    return _pearson_rows(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1))


def _partial(r_xy: np.ndarray, r_xz: np.ndarray, r_yz: np.ndarray) -> np.ndarray:
    """Correlation of x and y with z held fixed, from the three pairwise correlations."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * (1 - r_yz**2))


def _entry(estimate: float, replicates: np.ndarray, confidence: float) -> dict[str, Any]:
    finite = replicates[np.isfinite(replicates)]
    return {
        "estimate": float(estimate),
        "ci": interval(finite, confidence) if finite.size else [float("nan"), float("nan")],
        "replicates_used": int(finite.size),
    }


def _correlations(log_size: np.ndarray, accuracy: np.ndarray, rate: np.ndarray, method) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        with_size, with_accuracy = method(rate, log_size), method(rate, accuracy)
        size_accuracy = method(log_size, accuracy)
    return {
        "size": with_size,
        "accuracy": with_accuracy,
        "difference": np.abs(with_size) - np.abs(with_accuracy),
        "size_accuracy": size_accuracy,
    }


def _partials(rho: dict[str, Any]) -> dict[str, Any]:
    return {
        "size": _partial(rho["size"], rho["accuracy"], rho["size_accuracy"]),
        "accuracy": _partial(rho["accuracy"], rho["size"], rho["size_accuracy"]),
    }


def _entries(estimates: dict[str, Any], replicates: dict[str, Any], confidence: float) -> dict[str, Any]:
    return {key: _entry(estimates[key], replicates[key], confidence) for key in estimates}


def rate_correlations(
    sizes: np.ndarray,
    accuracy: np.ndarray,
    rate: np.ndarray,
    replicates: int = DEFAULT_REPLICATES,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Correlations of a rate with ln(size) and with accuracy across cells (one value of each per cell).

    Returns {"cells", "spearman": {"size", "accuracy", "difference", "size_accuracy"},
    "pearson": {same}, "partial": {"size", "accuracy"}}, each entry {"estimate", "ci",
    "replicates_used"}; `partial` is Spearman-based (module docstring).
    """
    log_size = np.log(np.asarray(sizes, dtype=float))
    accuracy, rate = np.asarray(accuracy, dtype=float), np.asarray(rate, dtype=float)
    if not log_size.shape == accuracy.shape == rate.shape or log_size.ndim != 1 or len(log_size) < 3:
        raise ValueError("sizes, accuracy and rate need one value per cell, for at least three cells")
    draws = np.random.default_rng(seed).integers(0, len(log_size), size=(replicates, len(log_size)))
    resampled = (log_size[draws], accuracy[draws], rate[draws])
    spearman = _correlations(log_size, accuracy, rate, lambda x, y: stats.spearmanr(x, y).statistic)
    spearman_replicates = _correlations(*resampled, _spearman_rows)
    pearson = _correlations(log_size, accuracy, rate, lambda x, y: stats.pearsonr(x, y).statistic)
    return {
        "cells": len(log_size),
        "spearman": _entries(spearman, spearman_replicates, confidence),
        "pearson": _entries(pearson, _correlations(*resampled, _pearson_rows), confidence),
        "partial": _entries(_partials(spearman), _partials(spearman_replicates), confidence),
    }
