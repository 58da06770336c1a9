"""The sampling check: a backend that returns identical samples at temperature > 0 is noticed, named and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import DATA, QUIET, micro_student, needs_data, served
from rdistill.backends import Request
from rdistill.backends.hf import HFBackend
from rdistill.backends.sampling_check import PROBE_PROBLEMS, SamplingCheck
from rdistill.config import EvaluateOptions, GenerateOptions, ModelSpec, ProblemsOptions, SamplingParams
from rdistill.data.manifest import read_manifest
from rdistill.evaluate import run as evaluate
from rdistill.generate import run as generate
from rdistill.problems import run as make_problems

HOT = SamplingParams(temperature=1.0, max_tokens=16)
SERVED = ModelSpec(name="s", backend="openai", base_urls=["http://h:1/v1"])


def verdict_of(spec: ModelSpec, texts: dict[str, list[str]], params: SamplingParams = HOT) -> dict | None:
    return SamplingCheck.over(spec, [(pid, text) for pid, group in texts.items() for text in group], params)


def test_identical_samples_on_every_probed_problem_are_flagged_and_varied_ones_not():
    identical = {f"p{i}": ["same"] * 4 for i in range(10)}
    verdict = verdict_of(SERVED, identical)
    assert verdict == {
        "problems_checked": PROBE_PROBLEMS,
        "identical_problems": PROBE_PROBLEMS,
        "samples_per_problem": 4,
        "temperature": 1.0,
        "ignores_sampling": True,
    }
    one_varies = {**identical, "p3": ["same", "same", "other", "same"]}
    assert verdict_of(SERVED, one_varies)["ignores_sampling"] is False, "one varied problem clears the backend"
    assert verdict_of(SERVED, {"p0": ["a", "a"], "p1": ["b", "b"]})["problems_checked"] == 2, "fewer problems: all"


def test_the_check_applies_only_to_sampling_backends_at_temperature_above_0_with_k_above_1():
    identical = {f"p{i}": ["same"] * 2 for i in range(10)}
    assert verdict_of(SERVED, identical, SamplingParams(temperature=0.0)) is None, "greedy samples may be equal"
    assert verdict_of(SERVED, {pid: ["same"] for pid in identical}) is None, (
        "one sample per problem: nothing to compare"
    )
    assert verdict_of(ModelSpec(name="compact"), identical) is None, "procedural teachers are not samplers"


def test_the_verdict_comes_as_soon_as_the_first_problems_are_complete():
    check = SamplingCheck.for_requests(SERVED, [f"p{i}" for i in range(20) for _ in range(2)], HOT)
    verdicts = [check.observe(f"p{i}", "same") for i in range(PROBE_PROBLEMS) for _ in range(2)]
    assert verdicts[:-1] == [None] * (len(verdicts) - 1) and verdicts[-1]["ignores_sampling"]
    assert check.observe("p9", "same") is None, "decided once"


def test_the_hf_backend_samples_differ_at_temperature_1(tmp_path):
    model = micro_student(tmp_path / "student")
    backend = HFBackend(ModelSpec(name="s", backend="hf", model=str(model)), "test")
    requests = [
        Request({"id": f"p{i}"}, sample, seed=1000 * i + sample, messages=[{"role": "user", "content": f"{i} + {i}"}])
        for i in range(PROBE_PROBLEMS)
        for sample in range(2)
    ]
    texts: dict[str, list[str]] = {}
    backend.generate(requests, HOT, lambda c: texts.setdefault(c.request.problem["id"], []).append(c.text))
    assert verdict_of(ModelSpec(name="s", backend="hf"), texts)["ignores_sampling"] is False


@pytest.fixture(scope="module")
def served_student(tmp_path_factory) -> Path:
    return micro_student(tmp_path_factory.mktemp("served") / "student")


@pytest.mark.parametrize("flags", [[], ["--fault-ignore-sampling"]], ids=["honours sampling", "ignores sampling"])
def test_generate_records_the_check_of_rdistill_serve_and_of_a_server_that_ignores_sampling(
    tmp_path, served_student, flags
):
    run_dir = tmp_path / "run"
    pool = {"micro": {"math": 10, "code": 0, "eval_per_domain": 4, "difficulties": [1, 2]}}
    make_problems(ProblemsOptions.model_validate(pool), run_dir, QUIET)
    with served(str(served_student), "--model-name", "student", *flags) as url:
        teacher = {"name": "t", "backend": "openai", "model": "student", "base_urls": [url], "timeout_s": 60}
        options = {"teachers": [teacher], "samples_per_problem": 2, "sampling": {"temperature": 1.0, "max_tokens": 12}}
        generate(GenerateOptions.model_validate(options), run_dir, QUIET)
    counts = read_manifest(run_dir)["stages"]["generate"]["counts"]
    assert counts["t"] == 20
    assert counts["sampling_check"]["t"]["problems_checked"] == PROBE_PROBLEMS
    assert counts["sampling_check"]["t"]["ignores_sampling"] is bool(flags)


@needs_data
def test_evaluate_warns_naming_the_endpoint_and_the_recipe_key_and_never_builds_the_base(
    tmp_path, served_student, monkeypatch
):
    monkeypatch.setenv("RDISTILL_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    benchmark = {"name": "math500", "format": "math500", "path": str(DATA / "math500"), "limit": PROBE_PROBLEMS}
    with served(str(served_student), "--model-name", "student", "--fault-ignore-sampling") as url:
        options = EvaluateOptions.model_validate(
            {
                "base": False,
                "distilled": False,
                "students": [{"name": "served", "backend": "openai", "model": "student", "base_urls": [url]}],
                "benchmarks": [{**benchmark, "samples": 2, "max_tokens": 8, "temperature": 1.0}],
                "bootstrap_samples": 100,
            }
        )
        evaluate(options, run_dir, QUIET)
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert summary["students"]["served"]["math500"]["sampling_check"]["ignores_sampling"] is True
    (message,) = summary["warnings"]
    assert f"openai endpoint {url}" in message and "evaluate.students[0]" in message
    assert "evaluate.benchmarks[0].temperature" in message and "evaluate.benchmarks[0].samples: 1" in message
    assert not (run_dir / "base.json").exists(), "evaluating only evaluate.students needs no base"
    assert not (tmp_path / "cache").exists(), "nor builds the micro base"
