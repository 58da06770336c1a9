"""Teacher scoring and choice: the evidence DED asks for, and each rule applied to it."""

from __future__ import annotations

import json
import math

import pytest
from rich.console import Console

from rdistill.config import ProxyOptions, Recipe, TeachersOptions
from rdistill.data import read_parquet
from rdistill.data.manifest import StageContext
from rdistill.errors import RecipeError
from rdistill.pipeline import run_one
from rdistill.teachers import choose
from rdistill.teachers.proxy import cost_line, gain_interval, planned_steps, split_problems
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
    "sharp": {"accuracy": 1.0, "student_nll": 2.0, "rsr": 0.9, "local_nll": 1.5, "proxy_gain": -0.05},
    "plain": {"accuracy": 0.9, "student_nll": 0.8, "rsr": 1.4, "local_nll": 0.7, "proxy_gain": 0.20},
    "sloppy": {"accuracy": 0.4, "student_nll": 0.5, "rsr": 0.2, "local_nll": 0.3, "proxy_gain": 0.30},
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("all", ["plain", "sharp", "sloppy"]),
        ("accuracy", ["sharp"]),
        ("perplexity", ["plain"]),
        ("rsr", ["sharp"]),
        ("local", ["plain"]),
        ("proxy", ["plain"]),
    ],
)
def test_each_rule_picks_by_its_evidence_above_the_accuracy_floor(rule, expected):
    chosen, why = choose(SCORES, TeachersOptions(choose=rule, min_accuracy=0.5))
    assert chosen == expected and why


def test_the_reason_names_the_rule_and_every_eligible_teacher_s_value_best_first():
    chosen, why = choose(SCORES, TeachersOptions(choose="rsr", keep=2, min_accuracy=0.5))
    assert chosen == ["sharp", "plain"]
    assert "rank–surprisal" in why and "best first: sharp 0.9, plain 1.4" in why and "sloppy" not in why


def test_forcing_an_unknown_teacher_or_an_impossible_floor_is_a_recipe_error():
    with pytest.raises(RecipeError, match="teachers.teacher"):
        choose(SCORES, TeachersOptions(teacher="nobody"))
    with pytest.raises(RecipeError, match="teachers.min_accuracy"):
        choose({"weak": {"accuracy": 0.3, "student_nll": 1.0}}, TeachersOptions(choose="perplexity", min_accuracy=0.5))


def test_a_signal_rule_without_scored_traces_is_refused_when_the_recipe_is_read():
    with pytest.raises(ValueError, match="signals.traces"):
        TeachersOptions.model_validate({"choose": "rsr", "signals": {"traces": 0}})


def test_the_proxy_defaults_leave_the_valley_on_several_seeds_with_a_stated_interval():
    options = ProxyOptions()
    assert options.seeds == [0, 1, 2] and options.validation == 100
    assert (options.sft.epochs, options.sft.batch_size) == (12.0, 8)
    assert "12 epochs of batches of 8" in ProxyOptions.model_fields["sft"].description
    # 400 traces x 12 epochs / 8 per batch, for each of 5 teachers and 3 seeds.
    assert planned_steps(400, options) == 600
    assert "5 teachers x 3 seeds x about 600 optimiser steps" in cost_line(5, 400, options)
    assert "9,000 steps" in cost_line(5, 400, options)


def test_proxy_validation_problems_are_held_out_per_domain_and_the_same_for_every_teacher():
    problems = [{"id": f"{d}{i}", "domain": d} for d in ("math", "code") for i in range(10)]
    rows = {t: [{"problem_id": p["id"], "correct": True, "sample_index": 0} for p in problems] for t in ("a", "b")}
    validation, train_ids = split_problems(problems, rows, ProxyOptions(validation=3, examples=5))
    assert sorted(p["domain"] for p in validation) == ["code"] * 3 + ["math"] * 3
    assert len(train_ids) == 5 and not {p["id"] for p in validation} & set(train_ids)


def test_a_gain_s_interval_is_a_bootstrap_over_problems():
    assert gain_interval([0.5] * 10, seed=0) == [0.5, 0.5]
    low, high = gain_interval([1.0, 0.0] * 50, seed=0)
    assert low < 0.5 < high and high - low < 0.25


def tiny_teachers_recipe(tiny_recipe: Recipe, teachers: dict, curate: dict | None = None) -> Recipe:
    """The tiny recipe with these teachers (and curate) options."""
    update = {"teachers": TeachersOptions.model_validate(teachers)}
    if curate is not None:
        update["curate"] = tiny_recipe.curate.model_copy(update=curate)
    return tiny_recipe.model_copy(update=update)


def test_proxy_rule_fine_tunes_a_student_per_teacher_and_seed_and_records_the_evidence(tiny_recipe):
    run_dir = tiny_recipe.resolved_run_dir()
    recipe = tiny_teachers_recipe(
        tiny_recipe,
        {
            "choose": "proxy",
            "signals": {"traces": 8},
            "proxy": {
                "examples": 24,
                "validation": 4,
                "max_tokens": 32,
                "seeds": [0, 1],
                "sft": {"epochs": 1, "batch_size": 8},
            },
        },
    )
    console = Console(record=True, width=200)
    for stage in ("problems", "base", "generate", "verify", "teachers"):
        run_one(stage, recipe, run_dir, StageContext(console=console))
    assert "2 teachers x 2 seeds x about 3 optimiser steps" in console.export_text()
    report = json.loads((run_dir / "teachers.json").read_text())
    assert report["rule"] == "proxy" and len(report["chosen"]) == 1
    proxy = report["proxy"]
    assert proxy["validation_problems"] == 4 * 2 and proxy["training_examples"] == 24
    assert proxy["seeds"] == [0, 1] and proxy["planned_steps"] == 3
    for name in ("stepwise", "compact"):
        evidence, result = report["teachers"][name], proxy["teachers"][name]
        assert evidence["student_nll"] > 0 and evidence["rsr"] > 0 and evidence["local_nll"] > 0
        assert len(result["seed_gains"]) == 2 and len(result["steps"]) == 2
        assert evidence["proxy_gain"] == pytest.approx(evidence["proxy_accuracy"] - proxy["base"]["overall"])
        assert evidence["proxy_gain"] == pytest.approx(sum(result["seed_gains"]) / 2)
        assert evidence["proxy_gain_low"] <= evidence["proxy_gain"] <= evidence["proxy_gain_high"]
    best = max(
        ("stepwise", "compact"), key=lambda n: (report["teachers"][n]["proxy_gain"], report["teachers"][n]["accuracy"])
    )
    assert report["chosen"] == [best] and f"best first: {best}" in report["why"]
    assert report["signals"]["rsr"] == {"better": "lower"}
    assert report["student_signals"]["traces"] == 16 and report["student_signals"]["sample_per_teacher"] == 8
    assert not list((run_dir / "teachers_proxy").glob("*/config.json")), "proxy students are deleted once scored"


@pytest.mark.slow
def test_per_trace_signals_reach_the_curation_files_and_rank_the_traces(tiny_recipe):
    run_dir = tiny_recipe.resolved_run_dir()
    recipe = tiny_teachers_recipe(
        tiny_recipe,
        {"choose": "rsr", "keep": 1, "min_accuracy": 0.0, "signals": {"traces": 8, "all_traces": True}},
        {"strategy": "rsr", "budget": 10},
    )
    for stage in ("problems", "base", "generate", "verify", "teachers", "curate"):
        run_one(stage, recipe, run_dir)
    report = json.loads((run_dir / "teachers.json").read_text())
    chosen = report["chosen"][0]
    assert chosen == min(report["teachers"], key=lambda name: report["teachers"][name]["rsr"])
    signals = read_parquet(run_dir / "teacher_signals.parquet")
    verified = read_parquet(run_dir / "verified.parquet")
    assert len(signals) == len(verified), "all_traces scores every rollout"
    for row in signals:
        assert row["rsr"] == pytest.approx(row["mean_rank"] / row["student_nll"])
    selection = read_parquet(run_dir / "selection.parquet")
    assert all(row["rsr"] is not None and math.isfinite(row["local_nll"]) for row in selection)
    by_key = {(r["teacher"], r["problem_id"], r["sample_index"]): r["rsr"] for r in signals}
    assert all(
        row["rsr"] == pytest.approx(by_key[(row["teacher"], row["problem_id"], row["sample_index"])])
        for row in selection
    )
    # The kept traces are, among the chosen teacher's traces that passed the filters, those of lowest RSR
    # (one per problem first: the budget fills in passes).
    kept = [row for row in selection if row["kept"]]
    assert len(kept) == 10 and {row["teacher"] for row in kept} == {chosen}
    candidates = [row for row in selection if row["step"] == "select"]
    best = {}
    for row in candidates:
        best[row["problem_id"]] = min(best.get(row["problem_id"], math.inf), row["rsr"])
    assert max(row["rsr"] for row in kept) <= sorted(best.values())[9] + 1e-12


@pytest.mark.slow
def test_curating_one_teacher_alone_keeps_only_its_traces(tiny_recipe):
    run_dir = tiny_recipe.resolved_run_dir()
    recipe = tiny_teachers_recipe(tiny_recipe, {"choose": "all", "signals": {"traces": 0}}, {"teacher": "compact"})
    for stage in ("problems", "base", "generate", "verify", "teachers", "curate"):
        run_one(stage, recipe, run_dir)
    sft = [json.loads(line) for line in (run_dir / "sft.jsonl").read_text().splitlines()]
    assert sft and {example["teacher"] for example in sft} == {"compact"}
    assert read_parquet(run_dir / "teacher_signals.parquet") == []
