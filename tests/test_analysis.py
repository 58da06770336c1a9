"""The analysis component on synthetic data with known answers: curves, the paired bootstrap, the verdict rule,
rate correlations, the figures and the sweep loader."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rdistill.analysis.bootstrap import paired_difference, two_level_replicates
from rdistill.analysis.curves import loglinear_fit, size_curve
from rdistill.analysis.load import base_scores, cell_means, load_sweep, score_matrix, series
from rdistill.analysis.plots import plot_curve, plot_effects, plot_rates
from rdistill.analysis.rates import rate_correlations
from rdistill.analysis.verdict import ClaimPart, judge, verdict

SIZES = (100, 200, 400, 800, 1600)


def noisy(mean: float, seeds: int = 3, problems: int = 200, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """(seeds, problems) scores around a mean."""
    return mean + np.random.default_rng(seed).normal(0, noise, size=(seeds, problems))


def valley_scores() -> dict[int, np.ndarray]:
    """A dip below a base of 0.30 at 100-400 examples, then a steep climb."""
    means = dict(zip(SIZES, (0.20, 0.15, 0.25, 0.40, 0.70), strict=True))
    return {size: noisy(mean, seed=index) for index, (size, mean) in enumerate(means.items())}


# Curves


def test_loglinear_fit_recovers_slope_and_intercept():
    sizes = np.array(SIZES, dtype=float)
    slope, intercept = loglinear_fit(sizes, 0.05 * np.log(sizes) - 0.1)
    assert slope == pytest.approx(0.05)
    assert intercept == pytest.approx(-0.1)


def test_a_known_dip_and_a_sharper_rise_are_measured():
    curve = size_curve(valley_scores(), base=0.30, replicates=2000)
    assert [point["size"] for point in curve.dip] == [100, 200, 400]
    assert all(point["interval_below_base"] for point in curve.dip)
    assert curve.dip[1]["gap"] == pytest.approx(-0.15, abs=0.01)
    assert curve.rise["sizes"] == [800, 1600]
    assert curve.rise["slope"] == pytest.approx(0.30 / np.log(2), abs=0.02)
    assert curve.rise["excess_ci"][0] > 0.2
    assert curve.mean[0] == pytest.approx(0.20, abs=0.01)
    assert curve.ci[0][0] < curve.mean[0] < curve.ci[0][1]
    json.dumps(curve.to_dict())


def test_a_log_linear_curve_above_the_base_has_no_dip_and_no_excess():
    scores = {size: noisy(0.3 + 0.05 * np.log(size / 100), seed=size) for size in SIZES}
    curve = size_curve(scores, base=0.25, replicates=2000)
    assert curve.dip == []
    assert curve.fit["slope"] == pytest.approx(0.05, abs=0.005)
    low, high = curve.rise["excess_ci"]
    assert low < 0 < high
    assert max(abs(r) for r in curve.residuals) < 0.01


def test_a_point_just_below_the_base_is_in_the_dip_but_not_excluded_from_the_base():
    means = (0.295, 0.32, 0.34, 0.36, 0.38)
    scores = {size: noisy(0, noise=0.3, problems=50, seed=size) for size in SIZES}
    scores = {size: scores[size] - scores[size].mean() + mean for size, mean in zip(SIZES, means, strict=True)}
    curve = size_curve(scores, base=0.30, replicates=2000)
    assert [point["size"] for point in curve.dip] == [100]
    assert curve.dip[0]["interval_below_base"] is False


def test_curve_rejects_unequal_shapes_and_too_few_sizes():
    with pytest.raises(ValueError, match="same"):
        size_curve({100: noisy(0.2), 200: noisy(0.2, problems=10)}, base=0.1)
    with pytest.raises(ValueError, match="two positive sizes"):
        size_curve({100: noisy(0.2)}, base=0.1)


# Paired bootstrap


def test_paired_difference_contains_the_known_difference_and_narrows_with_problems():
    widths = []
    for problems in (50, 800):
        b = noisy(0.4, problems=problems, noise=0.2, seed=1)
        noise = np.random.default_rng(2).normal(0, 0.1, size=b.shape)
        a = b + 0.05 + noise - noise.mean()  # the sample's difference is exactly the known one
        effect = paired_difference(a, b, replicates=4000)
        assert effect.estimate == pytest.approx(0.05)
        assert effect.low < 0.05 < effect.high
        widths.append(effect.high - effect.low)
    assert widths[1] < widths[0] / 2.5


def test_paired_difference_is_deterministic_and_seed_dependent():
    a, b = noisy(0.5, seed=3), noisy(0.45, seed=4)
    assert paired_difference(a, b, seed=7) == paired_difference(a, b, seed=7)
    assert paired_difference(a, b, seed=7).low != paired_difference(a, b, seed=8).low


def test_seed_spread_widens_the_interval():
    """The two-level scheme resamples seeds: a seed offset shared by all problems must widen the interval."""
    b = noisy(0.4, noise=0.1, seed=5)
    a = b + 0.05
    spread = a + np.array([[-0.05], [0.0], [0.05]])
    steady, spread_out = paired_difference(a, b, replicates=4000), paired_difference(spread, b, replicates=4000)
    assert spread_out.high - spread_out.low > 10 * (steady.high - steady.low)


def test_ten_thousand_replicates_over_3_seeds_and_200_problems_take_well_under_a_second():
    a, b = noisy(0.5), noisy(0.4, seed=1)
    start = time.perf_counter()
    paired_difference(a, b, replicates=10_000)
    assert time.perf_counter() - start < 0.5


def test_two_level_replicates_pair_arms():
    arms = np.stack([noisy(0.3, seed=6), noisy(0.3, seed=6) + 0.1])
    replicates = two_level_replicates(arms, 500, seed=0)
    assert replicates.shape == (500, 2)
    np.testing.assert_allclose(replicates[:, 1] - replicates[:, 0], 0.1)


# Verdict rule


@pytest.mark.parametrize(
    ("interval", "outcome", "says"),
    [
        ((0.01, 0.08), "held", "above 0"),
        ((-0.01, 0.08), "inconclusive", "spans 0"),
        ((0.0, 0.08), "inconclusive", "spans 0"),  # touching 0 does not clear it
        ((0.002, 0.015), "not held", "positive but smaller"),
        ((-0.03, 0.015), "not held", "if any, smaller"),
        ((-0.08, -0.01), "not held", "below 0"),
        ((0.005, 0.02), "held", "above 0"),  # high == margin: an effect of the margin is not excluded
    ],
)
def test_superiority(interval, outcome, says):
    low, high = interval
    result = verdict((low + high) / 2, low, high, "superiority", 0.02)
    assert result.outcome == outcome
    assert says in result.reason
    assert f"{low:+.3g}" in result.reason


@pytest.mark.parametrize(
    ("interval", "outcome"),
    [
        ((-0.01, 0.015), "held"),
        ((-0.02, 0.01), "inconclusive"),  # touching the band's edge does not clear it
        ((-0.01, 0.03), "inconclusive"),
        ((0.03, 0.06), "not held"),
        ((-0.06, -0.025), "not held"),
        ((0.02, 0.05), "inconclusive"),  # starts on the edge: equivalence not excluded
    ],
)
def test_equivalence(interval, outcome):
    low, high = interval
    assert verdict((low + high) / 2, low, high, "equivalence", 0.02).outcome == outcome


def test_verdict_rejects_bad_inputs():
    with pytest.raises(ValueError, match="margin"):
        verdict(0.1, 0.0, 0.2, "superiority", 0)
    with pytest.raises(ValueError, match="kind"):
        verdict(0.1, 0.0, 0.2, "better", 0.02)
    with pytest.raises(ValueError, match="upside down"):
        verdict(0.1, 0.2, 0.0, "equivalence", 0.02)


TEACHER = ClaimPart("DED-1", "teacher", "learnability's teacher - the most accurate", "superiority", 0.02)
SAME = ClaimPart("Valley-3", "correctness", "correct - incorrect traces", "equivalence", 0.02)


def test_judge_rows_carry_the_part_the_numbers_and_the_verdict_and_serialise():
    row = judge(TEACHER, 0.05, 0.03, 0.07)
    assert row["outcome"] == "held" and row["claim"] == "DED-1" and row["estimate"] == 0.05
    json.dumps(row)


# Rates


def synthetic_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five sizes x three seeds: the rate climbs with log(size); accuracy zigzags, unrelated to size."""
    rng = np.random.default_rng(0)
    sizes = np.repeat(np.array(SIZES, dtype=float), 3)
    accuracy = np.tile([0.1, 0.35, 0.2], 5) + rng.normal(0, 0.02, 15)
    rate = 0.1 * np.log(sizes) + rng.normal(0, 0.01, 15)
    return sizes, accuracy, rate


def test_a_rate_that_follows_size_not_accuracy():
    result = rate_correlations(*synthetic_cells(), replicates=2000)
    assert result["cells"] == 15
    assert result["spearman"]["size"]["estimate"] > 0.9
    assert abs(result["spearman"]["accuracy"]["estimate"]) < 0.4
    assert result["spearman"]["difference"]["ci"][0] > 0.1
    assert result["pearson"]["size"]["ci"][0] > 0.9
    assert result["partial"]["size"]["estimate"] > 0.9
    assert result["partial"]["accuracy"]["ci"][0] < 0 < result["partial"]["accuracy"]["ci"][1]
    json.dumps(result)


def test_a_rate_that_follows_accuracy_has_a_negative_difference():
    sizes, accuracy, _ = synthetic_cells()
    rate = 2 * accuracy + np.random.default_rng(1).normal(0, 0.01, 15)
    result = rate_correlations(sizes, accuracy, rate, replicates=2000)
    assert result["spearman"]["difference"]["ci"][1] < 0
    assert result["partial"]["accuracy"]["estimate"] > 0.9


# Figures


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000


def test_the_figures_render(tmp_path):
    curve = size_curve(valley_scores(), base=0.30, replicates=500).to_dict()
    assert_png(plot_curve(curve, tmp_path / "valley.png"))
    rows = [judge(TEACHER, 0.05, 0.03, 0.07), judge(SAME, 0.0, -0.01, 0.01), judge(TEACHER, 0.04, -0.01, 0.09)]
    assert_png(plot_effects(rows, tmp_path / "figures" / "effects.png"))
    rates = {
        name: size_curve({s: noisy(m + 0.1 * i, seed=i) for i, s in enumerate(SIZES)}, 0.3, replicates=200)
        for name, m in (("completion", 0.5), ("think", 0.3))
    }
    assert_png(plot_rates(rates["completion"].to_dict(), rates["think"].to_dict(), curve, tmp_path / "rates.png"))


# Loader


def write_cell(run_dir: Path, name: str, correct: dict[str, list[list[int]]], base: bool) -> None:
    """One cell: eval/summary.json and per benchmark a parquet of (student, problem, sample) rows."""
    eval_dir = run_dir / "sweep" / name / "eval"
    eval_dir.mkdir(parents=True)
    summary = {"in_domain": ["math", "code"], "generalisation": [], "out_of_domain": ["text"]}
    summary["benchmarks"] = {bench: {} for bench in correct}
    (eval_dir / "summary.json").write_text(json.dumps(summary))
    for bench, per_problem in correct.items():
        rows = []
        for student in ("base", "distilled") if base else ("distilled",):
            for problem, samples in enumerate(per_problem):
                for index, right in enumerate(samples):
                    hit = right if student == "distilled" else 0
                    rows.append(
                        {
                            "student": student,
                            "benchmark": bench,
                            "problem_id": f"{bench}-{problem}",
                            "sample_index": index,
                            "difficulty": problem % 2,
                            "correct": bool(hit),
                            "finished": index == 0,
                            "has_think": True,
                            "tokens": 10 + index,
                            "response": "...",
                        }
                    )
        pq.write_table(pa.Table.from_pylist(rows), eval_dir / f"{bench}.parquet")


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """Two budgets x two seeds; math and code in-domain, text out-of-domain; two samples per problem."""
    cells = []
    for seed in (0, 1):
        for budget in (100, 400):
            name = f"budget={budget}-seed{seed}"
            shift = budget // 400 + seed  # 0..2 more right samples
            correct = {bench: [[1, 0] if p < shift else [0, 0] for p in range(3)] for bench in ("math", "code", "text")}
            write_cell(tmp_path, name, correct, base=not cells)
            cells.append(
                {
                    "name": name,
                    "group": f"budget={budget}",
                    "seed": seed,
                    "examples": budget,
                    "overrides": {"curate.budget": budget},
                }
            )
    (tmp_path / "sweep" / "summary.json").write_text(json.dumps({"cells": cells, "groups": [], "base": {}}))
    return tmp_path


def test_the_loader_aggregates_samples_per_problem(sweep_dir):
    sweep = load_sweep(sweep_dir)
    assert sweep.cells["name"].tolist() == [
        "budget=100-seed0",
        "budget=400-seed0",
        "budget=100-seed1",
        "budget=400-seed1",
    ]
    assert sweep.cells["curate.budget"].tolist() == [100, 400, 100, 400]
    row = sweep.problems.query("cell == 'budget=400-seed1' and student == 'distilled' and problem_id == 'math-1'")
    assert row[["correct", "finished", "has_think", "tokens", "samples"]].iloc[0].tolist() == [0.5, 0.5, 1.0, 10.5, 2]
    assert set(sweep.problems.query("benchmark == 'text'")["scope"]) == {"out_of_domain"}


def test_the_loader_builds_paired_matrices_and_the_base(sweep_dir):
    sweep = load_sweep(sweep_dir)
    matrix = score_matrix(sweep, ["budget=400-seed0", "budget=400-seed1"], "correct", "in_domain")
    # columns: code-0..2 then math-0..2; seed 0 has one right problem at 400, seed 1 two
    np.testing.assert_array_equal(matrix, [[0.5, 0, 0, 0.5, 0, 0], [0.5, 0.5, 0, 0.5, 0.5, 0]])
    by_budget = series(sweep, "curate.budget", "correct", "text")
    assert sorted(by_budget) == [100, 400]
    np.testing.assert_array_equal(by_budget[100], [[0, 0, 0], [0.5, 0, 0]])
    np.testing.assert_array_equal(base_scores(sweep, "correct", "math"), [0, 0, 0])
    means = cell_means(sweep, "out_of_domain").set_index("name")
    assert means.loc["budget=400-seed1", "correct"] == pytest.approx(1 / 3)
    assert means.loc["budget=100-seed0", "finished"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no problems"):
        score_matrix(sweep, ["budget=100-seed0"], "correct", "mmlu")
