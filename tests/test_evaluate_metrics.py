"""Evaluation metrics on hand-made data.

pass@k against the Codex paper's estimator, avg@k, maj@k, intervals, format rates.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from rdistill.analysis.bootstrap import resample_indices
from rdistill.backends import Completion, Request, split_think
from rdistill.config import EvaluateOptions, SamplingParams
from rdistill.data.benchmarks import Benchmark
from rdistill.evaluate import answer_row, eval_rows, summarise
from rdistill.evaluate.metrics import delta, majority_correct, pass_at_k, problem_values, score


def codex_pass_at_k(n: int, c: int, k: int) -> float:
    """The numerically stable estimator of Chen et al. 2021 (Evaluating LLMs trained on code), Figure 3."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def test_pass_at_k_matches_the_codex_reference_on_random_inputs():
    rng = random.Random(0)
    for _ in range(2000):
        n = rng.randint(1, 200)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(codex_pass_at_k(n, c, k), abs=1e-9), (n, c, k)
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 6, 5) == 1.0 and pass_at_k(4, 1, 1) == 0.25
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def rows_of(correct_by_problem: dict[str, list[bool]], **extra) -> list[dict]:
    return [
        {
            "problem_id": pid,
            "sample_index": i,
            "correct": ok,
            "finished": True,
            "has_think": False,
            "tokens": 10,
            "extracted": None,
            **extra,
        }
        for pid, oks in correct_by_problem.items()
        for i, ok in enumerate(oks)
    ]


def test_avg_and_pass_at_k_per_problem_then_averaged_over_problems():
    values = problem_values(
        rows_of({"a": [True, False, False, False], "b": [True, True, True, True], "c": [False] * 4}), answer_task=False
    )
    assert {pid: v["accuracy"] for pid, v in values.items()} == {"a": 0.25, "b": 1.0, "c": 0.0}
    assert {pid: v["pass_at_k"] for pid, v in values.items()} == {"a": 1.0, "b": 1.0, "c": 0.0}
    scores = score(values, ["a", "b", "c"], resample_indices(3, 1000, 0), 0.95)
    assert scores["accuracy"] == pytest.approx(1.25 / 3)
    assert scores["pass_at_k"] == pytest.approx(2 / 3)
    assert "maj_at_k" not in scores


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_problems():
    def interval_of(problems: int) -> list[float]:
        correct = {f"p{i}": [i % 4 == 0] for i in range(problems)}
        values = problem_values(rows_of(correct), answer_task=False)
        scores = score(values, list(correct), resample_indices(problems, 2000, 1), 0.95)
        assert scores["accuracy"] == pytest.approx(0.25)
        low, high = scores["accuracy_ci"]
        assert low < 0.25 < high
        return [low, high]

    small, large = interval_of(40), interval_of(400)
    assert large[1] - large[0] < small[1] - small[0]
    # The binomial standard error at n=400 is 0.0217: a 95 % interval about 0.085 wide.
    assert 0.07 < large[1] - large[0] < 0.10
    all_right = problem_values(rows_of({f"p{i}": [True] for i in range(10)}), answer_task=False)
    assert score(all_right, list(all_right), resample_indices(10, 500, 0), 0.95)["accuracy_ci"] == [1.0, 1.0]


def test_paired_delta_interval_resamples_the_same_problems():
    order = [f"p{i}" for i in range(50)]
    base = problem_values(rows_of({pid: [i % 2 == 0] for i, pid in enumerate(order)}), answer_task=False)
    better = problem_values(
        rows_of({pid: [i % 2 == 0 or i % 5 == 1] for i, pid in enumerate(order)}), answer_task=False
    )
    draws = resample_indices(50, 2000, 3)
    base_scores, better_scores = score(base, order, draws, 0.95), score(better, order, draws, 0.95)
    difference = delta(better_scores, base_scores, 0.95)
    assert difference["accuracy"] == pytest.approx(0.1)
    low, high = difference["accuracy_ci"]
    assert 0 <= low < 0.1 < high, (
        "better never loses a problem the base gets, so the paired interval stays at or above 0"
    )
    assert delta(base_scores, base_scores, 0.95)["accuracy_ci"] == [0.0, 0.0]


def test_majority_vote_uses_the_most_frequent_answer_and_ignores_unanswered_samples():
    def sample(extracted, correct):
        return {"extracted": extracted, "correct": correct}

    assert majority_correct([sample("3", True), sample("4", False), sample(" 3", True), sample(None, False)])
    assert not majority_correct([sample("4", False), sample("4", False), sample("3", True)])
    assert majority_correct([sample("3", True), sample("4", False)]), "a tie goes to the earliest sample"
    assert not majority_correct([sample(None, False)] * 3)
    assert majority_correct([sample("\\frac{1}{2}", True), sample("\\frac{1}{2}", True), sample("0.3", False)])


def completion(problem: dict, sample: int, text: str, finish_reason: str, tokens: int) -> Completion:
    reasoning, response = split_think(text)
    return Completion(Request(problem, sample, 0, []), text, reasoning, response, finish_reason, 5, tokens)


def test_completion_and_think_rates_on_hand_made_rollouts():
    problem = {"id": "p", "difficulty": 1.0, "meta": "{}"}
    answers = [
        completion(problem, 0, "<think>\n2 plus 2 is 4\n</think>\nThe answer is \\boxed{4}.", "stop", 20),
        completion(problem, 1, "<think>\n2 plus 2 is", "length", 48),  # cut by the limit inside the think block
        completion(problem, 2, "The answer is \\boxed{4}.", "stop", 8),  # answers directly
        completion(problem, 3, "</think> \\boxed{4} <think>", "stop", 6),  # closes before it opens: not a think block
    ]
    rows = [answer_row(a) for a in answers]
    assert [row["has_think"] for row in rows] == [True, False, False, False]
    assert rows[1]["response"] == ""
    benchmark = Benchmark("toy", "micro", "math", "in_domain", [problem], 4, SamplingParams(), None, "hand-made")
    verdicts = [
        {
            "correct": ok,
            "extracted": "4" if ok else None,
            "tests_passed": None,
            "tests_total": None,
            "verify_error": None,
        }
        for ok in (True, False, True, True)
    ]
    graded = eval_rows("student", benchmark, rows, verdicts)
    assert [row["finished"] for row in graded] == [True, False, True, True]
    summary = summarise([benchmark], ["student"], {("student", "toy"): graded}, EvaluateOptions(bootstrap_samples=200))
    scores = summary["students"]["student"]["toy"]
    assert scores["completion_rate"] == 0.75
    assert scores["think_rate"] == 0.25
    assert scores["mean_tokens"] == (20 + 48 + 8 + 6) / 4
    assert scores["accuracy"] == 0.75 and scores["pass_at_k"] == 1.0 and scores["maj_at_k"] == 1.0
    assert scores["by_difficulty"] == {"1.0": {"problems": 1, "accuracy": 0.75, "pass_at_k": 1.0}}
