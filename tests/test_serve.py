"""`rdistill serve` speaks the OpenAI API, and its fault mode breaks answers the way real servers do."""

from __future__ import annotations

import json
from collections import Counter

import openai
import pytest

from helpers import served


def client(url: str, key: str = "none", timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=timeout)


def ask(api: openai.OpenAI, **fields):
    return api.chat.completions.create(
        model="canned", messages=[{"role": "user", "content": "What is 2 + 2?"}], **fields
    )


def test_canned_answers_list_the_model_honour_n_and_split_the_reasoning(monkeypatch):
    monkeypatch.setenv("SERVE_TEST_KEY", "k-123")
    with served("--canned-tokens", "16", "--api-key-env", "SERVE_TEST_KEY") as url:
        api = client(url, "k-123")
        assert [model.id for model in api.models.list().data] == ["canned"]
        answer = ask(api, n=3, max_tokens=64, temperature=0.7, top_p=0.9, seed=5, stop=["\n\n"])
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            api.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.AuthenticationError):
            ask(client(url, "wrong"))
    assert [choice.index for choice in answer.choices] == [0, 1, 2]
    assert answer.usage.completion_tokens == 3 * 16
    message = answer.choices[0].message
    assert message.content == "The answer is \\boxed{42}." and message.reasoning_content == " ".join(["step"] * 8)


def test_fault_mode_fails_each_way_a_server_can(tmp_path):
    shares = ["--fault-rate-limit", "0.15", "--fault-retry-after-s", "0.25", "--fault-server-error", "0.15",
              "--fault-hang", "0.15", "--fault-hang-s", "3",
              "--fault-malformed", "0.15", "--fault-disconnect", "0.15"]  # fmt: skip
    seen: Counter = Counter()
    with served("--canned-tokens", "8", *shares) as url:
        api = client(url, timeout=0.5)
        for _ in range(40):
            try:
                ask(api)
                seen["ok"] += 1
            except openai.RateLimitError as error:
                assert (
                    error.response.headers["retry-after-ms"] == "250" and error.response.headers["retry-after"] == "1"
                )
                seen["429"] += 1
            except openai.InternalServerError:
                seen["500"] += 1
            except openai.APITimeoutError:
                seen["hang"] += 1
            except json.JSONDecodeError:
                seen["malformed"] += 1
            except openai.APIConnectionError:
                seen["closed"] += 1
    assert set(seen) == {"ok", "429", "500", "hang", "malformed", "closed"}, seen


def test_serve_refuses_a_folder_without_a_model(tmp_path):
    from typer.testing import CliRunner

    from rdistill.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "is not a transformers model folder" in " ".join(result.output.split())
