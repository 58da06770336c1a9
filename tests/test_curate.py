"""Curation and teacher scoring on hand-made verified rollouts."""

from __future__ import annotations

import pytest

from rdistill.config import CurateOptions, TeachersOptions
from rdistill.curate import assistant_message, select
from rdistill.errors import RecipeError
from rdistill.teachers import choose, score_teachers


def rollout(index: int, teacher: str = "a", correct: bool = True, finish: str = "stop") -> dict:
    return {
        "problem_id": f"p{index}",
        "teacher": teacher,
        "sample_index": 0,
        "domain": "math" if index % 2 else "code",
        "difficulty": 1.0,
        "correct": correct,
        "finish_reason": finish,
        "completion_tokens": 10 + index,
        "reasoning": "1 + 1 = 2",
        "response": "\\boxed{2}",
    }


ROWS = [rollout(i, correct=i % 3 != 0) for i in range(30)] + [rollout(100, finish="length"), rollout(101, teacher="b")]


@pytest.mark.parametrize("correctness", ["correct", "all", "incorrect"])
def test_selection_respects_filters_budget_and_seed(correctness):
    options = CurateOptions(correctness=correctness, budget=5, seed=3)
    decisions = select(ROWS, {"a"}, options)
    kept = [row for row, is_kept, _ in decisions if is_kept]
    assert len(decisions) == len(ROWS)
    assert len(kept) == 5
    if correctness == "correct":
        assert all(row["correct"] for row in kept)
    if correctness == "incorrect":
        assert not any(row["correct"] for row in kept)
    assert all(row["teacher"] == "a" and row["finish_reason"] == "stop" for row in kept)
    assert [row["problem_id"] for row in kept] == [row["problem_id"] for row, k, _ in select(ROWS, {"a"}, options) if k]
    reasons = {row["problem_id"]: why for row, _, why in decisions}
    assert reasons["p100"] == "unfinished (length)" and reasons["p101"] == "teacher not chosen"


def test_budget_larger_than_the_pool_keeps_everything_eligible():
    decisions = select(ROWS, {"a"}, CurateOptions(correctness="all", budget=1000))
    assert sum(kept for _, kept, _ in decisions) == 30


def test_assistant_message_wraps_reasoning_in_think_tags():
    assert assistant_message(ROWS[1]) == "<think>\n1 + 1 = 2\n</think>\n\\boxed{2}"


def test_teacher_scores_and_choice():
    rows = [rollout(i, teacher="a", correct=True) for i in range(4)] + [rollout(i, teacher="b", correct=i < 1) for i in range(4)]
    scores = score_teachers(rows)
    assert scores["a"]["accuracy"] == 1.0 and scores["b"]["accuracy"] == 0.25
    assert scores["b"]["by_domain"] == {"code": 0.5, "math": 0.0}
    assert choose(scores, TeachersOptions(choose="accuracy"))[0] == ["a"]
    assert choose(scores, TeachersOptions(choose="all"))[0] == ["a", "b"]
    assert choose(scores, TeachersOptions(teacher="b"))[0] == ["b"]
    with pytest.raises(RecipeError, match="teachers.teacher"):
        choose(scores, TeachersOptions(teacher="nobody"))
