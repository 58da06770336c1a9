"""The teacher-choice study's analysis: each signal's Spearman and top-1 hits against distillation per teacher."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_recipe_dict
from rdistill.config import Recipe, SweepOptions
from rdistill.signals.study import spearman, top1_hit, truth_by_seed, validate_signals
from rdistill.sweep import cells, run_sweep, signal_seconds


def test_ranks_share_ties_and_spearman_is_the_correlation_of_ranks():
    assert spearman([10.0, 30.0, 20.0, 20.0], [1.0, 4.0, 2.5, 2.5]) == pytest.approx(1.0), "ties by average rank"
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    # Ranks (1, 2, 3) against (1, 3, 2): 1 - 6 * (0 + 1 + 1) / (3 * (9 - 1)) = 0.5.
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_a_top1_hit_counts_a_tie_for_best_in_the_truth():
    assert top1_hit({"a": 3, "b": 1}, {"a": 0.5, "b": 0.5})
    assert not top1_hit({"a": 3, "b": 1}, {"a": 0.2, "b": 0.5})


def test_each_signal_is_oriented_so_that_plus_one_is_a_perfect_prediction():
    teachers = {
        "a": {"rsr": 1.0, "accuracy": 0.9, "proxy_gain": None},
        "b": {"rsr": 2.0, "accuracy": 0.8, "proxy_gain": 0.1},
        "c": {"rsr": 3.0, "accuracy": 0.7, "proxy_gain": 0.2},
    }
    truth = {0: {"a": 0.5, "b": 0.4, "c": 0.3}, 1: {"a": 0.3, "b": 0.4, "c": 0.5}}
    better = {"rsr": "lower", "accuracy": "higher", "proxy_gain": "higher", "mean_completion_tokens": "none"}
    table = validate_signals(teachers, better, truth, {"rsr": 1.5, "accuracy": 0.0})
    assert [row["signal"] for row in table] == ["rsr", "accuracy"], "a signal some teacher lacks is left out"
    rsr = table[0]
    # Lowest RSR first ranks a > b > c: a perfect prediction on seed 0, a perfectly wrong one on seed 1.
    assert rsr["spearman_per_seed"] == {0: pytest.approx(1.0), 1: pytest.approx(-1.0)}
    assert rsr["spearman"]["mean"] == pytest.approx(0.0) and rsr["spearman"]["min"] == pytest.approx(-1.0)
    assert rsr["top1"] == "a" and rsr["top1_hits"] == {0: True, 1: False} and rsr["top1_hit_rate"] == 0.5
    # The mean truth over seeds is 0.4 for every teacher: no ranking to correlate with.
    assert rsr["spearman_of_mean"] is None and rsr["seconds"] == 1.5


def test_the_truth_comes_from_the_cells_that_distilled_on_one_teacher_each():
    results = [
        {"overrides": {"curate.teacher": "a"}, "seed": 0, "in_domain": 0.5},
        {"overrides": {"curate.teacher": "b"}, "seed": 0, "in_domain": 0.4},
        {"overrides": {"curate.teacher": "a"}, "seed": 1, "in_domain": 0.3},
        {"overrides": {"curate.budget": 9}, "seed": 1, "in_domain": 0.9},
    ]
    assert truth_by_seed(results, "curate.teacher", "in_domain") == {0: {"a": 0.5, "b": 0.4}, 1: {"a": 0.3}}


def test_a_grid_over_teachers_makes_a_cell_per_teacher_and_seed():
    grid = cells(SweepOptions(seeds=[0, 1], grid={"curate.teacher": ["a", "b"]}))
    assert [c.name for c in grid] == ["teacher=a-seed0", "teacher=b-seed0", "teacher=a-seed1", "teacher=b-seed1"]


def test_what_each_signal_cost_is_read_from_teachers_json():
    teachers = {"student_signals": {"seconds": {"student_nll": 2.0, "rsr": 2.0, "local_nll": 7.0}}, "proxy": None}
    assert signal_seconds(teachers) == {
        "accuracy": 0.0,
        "length_cv": 0.0,
        "diversity": 0.0,
        "student_nll": 2.0,
        "rsr": 2.0,
        "local_nll": 7.0,
        "proxy_gain": None,
    }


@pytest.mark.slow
def test_a_tiny_teacher_choice_study_distils_on_each_teacher_alone_and_scores_every_signal(tmp_path):
    raw = tiny_recipe_dict(tmp_path / "run")
    raw["teachers"] = {"choose": "all", "signals": {"traces": 8}}
    raw["curate"] = {"budget": 20, "same_problems": True, "trajectories": {"per_problem": 1}}
    raw["evaluate"]["sampling"]["max_tokens"] = 24
    raw["sweep"] = {"seeds": [0], "grid": {"curate.teacher": ["stepwise", "compact"]}}
    parent = run_sweep(Recipe.model_validate(raw))
    for teacher in ("stepwise", "compact"):
        sft = (parent / "sweep" / f"teacher={teacher}-seed0" / "sft.jsonl").read_text().splitlines()
        assert len(sft) == 20 and {json.loads(line)["teacher"] for line in sft} == {teacher}
    summary = json.loads((parent / "sweep" / "summary.json").read_text())
    rows = {row["signal"]: row for row in summary["teacher_choice"]["in_domain"]}
    assert {"accuracy", "student_nll", "rsr", "local_nll", "length_cv"} <= set(rows)
    truth = {c["overrides"]["curate.teacher"]: c["in_domain"] for c in summary["cells"]}
    for row in rows.values():
        assert set(row["values"]) == {"stepwise", "compact"} and row["top1_hits"]["0"] == (
            truth[row["top1"]] == max(truth.values())
        )
    assert rows["rsr"]["seconds"] > 0 and rows["accuracy"]["seconds"] == 0
