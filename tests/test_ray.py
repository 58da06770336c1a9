"""Ray: grading (`verify.executor: ray`) as the local pool grades it, lost workers, killed drivers; vLLM replicas.

One local Ray instance of two CPUs serves every test here (starting one costs 10-20 s on two
cores); the tests skip where Ray is not installed (`pip install 'rdistill[ray]'`).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from helpers import (
    DATA,
    HOSTILE,
    fenced,
    humaneval_mutants,
    kill_and_resume_verify,
    needs_data,
    slow_code_run,
)
from rdistill.data import read_jsonl, read_parquet
from rdistill.grading import grade_chunk, grade_many
from rdistill.grading.executors import GradingWorker, UntrustedCodeRefused, make_executor
from rdistill.grading.sandbox import isolation

pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """A local Ray instance for the module; every `grade_many(executor="ray")` here joins it."""
    from rdistill.cluster import ray_session

    with ray_session(None, 2, "tests") as ray:
        # Ray workers cannot import this module: what they run from it travels by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        yield ray


@pytest.fixture
def isolating():
    if isolation() == "rlimits":
        pytest.skip("no isolating sandbox mode here: Ray workers refuse untrusted code")


def both_executors(items, **options):
    """Verdicts of the local executor and of the Ray executor for the same items."""
    return [grade_many(items, executor=executor, **options) for executor in ("local", "ray")]


def test_ray_verdicts_equal_the_local_ones_on_hostile_code(isolating):
    items = [
        ({"id": name, "domain": "code", "tests": tests}, fenced(program)) for name, (program, tests) in HOSTILE.items()
    ]
    local, ray = both_executors(items, timeout_s=3)
    assert ray == local
    assert not any(verdict["correct"] for verdict in ray)


def read_rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name / "test.jsonl").read_text().splitlines()]


def mbpp_programs(row: dict) -> list[str]:
    """An MBPP reference solution and two broken versions of the function its tests call."""
    code = row["code"]
    name = next(name for name in re.findall(r"^def (\w+)", code, re.MULTILINE) if name in row["test_list"][0])
    return [
        code,
        f"{code}\ndef {name}(*args, **kwargs):\n    return None\n",
        f"{code}\ndef {name}(*args):\n    raise ValueError\n",
    ]


@needs_data
def test_ray_verdicts_equal_the_local_ones_on_reference_solutions_and_mutants(isolating):
    from rdistill.data.benchmarks import humaneval_problem, mbpp_problem

    items, references = [], []
    for row in read_rows("humaneval")[::20]:
        programs = [row["prompt"] + row["canonical_solution"], *humaneval_mutants(row).values()]
        items += [(humaneval_problem(row, "humaneval"), fenced(program)) for program in programs]
        references += [True] + [False] * (len(programs) - 1)
    for row in read_rows("mbpp")[::50]:
        programs = mbpp_programs(row)
        items += [(mbpp_problem(row, "mbpp"), fenced(program)) for program in programs]
        references += [True] + [False] * (len(programs) - 1)
    local, ray = both_executors(items, timeout_s=1)
    assert ray == local
    assert [verdict["correct"] for verdict in local] == references, "references pass and mutants fail"


def test_each_ray_node_reports_its_sandbox_mode(ray_instance):
    output = io.StringIO()
    grade_many(
        [({"id": "a", "domain": "math", "answer": "2"}, r"\boxed{2}")], executor="ray", console=Console(file=output)
    )
    assert (
        f"grading on Ray node {__import__('ray').util.get_node_ip_address()}: 2 worker(s), code sandbox {isolation()}"
        in " ".join(output.getvalue().split())
    )


def test_a_worker_that_cannot_isolate_code_refuses_it_unless_trusted(monkeypatch):
    monkeypatch.setattr("rdistill.grading.sandbox.isolation", lambda: "rlimits")
    code = [({"id": "c", "domain": "code", "tests": HOSTILE["sys_exit"][1]}, fenced("def f(xs):\n    return xs[::-1]"))]
    math = [({"id": "m", "domain": "math", "answer": "2"}, r"\boxed{2}")]
    refusing, trusting = GradingWorker(trusted_code=False), GradingWorker(trusted_code=True)
    work = functools.partial(grade_chunk, timeout_s=5)
    with pytest.raises(UntrustedCodeRefused, match="trusted_code: true"):
        refusing.run(work, 0, code)
    assert refusing.run(work, 1, math)[1][0]["correct"] is True
    assert trusting.run(work, 2, code)[1][0]["correct"] is True


def refuse(batch: list) -> list:
    raise UntrustedCodeRefused("Ray node 10.0.0.9: refuses untrusted code")


def test_a_refusal_on_a_ray_worker_reaches_the_driver_as_itself():
    """A user error raised in an actor stops the run as that error (the CLI's exit code 2), not as Ray's wrapper."""
    with make_executor("ray", 2, None, False, lambda line: None) as pool:
        with pytest.raises(UntrustedCodeRefused, match="10.0.0.9"):
            list(pool.map(refuse, [[], []]))


def worker_processes(title: bytes) -> list[int]:
    """Pids of processes whose command line (Ray's process title) starts with `title`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_worker_killed_mid_batch_is_retried_and_every_verdict_arrives_once(tmp_path):
    count = slow_code_run(tmp_path, 24, 0.3)
    problems = {p["id"]: p for p in read_parquet(tmp_path / "problems.parquet")}
    items = [(problems[r["problem_id"]], r["response"]) for r in read_jsonl(tmp_path / "rollouts" / "slow.jsonl")]
    killed: list[int] = []

    def kill_one_mid_batch() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            busy = worker_processes(b"ray::GradingWorker.run")
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_mid_batch)
    killer.start()
    seen: list[int] = []
    verdicts = grade_many(items, timeout_s=5, executor="ray", on_verdict=lambda position, _: seen.append(position))
    killer.join()
    assert killed, "no worker was caught grading"
    assert sorted(seen) == list(range(count)), "each verdict is handed over exactly once"
    assert all(verdict["correct"] for verdict in verdicts)


@pytest.mark.slow
def test_a_driver_killed_mid_stage_resumes_on_ray_without_writing_a_verdict_twice(tmp_path):
    kill_and_resume_verify(tmp_path / "run", "ray")


class FakeReplica:
    """Stands in for `VLLMReplica` on CPU actors: it answers each conversation with its seed and its process id."""

    def __init__(self, model: str, engine_args: dict, where: str) -> None:
        self.model = model

    def ready(self) -> bool:
        return True

    def chat(self, index: int, conversations: list, samplings: list[dict]) -> tuple[int, list[dict]]:
        time.sleep(0.05)
        return index, [
            {
                "text": f"<think>\n{os.getpid()}\n</think>\nseed {fields['seed']}: {messages[-1]['content']}",
                "finish_reason": "stop",
                "prompt_tokens": 1,
                "completion_tokens": 2,
                "latency_s": 0.05,
            }
            for messages, fields in zip(conversations, samplings, strict=True)
        ]


def test_vllm_requests_are_spread_over_ray_replicas_and_each_answered_once(ray_instance):
    from rdistill.backends import Request
    from rdistill.backends.vllm_ray import RayVLLMBackend
    from rdistill.config import ModelSpec, SamplingParams

    spec = ModelSpec(
        name="teacher", backend="vllm", model="fake", batch_size=3, ray={"replicas": 2, "gpus_per_replica": 0}
    )
    requests = [Request({"id": f"p{i}"}, 0, 100 + i, [{"role": "user", "content": f"q{i}"}]) for i in range(20)]
    backend = RayVLLMBackend(spec, "generate.teachers[0]", replica=FakeReplica)
    results = []
    try:
        backend.generate(requests, SamplingParams(), results.append)
    finally:
        backend.close()
    assert sorted(result.request.seed for result in results) == [request.seed for request in requests]
    assert all(
        result.response == f"seed {result.request.seed}: {result.request.messages[-1]['content']}" for result in results
    )
    assert len({result.reasoning for result in results}) == 2, "both replicas answered"


def test_a_vllm_replica_that_cannot_start_is_a_backend_error(ray_instance):
    from rdistill.backends import make_backend
    from rdistill.config import ModelSpec
    from rdistill.errors import BackendError

    spec = ModelSpec(name="teacher", backend="vllm", model="m", ray={"gpus_per_replica": 0})
    with pytest.raises(BackendError, match="replica on Ray did not start"):
        make_backend(spec, "generate.teachers[0]")
    with pytest.raises(BackendError, match="need 2 GPUs; the Ray cluster has 0"):
        make_backend(ModelSpec(name="t", backend="vllm", model="m", ray={"replicas": 2}), "generate.teachers[0]")
