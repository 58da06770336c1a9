"""Teacher scoring and choice: the evidence DED asks for, and each rule applied to it."""

from __future__ import annotations

import json

import pytest

from rdistill.config import TeachersOptions
from rdistill.errors import RecipeError
from rdistill.pipeline import run_one
from rdistill.teachers import choose
from rdistill.teachers.signals import common_problem_sample, sample_diversity, trace_statistics


def rollout(teacher, problem, sample, correct, reasoning="a b c", tokens=10, domain="math"):
    return {
        "teacher": teacher,
        "problem_id": problem,
        "sample_index": sample,
        "correct": correct,
        "reasoning": reasoning,
        "completion_tokens": tokens,
        "domain": domain,
    }


def test_diversity_is_zero_for_identical_samples_and_one_for_disjoint_ones():
    assert sample_diversity(["add 2 then double", "add 2 then double"]) == 0.0
    assert sample_diversity(["add two now", "double it please"]) == 1.0
    assert sample_diversity(["alone"]) is None


def test_trace_statistics_count_accuracy_length_spread_and_diversity():
    rows = [
        rollout("t", "p1", 0, True, "x y z", 10),
        rollout("t", "p1", 1, False, "x y w", 30, "math"),
        rollout("t", "p2", 0, True, "q r", 20, "code"),
    ]
    stats = trace_statistics(rows)
    assert stats["accuracy"] == pytest.approx(2 / 3)
    assert stats["by_domain"] == {"code": 1.0, "math": 0.5}
    assert stats["mean_completion_tokens"] == 20
    assert stats["length_cv"] == pytest.approx((200 / 3) ** 0.5 / 20)
    assert stats["diversity"] == pytest.approx(1 - 1 / 3), "p1's samples share one of three distinct bigrams"


def test_teachers_are_compared_on_the_same_problems():
    rows = {"a": [rollout("a", p, 0, True) for p in "wxyz"], "b": [rollout("b", p, 0, True) for p in "xyz"]}
    sample = common_problem_sample(rows, 2, seed=0)
    assert [r["problem_id"] for r in sample["a"]] == [r["problem_id"] for r in sample["b"]]
    assert len(sample["a"]) == 2 and "w" not in [r["problem_id"] for r in sample["a"]]


SCORES = {
    "sharp": {"accuracy": 1.0, "student_nll": 2.0, "proxy_gain": -0.05},
    "plain": {"accuracy": 0.9, "student_nll": 0.8, "proxy_gain": 0.20},
    "sloppy": {"accuracy": 0.4, "student_nll": 0.5, "proxy_gain": 0.30},
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("all", ["plain", "sharp", "sloppy"]), ("accuracy", ["sharp"]), ("perplexity", ["plain"]), ("proxy", ["plain"])],
)
def test_each_rule_picks_by_its_evidence_above_the_accuracy_floor(rule, expected):
    chosen, why = choose(SCORES, TeachersOptions(choose=rule, min_accuracy=0.5))
    assert chosen == expected and why


def test_forcing_an_unknown_teacher_or_an_impossible_floor_is_a_recipe_error():
    with pytest.raises(RecipeError, match="teachers.teacher"):
        choose(SCORES, TeachersOptions(teacher="nobody"))
    with pytest.raises(RecipeError, match="teachers.min_accuracy"):
        choose({"weak": {"accuracy": 0.3, "student_nll": 1.0}}, TeachersOptions(choose="perplexity", min_accuracy=0.5))


def test_proxy_rule_fine_tunes_a_student_per_teacher_and_records_the_evidence(tiny_recipe):
    run_dir = tiny_recipe.resolved_run_dir()
    recipe = tiny_recipe.model_copy(
        update={
            "teachers": TeachersOptions.model_validate(
                {
                    "choose": "proxy",
                    "perplexity_traces": 8,
                    "proxy": {"examples": 24, "validation": 4, "max_tokens": 32, "sft": {"epochs": 1, "batch_size": 8}},
                }
            )
        }
    )
    for stage in ("problems", "base", "generate", "verify", "teachers"):
        run_one(stage, recipe, run_dir)
    report = json.loads((run_dir / "teachers.json").read_text())
    assert report["rule"] == "proxy" and len(report["chosen"]) == 1
    assert report["proxy"]["validation_problems"] == 4 * 2 and report["proxy"]["training_examples"] == 24
    for name in ("stepwise", "compact"):
        evidence = report["teachers"][name]
        assert evidence["student_nll"] > 0 and 0 <= evidence["proxy_accuracy"] <= 1
        assert evidence["proxy_gain"] == pytest.approx(evidence["proxy_accuracy"] - report["proxy"]["base"]["overall"])
    best = max(
        ("stepwise", "compact"), key=lambda n: (report["teachers"][n]["proxy_gain"], report["teachers"][n]["accuracy"])
    )
    assert report["chosen"] == [best]
    assert not list((run_dir / "teachers_proxy").glob("*/config.json")), "proxy students are deleted once scored"
