"""The `hf` backend's decoding loop: what `model.generate` would give, rows that leave the batch as they end,
and completions that do not depend on the batch they land in."""

from __future__ import annotations

import pytest
import torch

from helpers import micro_student
from rdistill.backends.hf import HFBackend, generate_batch, load_model
from rdistill.backends.interface import Request
from rdistill.config import ModelSpec, SamplingParams

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)
HOT = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=12)
CONVERSATIONS = [
    [{"role": "user", "content": "1 + 1"}],
    [{"role": "user", "content": "What is 12 * 7 - 3 + 2 * 9?"}],
    [{"role": "user", "content": "def f(x): return x"}],
]


@pytest.fixture
def loaded(tmp_path_factory):
    """The micro student with weights wide enough to write varied tokens, and an end token outside its
    vocabulary: every row runs to the limit (a freshly initialised model repeats one token)."""
    tokenizer, model = load_model(micro_student(tmp_path_factory.mktemp("hf") / "student"))
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    model.generation_config.eos_token_id = model.config.vocab_size + 1
    return tokenizer, model


def generate_alone(tokenizer, model, messages: list[dict[str, str]], max_tokens: int) -> list[int]:
    """Greedy new tokens of `model.generate` for one prompt (no padding), cut after the first EOS."""
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**encoded, max_new_tokens=max_tokens, do_sample=False)
    return output[0, encoded["input_ids"].shape[1] :].tolist()


def test_greedy_batches_of_unequal_prompts_give_what_generate_gives_each_prompt_alone(loaded):
    tokenizer, model = loaded
    batch = generate_batch(tokenizer, model, CONVERSATIONS, GREEDY, seeds=[0, 1, 2])
    for messages, result in zip(CONVERSATIONS, batch, strict=True):
        alone = generate_alone(tokenizer, model, messages, GREEDY.max_tokens)
        assert result["text"] == tokenizer.decode(alone, skip_special_tokens=False)
        assert result["finish_reason"] == "length" and result["completion_tokens"] == GREEDY.max_tokens


def ended_at(tokens: list[int], end: int) -> list[int]:
    """`tokens` up to and with the first `end`."""
    return tokens[: tokens.index(end) + 1] if end in tokens else tokens


def test_rows_that_end_leave_the_batch_and_the_others_continue_unchanged(loaded):
    tokenizer, model = loaded
    alone = [generate_alone(tokenizer, model, messages, GREEDY.max_tokens) for messages in CONVERSATIONS]
    # an end token that ends the rows at different steps: some leave while others go on
    end = next(t for t in alone[0][1:] if len({len(ended_at(tokens, t)) for tokens in alone}) > 1)
    lengths = [len(ended_at(tokens, end)) for tokens in alone]
    model.generation_config.eos_token_id = end
    batch_sizes: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda _, args, kwargs: batch_sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        batch = generate_batch(tokenizer, model, CONVERSATIONS, GREEDY, seeds=[0, 1, 2])
    finally:
        hook.remove()
    assert batch_sizes == [sum(length > step for length in lengths) for step in range(max(lengths))]
    for tokens, result in zip(alone, batch, strict=True):
        kept = ended_at(tokens, end)
        assert result["completion_tokens"] == len(kept)
        assert result["finish_reason"] == ("stop" if end in kept else "length")
        assert result["text"] == tokenizer.decode([t for t in kept if t != end], skip_special_tokens=False)


def test_a_sampled_completion_is_the_same_alone_and_in_a_batch(loaded):
    tokenizer, model = loaded
    together = generate_batch(tokenizer, model, CONVERSATIONS, HOT, seeds=[5, 6, 7])
    alone = [
        generate_batch(tokenizer, model, [m], HOT, seeds=[seed])[0]
        for m, seed in zip(CONVERSATIONS, [5, 6, 7], strict=True)
    ]
    assert [r["text"] for r in together] == [r["text"] for r in alone]
    reseeded = generate_batch(tokenizer, model, CONVERSATIONS, HOT, seeds=[8, 9, 10])
    assert [r["text"] for r in reseeded] != [r["text"] for r in together]


def test_a_stop_string_ends_the_row_and_is_cut_from_its_text(loaded):
    tokenizer, model = loaded
    full = generate_batch(tokenizer, model, CONVERSATIONS[:1], GREEDY, seeds=[0])[0]["text"]
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    cut = generate_batch(
        tokenizer, model, CONVERSATIONS[:1], SamplingParams(temperature=0.0, max_tokens=12, stop=[stop]), seeds=[0]
    )[0]
    assert cut["finish_reason"] == "stop" and cut["text"] == full[: full.index(stop)]
    assert cut["completion_tokens"] < GREEDY.max_tokens


def test_the_backend_answers_every_request_once_whatever_the_order_of_prompt_lengths(tmp_path):
    backend = HFBackend(ModelSpec(name="s", backend="hf", model=str(micro_student(tmp_path / "s")), batch_size=2), "t")
    requests = [Request({"id": f"p{i}"}, 0, seed=i, messages=CONVERSATIONS[i % 3]) for i in range(7)]
    seen: list[str] = []
    backend.generate(requests, GREEDY, lambda completion: seen.append(completion.request.problem["id"]))
    assert sorted(seen) == sorted(f"p{i}" for i in range(7))
