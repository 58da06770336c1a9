"""The `hf` backend: a local transformers model (or a converted GGUF file), decoded in batches that shrink as
their rows finish, and choices scored by their log-likelihood.

Why a decoding loop of its own rather than `model.generate`: `generate` keeps every row of a batch in
the forward pass until the longest one ends, so one long answer makes a batch of short ones cost as
much as a batch of long ones, and it samples the whole batch from one random stream, so a row's text
depends on which rows share its batch. Here a row leaves the batch, and its slice of the KV cache, the
step it finishes; each row samples from its own generator, seeded by its request, so a completion does
not depend on the batch it lands in (up to the float rounding of padded attention) and a resumed run
draws what an uninterrupted one would. Prompts are batched in order of length so that left padding
stays short. Sampling is what `SamplingParams` says (temperature, top-p, stop strings); the model's own
`generation_config` contributes only its end-of-sequence tokens.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdistill.backends.interface import Completion, Request, split_think
from rdistill.config import ModelSpec, SamplingParams
from rdistill.errors import RecipeError
from rdistill.models import model_folder


def set_threads() -> None:
    """Use every core this process may run on, unless the user chose a number (OMP_NUM_THREADS).

    torch's default counts the machine's physical cores, which on a container or a SLURM slice
    can be more or fewer than the cores the process is allowed to use.
    """
    import torch

    if "OMP_NUM_THREADS" not in os.environ and hasattr(os, "sched_getaffinity"):
        torch.set_num_threads(len(os.sched_getaffinity(0)))


def load_model(model_dir: Path):
    """Tokenizer and model from a local folder, in eval mode, on the GPU when there is one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    set_threads()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return tokenizer, model


def end_token_ids(tokenizer, model) -> set[int]:
    """Tokens that end a completion, as `generate` takes them: the generation config's EOS (one or a list,
    as Llama 3's end of turn and end of text), else the tokenizer's."""
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    return set(configured) if isinstance(configured, list) else {configured}


def prompt_texts(tokenizer, conversations: Sequence[list[dict[str, str]]]) -> list[str]:
    """Each conversation rendered by the model's chat template, ending with the assistant's turn opened."""
    return [
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for messages in conversations
    ]


@dataclass
class Row:
    """One completion being decoded: its generator, the tokens drawn so far and why it ended."""

    generator: Any
    prompt_tokens: int
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    ended_by_eos: bool = False

    def result(self, tokenizer, params: SamplingParams) -> dict[str, Any]:
        """Text (without its EOS or stop string), finish_reason and token counts, as rollouts record them."""
        kept = self.tokens[:-1] if self.ended_by_eos else self.tokens
        text, _ = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=False), params.stop)
        return {
            "text": text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": len(self.tokens),
        }


def next_tokens(logits, rows: list[Row], params: SamplingParams):
    """One token per row: the argmax when greedy, else a draw from each row's own generator."""
    import torch

    if params.temperature == 0:
        return logits.argmax(dim=-1)
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    scores = TemperatureLogitsWarper(params.temperature)(None, logits.float())
    if params.top_p < 1:
        scores = TopPLogitsWarper(params.top_p)(None, scores)
    probabilities = torch.softmax(scores, dim=-1)
    return torch.cat([torch.multinomial(probabilities[i], 1, generator=row.generator) for i, row in enumerate(rows)])


def finished(row: Row, token: int, ends: set[int], tokenizer, params: SamplingParams) -> bool:
    """Append `token` to the row; True when it ended the completion (EOS, a stop string, the token limit)."""
    row.tokens.append(token)
    row.ended_by_eos = token in ends
    if row.ended_by_eos or (
        params.stop and cut_at_stop(tokenizer.decode(row.tokens, skip_special_tokens=False), params.stop)[1]
    ):
        row.finish_reason = "stop"
    elif len(row.tokens) >= params.max_tokens:
        row.finish_reason = "length"
    return row.finish_reason is not None


def generate_batch(
    tokenizer, model, conversations: list[list[dict[str, str]]], params: SamplingParams, seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Complete each conversation once (row i seeded by `seeds[i]`); text, finish_reason and token counts."""
    import torch

    encoded = tokenizer(
        prompt_texts(tokenizer, conversations), return_tensors="pt", padding=True, add_special_tokens=False
    ).to(model.device)
    mask = encoded["attention_mask"]
    rows = [
        Row(torch.Generator(device=model.device).manual_seed(seed), int(length))
        for seed, length in zip(seeds, mask.sum(dim=1).tolist(), strict=True)
    ]
    ends = end_token_ids(tokenizer, model)
    active = list(range(len(rows)))
    with torch.no_grad():
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        output = model(input_ids=encoded["input_ids"], attention_mask=mask, position_ids=positions, use_cache=True)
        cache = output.cache
        while active:
            drawn = next_tokens(output.logits[:, -1, :], [rows[i] for i in active], params)
            done = [
                finished(rows[i], token, ends, tokenizer, params)
                for i, token in zip(active, drawn.tolist(), strict=True)
            ]
            keep = torch.tensor([place for place, ended in enumerate(done) if not ended], device=model.device)
            if len(keep) < len(active):
                active = [active[place] for place in keep.tolist()]
                if not active:
                    break
                cache.batch_select_indices(keep)
                mask, drawn = mask[keep], drawn[keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            output = model(
                input_ids=drawn[:, None],
                attention_mask=mask,
                position_ids=mask.sum(dim=1, keepdim=True) - 1,
                cache=cache,
                use_cache=True,
            )
    return [row.result(tokenizer, params) for row in rows]


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) as lm-evaluation-harness cuts them, so that scores compare with its own.

    Trailing spaces of the context move to the continuation, and the pair is encoded whole and
    split at the context's length, so that " A" is the token a model writes after "Answer:".
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    context_ids = tokenizer(context)["input_ids"]
    return context_ids, whole[len(context_ids) :]


def loglikelihoods(tokenizer, model, pairs: Sequence[tuple[str, str]], batch_size: int) -> list[tuple[float, bool]]:
    """(summed log-probability, whether it is the greedy continuation) of each continuation after its context.

    One forward pass per distinct input: the choices " A", " B", ... of a question are one token
    each after the same context, so they share a pass. Inputs are left-padded with position ids
    from the attention mask, and only the last positions' logits are computed.
    """
    import torch

    limit = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
    encoded = []
    for context, continuation in pairs:
        context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
        encoded.append((tuple((context_ids + continuation_ids)[-(limit + 1) : -1]), continuation_ids))
    inputs = sorted({ids for ids, _ in encoded}, key=len, reverse=True)
    keep = max(len(continuation) for _, continuation in encoded)
    log_probs: dict[tuple[int, ...], Any] = {}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        width = len(batch[0])
        ids = torch.tensor([[pad] * (width - len(row)) + list(row) for row in batch], device=model.device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in batch], device=model.device)
        with torch.no_grad():
            logits = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                logits_to_keep=keep,
            ).logits
        for row, scores in zip(batch, torch.log_softmax(logits.float(), dim=-1), strict=True):
            log_probs[row] = scores
    results = []
    for ids, continuation in encoded:
        scores = log_probs[ids][-len(continuation) :]  # the last positions, right-aligned by the left padding
        target = torch.tensor(continuation, device=scores.device)
        chosen = scores.gather(1, target[:, None]).squeeze(1)
        results.append((float(chosen.sum()), bool((scores.argmax(dim=-1) == target).all())))
    return results


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """`text` up to its first stop string (excluded, as OpenAI servers do) and whether one was found."""
    cuts = [text.index(string) for string in stop if string in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def by_prompt_length(tokenizer, requests: Sequence[Request]) -> list[Request]:
    """Requests from the shortest prompt to the longest, so that a batch pads its prompts little."""
    lengths = [len(ids) for ids in tokenizer(prompt_texts(tokenizer, [r.messages for r in requests]))["input_ids"]]
    return [request for _, _, request in sorted(zip(lengths, range(len(requests)), requests, strict=True))]


class HFBackend:
    """A local transformers checkpoint, loaded once and run in batches of `batch_size` prompts."""

    def __init__(self, spec: ModelSpec, where: str) -> None:
        if not spec.model:
            raise RecipeError(f"{where}.model: the hf backend needs a local model folder or .gguf file")
        self.tokenizer, self.model = load_model(model_folder(spec.model, f"{where}.model"))
        self.batch_size = spec.batch_size

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """Generate in batches of prompts of similar length; each completion is seeded by its own request."""
        ordered = by_prompt_length(self.tokenizer, requests)
        for start in range(0, len(ordered), self.batch_size):
            batch = ordered[start : start + self.batch_size]
            started = time.perf_counter()
            outputs = generate_batch(
                self.tokenizer,
                self.model,
                [request.messages for request in batch],
                params,
                [request.seed for request in batch],
            )
            latency = round((time.perf_counter() - started) / len(batch), 6)
            for request, output in zip(batch, outputs, strict=False):
                reasoning, response = split_think(output["text"])
                on_result(
                    Completion(request=request, reasoning=reasoning, response=response, latency_s=latency, **output)
                )

    def loglikelihoods(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """(log-probability, greedy) of each (context, continuation) pair, `batch_size` inputs a forward pass."""
        return loglikelihoods(self.tokenizer, self.model, pairs, self.batch_size)

    def close(self) -> None:
        """Drop the model so its memory can be reclaimed."""
        del self.model
