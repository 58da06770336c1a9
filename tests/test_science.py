"""`rdistill science`: a tiny study sweep judged claim by claim, results.md and its figures written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from helpers import tiny_recipe_dict
from rdistill.analysis.claims import combine
from rdistill.analysis.verdict import verdict
from rdistill.cli import app
from rdistill.science import effect_text
from test_analysis import write_cell

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CLAIMS = [
    {"id": "Valley-1", "statement": "dips then rises", "kind": "valley", "size_key": "curate.budget"},
    {"id": "Valley-4", "statement": "rates follow size", "kind": "rates", "size_key": "curate.budget"},
    {
        "id": "DED-2",
        "statement": "more traces, same accuracy",
        "comparisons": [
            {"a": "budget=40", "b": "budget=10", "kind": "equivalence", "margin": 0.05},
            {"a": "budget=40", "b": "budget=10", "measure": "out_of_domain", "kind": "superiority"},
        ],
    },
]


def test_a_claim_holds_when_every_part_holds_and_fails_when_one_fails():
    assert combine(["held", "held"]) == "held"
    assert combine(["held", "inconclusive"]) == "inconclusive"
    assert combine(["inconclusive", "not held"]) == "not held"
    assert combine([]) == "inconclusive"
    assert effect_text({"unit": "points", "estimate": 0.031, "low": -0.01, "high": 0.07}) == (
        "+3.1 [-1.0, +7.0] points"
    )


@pytest.mark.slow
def test_a_tiny_study_is_run_judged_by_its_stated_rules_and_written_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_recipe_dict(Path("runs/study"))
    raw["name"] = "study"
    raw["evaluate"]["sampling"]["max_tokens"] = 24
    raw["sweep"] = {"seeds": [0, 1, 2], "grid": {"curate.budget": [10, 40]}, "claims": CLAIMS}
    Path("study.yaml").write_text(yaml.safe_dump(raw))

    missing = CliRunner().invoke(app, ["science", "study.yaml", "--out", "docs/results.md", "--no-run"])
    assert missing.exit_code == 2 and "holds no finished sweep" in missing.output

    result = CliRunner().invoke(app, ["science", "study.yaml", "--out", "docs/results.md"])
    assert result.exit_code == 0, result.output
    results = json.loads(Path("docs/results.json").read_text())
    (study,) = results["studies"]
    assert study["stage_seconds"] > 0 and study["base"] == "direct"
    claims = {claim["id"]: claim for claim in study["claims"]}
    assert [part["part"] for part in claims["Valley-1"]["parts"]] == ["dip", "rise"]
    assert [part["part"] for part in claims["Valley-4"]["parts"]] == ["completion", "think"]
    assert len(claims["DED-2"]["parts"]) == 2
    for claim in claims.values():
        for part in claim["parts"]:
            if part["estimate"] is None:  # a correlation over cells that all scored alike
                assert part["outcome"] == "inconclusive" and "undefined" in part["reason"]
                continue
            assert part["low"] <= part["estimate"] <= part["high"]
            rule = verdict(part["estimate"], part["low"], part["high"], part["kind"], part["margin"])
            assert part["outcome"] == rule.outcome
        assert claim["verdict"] == combine([part["outcome"] for part in claim["parts"]])
    curve = claims["Valley-1"]["curve"]
    assert curve["sizes"] == [10.0, 40.0] and len(curve["seed_means"][0]) == 3

    in_sweep = json.loads(Path("runs/study/sweep/claims.json").read_text())
    assert [claim["verdict"] for claim in in_sweep] == [claim["verdict"] for claim in study["claims"]]
    report = Path("runs/study/report.html").read_text()
    assert "<h2>Claims</h2>" in report and report.count("data:image/png") >= 3, "the claims' table and figures"

    text = Path("docs/results.md").read_text()
    for claim in CLAIMS:
        assert f"## {claim['id']}: {claim['statement']}" in text
    for figure in ("docs/results/claims.png", "docs/results/study/Valley-1.png", "docs/results/study/Valley-4.png"):
        assert Path(figure).read_bytes()[:4] == b"\x89PNG"
        assert f"]({Path(figure).relative_to('docs').as_posix()})" in text

    again = CliRunner().invoke(app, ["science", "study.yaml", "--out", "docs/results.md"])
    assert again.exit_code == 0 and "skip train" in again.output, "a second call only analyses"
    assert json.loads(Path("docs/results.json").read_text())["studies"][0]["claims"] == study["claims"]


def synthetic_study(root: Path, accuracy: dict[str, float], sizes: dict[str, float]) -> None:
    """A finished sweep written directly, three seeds per group: 40 problems per benchmark, the distilled student
    right on a share `accuracy[group]` of them (one more or fewer with the seed), the base on none."""
    cells, groups = [], []
    for group, share in accuracy.items():
        for seed in range(3):
            right = round(40 * share) + seed - 1
            correct = {bench: [[1] if p < right else [0] for p in range(40)] for bench in ("math", "code", "text")}
            name = f"{group}-seed{seed}"
            write_cell(root, name, correct, base=not cells)
            overrides = {"curate.budget": sizes[group]}
            cells.append({"name": name, "group": group, "seed": seed, "examples": sizes[group], "overrides": overrides})
        spread = {"mean": share, "std": 0.025, "min": share - 0.025, "max": share + 0.025}
        groups.append(
            {"group": group, "seeds": [0, 1, 2], "examples": {"mean": sizes[group]}}
            | {"in_domain": spread, "out_of_domain": spread, "generalisation": None}
        )
    (root / "sweep" / "summary.json").write_text(json.dumps({"cells": cells, "groups": groups, "base": {}}))


def test_known_effects_get_the_verdicts_their_rules_give(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synthetic_study(
        Path("runs/known"),
        {"small": 0.5, "large": 0.1, "huge": 0.9},
        {"small": 100, "large": 1000, "huge": 10000},
    )
    claims = [
        {"id": "DED-3", "statement": "small beats large", "comparisons": [{"a": "small", "b": "large"}]},
        {
            "id": "Valley-3",
            "statement": "small equals large",
            "comparisons": [{"a": "small", "b": "large", "kind": "equivalence"}],
        },
        {"id": "Valley-1", "statement": "dips then rises", "kind": "valley", "size_key": "curate.budget"},
    ]
    recipe = {"name": "known", "run_dir": "runs/known", "sweep": {"seeds": [0, 1, 2], "claims": claims}}
    Path("known.yaml").write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["science", "known.yaml", "--out", "results.md", "--no-run"])
    assert result.exit_code == 0, result.output
    verdicts = {c["id"]: c for c in json.loads(Path("results.json").read_text())["studies"][0]["claims"]}
    assert verdicts["DED-3"]["verdict"] == "held" and verdicts["DED-3"]["parts"][0]["estimate"] == pytest.approx(0.4)
    assert verdicts["Valley-3"]["verdict"] == "not held", "40 points apart: equivalence excluded"
    dip, rise = verdicts["Valley-1"]["parts"]
    # The base is right on no problem (write_cell's base rows), so nothing dips below it; the rise
    # (0.1 -> 0.9 over the last e-folds against a fit dragged down by the first fall) is real.
    assert dip["outcome"] == "not held" and dip["estimate"] < 0
    assert rise["outcome"] == "held" and rise["low"] > 0
    assert "| DED-3 | in-domain accuracy: small - large | direct | +40.0 [" in Path("results.md").read_text()
