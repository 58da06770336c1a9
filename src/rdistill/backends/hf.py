"""The `hf` backend: a local transformers model (or a converted GGUF file), batched generation, choice scoring."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rdistill.backends.interface import Completion, Request, split_think
from rdistill.config import ModelSpec, SamplingParams
from rdistill.errors import RecipeError
from rdistill.models import model_folder


def load_model(model_dir: Path):
    """Tokenizer and model from a local folder, in eval mode, on the GPU when there is one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return tokenizer, model


def generate_batch(
    tokenizer, model, conversations: list[list[dict[str, str]]], params: SamplingParams, seed: int
) -> list[dict[str, Any]]:
    """Complete each conversation once; returns text, finish_reason and token counts per item."""
    import torch

    prompts = [
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for messages in conversations
    ]
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    torch.manual_seed(seed)
    sampling = (
        {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        if params.temperature > 0
        else {"do_sample": False}
    )
    if params.stop:
        sampling.update(stop_strings=params.stop, tokenizer=tokenizer)
    with torch.no_grad():
        output = model.generate(
            **encoded,
            max_new_tokens=params.max_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
    new_tokens = output[:, encoded["input_ids"].shape[1] :]
    results = []
    for row, prompt_ids in zip(new_tokens.tolist(), encoded["attention_mask"].sum(dim=1).tolist(), strict=False):
        stopped = tokenizer.eos_token_id in row
        completion = (
            row[: row.index(tokenizer.eos_token_id)] if stopped else [t for t in row if t != tokenizer.pad_token_id]
        )
        text, hit_stop = cut_at_stop(tokenizer.decode(completion, skip_special_tokens=False), params.stop)
        results.append(
            {
                "text": text,
                "finish_reason": "stop" if stopped or hit_stop else "length",
                "prompt_tokens": int(prompt_ids),
                "completion_tokens": len(completion) + (1 if stopped else 0),
            }
        )
    return results


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
        """Generate batch by batch; each batch is seeded from the first request's seed, so reruns repeat it."""
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            started = time.perf_counter()
            outputs = generate_batch(
                self.tokenizer, self.model, [request.messages for request in batch], params, seed=batch[0].seed
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
