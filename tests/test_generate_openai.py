"""The `openai` backend against real servers on 127.0.0.1: faults, kills, refusals and secrets."""

from __future__ import annotations

import email.utils
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx2
import pytest

from helpers import QUIET, fast_retries, generation_recipe, openai_teacher, rdistill, served, start_server, write_recipe
from rdistill.backends import Request
from rdistill.backends.openai import backoff_s, completion_tokens_share, request_groups, retry_after, split_reasoning
from rdistill.config import GenerateOptions, ProblemsOptions, RetryOptions
from rdistill.errors import BackendError
from rdistill.generate import generation_fingerprint
from rdistill.generate import run as generate
from rdistill.problems import run as make_problems

FAULTS_20_PERCENT = [
    "--fault-rate-limit", "0.04", "--fault-retry-after-s", "0.05",
    "--fault-server-error", "0.04",
    "--fault-hang", "0.04", "--fault-hang-s", "30",
    "--fault-malformed", "0.04",
    "--fault-disconnect", "0.04",
]  # fmt: skip


def rollouts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def keys(rows: list[dict]) -> Counter:
    return Counter((row["problem_id"], row["sample_index"]) for row in rows)


def wait_for_rows(path: Path, count: int) -> None:
    """Block until `path` holds `count` rollouts (complete lines: the writer may be halfway through the next)."""
    while not path.exists() or path.read_text().count("\n") < count:
        time.sleep(0.01)


def pool(run_dir: Path, math: int, code: int) -> None:
    make_problems(
        ProblemsOptions.model_validate(
            {"micro": {"math": math, "code": code, "eval_per_domain": 4, "difficulties": [1, 2, 3, 4]}}
        ),
        run_dir,
        QUIET,
    )


def test_2000_requests_through_20_percent_faults_give_2000_rollouts_once_each(tmp_path):
    run_dir = tmp_path / "run"
    pool(run_dir, math=500, code=500)
    with served("--canned-tokens", "24", *FAULTS_20_PERCENT) as url:
        teacher = openai_teacher("faulty", [url], timeout_s=3.0, concurrency=64)
        entry = generate(
            GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 2}), run_dir, QUIET
        )
        faults = httpx2.get(url.removesuffix("/v1") + "/rdistill/faults").json()
    rows = rollouts(run_dir / "rollouts" / "faulty.jsonl")
    assert entry["counts"]["faulty"] == 2000
    assert entry["counts"]["sampling_check"]["faulty"]["ignores_sampling"], "canned replies are one text for every seed"
    assert len(rows) == 2000 and max(keys(rows).values()) == 1
    assert {row["finish_reason"] for row in rows} == {"stop"}, "every fault was retried until it succeeded"
    retries = sum(row["retries"] for row in rows)
    # What the server injected does not depend on the machine's speed; the client's retries also
    # include answers that came after its 3 s timeout on a loaded machine, so they are bounded below.
    injected = sum(faults["injected"].values())
    assert 300 < injected < 800, f"about a quarter of the requests met a fault, not {injected}"
    assert retries >= injected, "every injected fault was retried"
    assert retries >= faults["attempts"] - 2000, "every attempt past the first of a request counts as a retry"
    assert all(row["reasoning"].startswith("step") and row["response"] == "The answer is \\boxed{42}." for row in rows)
    assert all(row["completion_tokens"] == 24 and row["latency_s"] > 0 for row in rows)


def test_a_request_that_spends_its_retries_becomes_an_error_rollout(tmp_path):
    run_dir = tmp_path / "run"
    pool(run_dir, math=6, code=4)
    with served("--canned-tokens", "8", "--fault-server-error", "1.0") as url:
        teacher = openai_teacher("broken", [url], retry={"max_retries": 2, "backoff_s": 0.01, "backoff_max_s": 0.02})
        generate(GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 1}), run_dir, QUIET)
    rows = rollouts(run_dir / "rollouts" / "broken.jsonl")
    assert len(rows) == 10
    assert all(row["finish_reason"] == "error" and row["retries"] == 2 for row in rows)
    assert all("gave up after 2 retries: HTTP 500" in row["error"] for row in rows)


def test_a_run_that_spends_its_retry_budget_stops_with_a_clear_error(tmp_path):
    run_dir = tmp_path / "run"
    pool(run_dir, math=60, code=40)
    with served("--canned-tokens", "8", "--fault-server-error", "0.9") as url:
        teacher = openai_teacher(
            "flaky",
            [url],
            concurrency=8,
            retry={"max_retries": 50, "run_retry_share": 0.1, "backoff_s": 0.001, "backoff_max_s": 0.002},
        )
        with pytest.raises(
            BackendError,
            match=r"generate.teachers\[0\].retry.run_retry_share: the run's retry budget is spent; .*HTTP 500",
        ):
            generate(GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 2}), run_dir, QUIET)
    rows = rollouts(run_dir / "rollouts" / "flaky.jsonl")
    assert len(rows) < 200 and max(keys(rows).values(), default=1) == 1
    assert sum(row["retries"] for row in rows) <= 100, "at most MIN_RUN_RETRIES (100) retries in all"


def test_a_failing_endpoint_leaves_the_rotation_and_the_others_carry_the_load(tmp_path):
    run_dir = tmp_path / "run"
    pool(run_dir, math=60, code=40)
    with served("--canned-tokens", "8") as good, served("--canned-tokens", "8", "--fault-server-error", "1.0") as bad:
        teacher = openai_teacher(
            "spread",
            [good, bad],
            concurrency=8,
            retry={"endpoint_cooldown_s": 60, "backoff_s": 0.01, "backoff_max_s": 0.02},
        )
        generate(GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 2}), run_dir, QUIET)
    rows = rollouts(run_dir / "rollouts" / "spread.jsonl")
    assert len(rows) == 200 and {row["finish_reason"] for row in rows} == {"stop"}
    assert sum(row["retries"] for row in rows) <= 8 * 3, (
        "after 3 failures in a row the bad endpoint gets no more requests"
    )


def test_samples_go_out_with_n_and_one_by_one_when_the_server_ignores_n(tmp_path):
    for flags, one_answer_per_problem in (([], True), (["--fault-ignore-n"], False)):
        run_dir = tmp_path / f"run{len(flags)}"
        pool(run_dir, math=5, code=5)
        with served("--canned-tokens", "8", *flags) as url:
            teacher = openai_teacher("n4", [url], samples_per_request=4)
            generate(GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 4}), run_dir, QUIET)
        rows = rollouts(run_dir / "rollouts" / "n4.jsonl")
        assert len(rows) == 40 and max(keys(rows).values()) == 1
        assert {row["completion_tokens"] for row in rows} == {8}
        latencies = {
            problem: {row["latency_s"] for row in rows if row["problem_id"] == problem} for problem, _ in keys(rows)
        }
        assert all((len(found) == 1) == one_answer_per_problem for found in latencies.values()), (
            "the samples of a problem share one answer when n works"
        )


@pytest.mark.slow
def test_generation_killed_at_five_random_moments_ends_with_one_rollout_per_key(tmp_path):
    run_dir = tmp_path / "run"
    with served(
        "--canned-tokens",
        "16",
        "--canned-delay-s",
        "0.01",
        "--fault-server-error",
        "0.05",
        "--fault-rate-limit",
        "0.05",
        "--fault-retry-after-s",
        "0.01",
    ) as url:
        recipe = generation_recipe(
            run_dir, [openai_teacher("killed", [url], concurrency=16)], math=100, code=100, samples=2
        )
        recipe_path = write_recipe(tmp_path / "recipe.yaml", recipe)
        pool(run_dir, math=100, code=100)
        rng = random.Random(7)
        command = [sys.executable, "-m", "rdistill", "generate", "--recipe", str(recipe_path)]
        path = run_dir / "rollouts" / "killed.jsonl"
        for _ in range(5):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            before = len(rollouts(path))
            deadline = time.time() + 30
            # Kill once some new rollouts are written, at a random moment after that.
            while time.time() < deadline and len(rollouts(path)) <= before and process.poll() is None:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            process.send_signal(signal.SIGKILL)
            process.wait()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["stages"]["generate"]["status"] == "running", "the kills must land mid-stage to mean anything"
        code, said = rdistill("generate", "--recipe", str(recipe_path))
        assert code == 0, said
    rows = rollouts(path)
    assert len(rows) == 400 and max(keys(rows).values()) == 1


def test_an_unreachable_endpoint_stops_with_exit_2_and_keeps_what_was_written(tmp_path):
    run_dir = tmp_path / "run"
    pool(run_dir, math=30, code=20)
    with served("--canned-tokens", "8") as url:
        teachers = [openai_teacher("first", [url]), openai_teacher("second", ["http://127.0.0.1:9/v1"])]
        code, said = rdistill(
            "generate", "--recipe", str(write_recipe(tmp_path / "recipe.yaml", generation_recipe(run_dir, teachers)))
        )
    assert code == 2
    assert (
        "generate.teachers[1].base_urls: no endpoint reachable (http://127.0.0.1:9/v1" in said
        and "Traceback" not in said
    )
    assert len(rollouts(run_dir / "rollouts" / "first.jsonl")) == 100


def test_a_server_that_goes_away_mid_run_stops_with_a_clear_error_and_keeps_what_was_written(tmp_path):
    run_dir = tmp_path / "run"
    pool(run_dir, math=200, code=200)
    path = run_dir / "rollouts" / "vanishing.jsonl"
    server, url = start_server("--canned-tokens", "8", "--canned-delay-s", "0.02")
    stopper = threading.Thread(target=lambda: (wait_for_rows(path, 50), server.kill()))
    stopper.start()
    teacher = openai_teacher(
        "vanishing", [url], concurrency=4, retry=fast_retries(unreachable_after_s=0.5, max_retries=50)
    )
    try:
        with pytest.raises(
            BackendError, match=r"generate.teachers\[0\].base_urls: no endpoint could be reached for"
        ) as raised:
            generate(GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 2}), run_dir, QUIET)
    finally:
        server.kill()
        stopper.join()
    rows = rollouts(path)
    assert url in str(raised.value)
    assert 50 <= len(rows) < 800 and max(keys(rows).values()) == 1


def test_a_refused_key_stops_with_exit_2_naming_endpoint_and_model_and_no_file_holds_the_key(tmp_path, monkeypatch):
    secret = "sk-rdistill-test-" + "7f3a9c" * 4
    monkeypatch.setenv("SERVER_KEY", secret)
    monkeypatch.setenv("TEACHER_KEY", secret)
    run_dir = tmp_path / "run"
    pool(run_dir, math=100, code=100)
    recipe_path = tmp_path / "recipe.yaml"
    outputs = []
    with served("--canned-tokens", "8", "--api-key-env", "SERVER_KEY", "--fault-revoke-after", "150") as url:
        write_recipe(
            recipe_path,
            generation_recipe(
                run_dir, [openai_teacher("keyed", [url], api_key_env="TEACHER_KEY", concurrency=8)], math=100, code=100
            ),
        )
        code, said = rdistill("generate", "--recipe", str(recipe_path))
        outputs.append(said)
    assert code == 2
    assert f"generate.teachers[0]: {url} answered HTTP 401 to a chat completion for model 'canned'" in said
    written = rollouts(run_dir / "rollouts" / "keyed.jsonl")
    # The server admits requests until 150 have completed; up to `concurrency` - 1 admitted ones
    # may still complete after that, and up to `concurrency` answers may be in flight when the 401 stops the run.
    concurrency = 8
    assert 150 - concurrency <= len(written) <= 150 + concurrency - 1 and max(keys(written).values()) == 1, (
        "answers received before the 401 are kept"
    )

    with served("--canned-tokens", "8", "--api-key-env", "SERVER_KEY") as url:
        write_recipe(
            recipe_path,
            generation_recipe(
                run_dir, [openai_teacher("keyed", [url], api_key_env="TEACHER_KEY", concurrency=8)], math=100, code=100
            ),
        )
        code, said = rdistill("generate", "--recipe", str(recipe_path), env={"TEACHER_KEY": secret + "x"})
        outputs.append(said)
        assert code == 2 and f"{url} answered HTTP 401 listing models" in said
        code, said = rdistill("generate", "--recipe", str(recipe_path))
        outputs.append(said)
    assert code == 0, said
    rows = rollouts(run_dir / "rollouts" / "keyed.jsonl")
    assert len(rows) == 400 and max(keys(rows).values()) == 1, "a new endpoint resumes the run instead of restarting it"
    assert not any(secret in said for said in outputs)
    for file in run_dir.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"{file} holds the API key"


def test_the_openai_backend_against_rdistill_serve_over_the_micro_student(tiny_recipe, tmp_path):
    from rdistill.base import ensure_micro_base

    model_dir = ensure_micro_base(tiny_recipe.base.micro)
    run_dir = tmp_path / "run"
    pool(run_dir, math=8, code=4)
    with served(str(model_dir), "--model-name", "student", "--batch-size", "16") as url:
        teacher = openai_teacher("student", [url], model="student", samples_per_request=2, timeout_s=60)
        sampling = {"temperature": 0.8, "max_tokens": 24, "stop": ["\\boxed"]}
        generate(
            GenerateOptions.model_validate({"teachers": [teacher], "samples_per_problem": 2, "sampling": sampling}),
            run_dir,
            QUIET,
        )
    rows = rollouts(run_dir / "rollouts" / "student.jsonl")
    assert len(rows) == 24 and max(keys(rows).values()) == 1
    assert {row["finish_reason"] for row in rows} <= {"stop", "length"}
    assert all(row["prompt_tokens"] > 0 and 0 <= row["completion_tokens"] <= 24 * 2 for row in rows)
    assert all("\\boxed" not in row["response"] for row in rows), "the stop string ends the completion"


@pytest.mark.parametrize(
    "message",
    [
        {"content": "The answer is 4.", "reasoning_content": "add 2 and 2"},
        {"content": "The answer is 4.", "reasoning": "add 2 and 2"},
        {"content": "<think>\nadd 2 and 2\n</think>\nThe answer is 4."},
        {"content": "add 2 and 2\n</think>\nThe answer is 4."},
    ],
    ids=["reasoning_content", "reasoning", "think tags", "think opened by the template"],
)
def test_reasoning_is_captured_from_each_place_servers_put_it(message):
    from openai.types.chat import ChatCompletionMessage

    text, reasoning, response = split_reasoning(ChatCompletionMessage.model_validate({"role": "assistant", **message}))
    assert (reasoning, response) == ("add 2 and 2", "The answer is 4.")
    assert text == "<think>\nadd 2 and 2\n</think>\nThe answer is 4."


def test_backoff_doubles_with_jitter_and_never_undercuts_retry_after():

    options = RetryOptions(backoff_s=1.0, backoff_max_s=8.0)
    assert all(0.5 <= backoff_s(options, 1, None) <= 1.0 for _ in range(50))
    assert all(4.0 <= backoff_s(options, 5, None) <= 8.0 for _ in range(50)), "capped at backoff_max_s"
    assert backoff_s(options, 1, 30.0) == 30.0, "a server's Retry-After wins, even past the cap"
    assert retry_after(httpx2.Headers({"retry-after-ms": "250", "retry-after": "1"})) == 0.25
    assert retry_after(httpx2.Headers({"retry-after": "3"})) == 3.0
    assert (
        50 < retry_after(httpx2.Headers({"retry-after": email.utils.formatdate(time.time() + 60, usegmt=True)})) <= 60
    )
    assert retry_after(httpx2.Headers({})) is None


def test_samples_of_a_problem_are_grouped_for_n_and_tokens_shared_by_length():
    requests = [
        Request({"id": problem}, sample, sample, [{"role": "user", "content": problem}])
        for problem in "ab"
        for sample in range(5)
    ]
    groups = [[(r.problem["id"], r.sample_index) for r in group.requests] for group in request_groups(requests, 2)]
    assert groups == [
        [("a", 0), ("a", 1)],
        [("a", 2), ("a", 3)],
        [("a", 4)],
        [("b", 0), ("b", 1)],
        [("b", 2), ("b", 3)],
        [("b", 4)],
    ]
    assert [completion_tokens_share(90, ["x" * 10, "x" * 20], index) for index in (0, 1)] == [30, 60]
    assert completion_tokens_share(7, ["anything"], 0) == 7


def test_transport_settings_do_not_change_the_stage_fingerprint():
    base = {"name": "t", "backend": "openai", "base_urls": ["http://a/v1"]}
    before = GenerateOptions.model_validate({"teachers": [base]})
    moved = GenerateOptions.model_validate(
        {
            "teachers": [
                {**base, "base_urls": ["http://b/v1", "http://c/v1"], "concurrency": 512, "retry": {"max_retries": 1}}
            ]
        }
    )
    resampled = GenerateOptions.model_validate({"teachers": [{**base, "sampling": {"temperature": 1.0}}]})
    assert generation_fingerprint(before) == generation_fingerprint(moved)
    assert generation_fingerprint(before) != generation_fingerprint(resampled)
