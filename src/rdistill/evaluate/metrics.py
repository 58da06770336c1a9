"""Scores of a student on a benchmark from its eval rows: avg@k, pass@k, maj@k, format measures, bootstrap CIs.

Every headline number is a mean over problems of a per-problem value (the share of a problem's
k samples that are right, whether any of them is, ...), so one bootstrap over problems gives
its confidence interval, and resampling the same problems for two students gives a paired
interval for their difference. numpy does the resampling; the estimators are a few lines each
and written out so that the tests can check them against the papers' formulas.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np

# The bootstrap intervals live in the analysis component, which the sweep's analysis shares.
from rdistill.analysis.bootstrap import interval

# accuracy_norm: lm-eval's acc_norm, for multiple choice scored by log-likelihood (rows with `correct_norm`).
HEADLINE = (
    "accuracy",
    "accuracy_norm",
    "pass_at_k",
    "maj_at_k",
    "no_answer_rate",
    "completion_rate",
    "think_rate",
    "mean_tokens",
)
ANSWER_DOMAINS = ("math", "mcq", "text")
# Verdicts of samples from which no answer (or no program) could be read: format failures, not wrong answers.
NO_ANSWER = ("no_answer", "no_code")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): the chance that k of n samples, c of them right, include a right one.

    Exact integer binomials (1 - C(n-c, k) / C(n, k)) rather than the paper's floating-point
    product, which the tests use as the reference.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _vote_key(answer: str) -> str:
    return re.sub(r"\s+", "", answer).lower()


def majority_correct(samples: list[dict[str, Any]]) -> bool:
    """maj@k for one problem: whether the most frequent extracted answer is right (ties: the earliest sample's).

    Answers are grouped by their text with spaces and case folded; samples with no answer do not vote.
    """
    voted = [s for s in samples if s.get("extracted") is not None]
    if not voted:
        return False
    counts = Counter(_vote_key(s["extracted"]) for s in voted)
    winner = max(counts, key=lambda key: counts[key])  # max keeps the first of equal counts: insertion order
    return any(bool(s["correct"]) for s in voted if _vote_key(s["extracted"]) == winner)


def problem_values(rows: list[dict[str, Any]], answer_task: bool) -> dict[str, dict[str, float]]:
    """Per problem id: each headline measure over its samples (maj@k only for answer tasks)."""
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["sample_index"]):
        by_problem[row["problem_id"]].append(row)
    values = {}
    for problem_id, samples in by_problem.items():
        n, c = len(samples), sum(bool(s["correct"]) for s in samples)
        values[problem_id] = {
            "accuracy": c / n,
            "pass_at_k": pass_at_k(n, c, n),
            "no_answer_rate": sum(s.get("verify_error") in NO_ANSWER for s in samples) / n,
            "completion_rate": sum(bool(s["finished"]) for s in samples) / n,
            "think_rate": sum(bool(s["has_think"]) for s in samples) / n,
            "mean_tokens": sum(s["tokens"] or 0 for s in samples) / n,
        }
        if answer_task:
            values[problem_id]["maj_at_k"] = float(majority_correct(samples))
        if samples[0].get("correct_norm") is not None:
            values[problem_id]["accuracy_norm"] = sum(bool(s["correct_norm"]) for s in samples) / n
    return values


def score(
    values: dict[str, dict[str, float]], order: list[str], draws: np.ndarray, confidence: float
) -> dict[str, Any]:
    """Each headline measure's mean over the problems in `order`, with its bootstrap interval and replicates."""
    scores: dict[str, Any] = {"replicates": {}}
    for measure in HEADLINE:
        if measure not in values[order[0]]:
            continue
        column = np.array([values[problem_id][measure] for problem_id in order])
        replicates = column[draws].mean(axis=1)
        scores[measure] = float(column.mean())
        scores[f"{measure}_ci"] = interval(replicates, confidence)
        scores["replicates"][measure] = replicates
    return scores


def delta(student: dict[str, Any], reference: dict[str, Any], confidence: float) -> dict[str, Any]:
    """Differences from the reference student with paired intervals (the replicates resample the same problems)."""
    result = {}
    for measure, replicates in student["replicates"].items():
        if measure in reference["replicates"]:
            result[measure] = student[measure] - reference[measure]
            result[f"{measure}_ci"] = interval(replicates - reference["replicates"][measure], confidence)
    return result


def breakdown(rows: list[dict[str, Any]], field: str) -> dict[str, dict[str, float]]:
    """avg@k and pass@k per value of `field` (difficulty, subject), without intervals; rows without one are left out."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get(field) is not None and not (isinstance(row[field], float) and math.isnan(row[field])):
            groups[str(row[field])].append(row)
    result = {}
    for key in sorted(groups, key=_natural_key):
        values = problem_values(groups[key], answer_task=False)
        result[key] = {
            "problems": len(values),
            "accuracy": sum(v["accuracy"] for v in values.values()) / len(values),
            "pass_at_k": sum(v["pass_at_k"] for v in values.values()) / len(values),
        }
    return result


def _natural_key(text: str) -> tuple:
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def group_score(benchmark_scores: list[dict[str, Any]], confidence: float) -> dict[str, Any]:
    """Mean avg@k over a group's benchmarks (each benchmark counts once), with an interval from their replicates."""
    replicates = np.mean([s["replicates"]["accuracy"] for s in benchmark_scores], axis=0)
    return {
        "accuracy": float(np.mean([s["accuracy"] for s in benchmark_scores])),
        "accuracy_ci": interval(replicates, confidence),
        "replicates": {"accuracy": replicates},
    }
