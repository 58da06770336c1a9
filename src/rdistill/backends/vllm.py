"""The `vllm` backend: vLLM's offline engine on local GPUs (`pip install rdistill[vllm]`).

With `ray:` in its spec the engines run as Ray actors instead (`rdistill.backends.vllm_ray`).

vLLM is imported only when this backend is built, so rdistill installs and runs without it.
Its `LLM.chat` takes one sampling setting per conversation, which carries each request's seed,
and schedules the whole chunk itself; chunks of `batch_size` requests let results reach the
rollout file while the rest are generated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rdistill.backends.interface import Completion, Request, open_think, split_think
from rdistill.config import ModelSpec, SamplingParams
from rdistill.errors import RecipeError


def load_engine(model: str, where: str, engine_args: dict[str, Any]):
    """A `vllm.LLM` for `model`; a missing vllm is a user error naming the recipe key."""
    try:
        from vllm import LLM
    except ImportError as error:
        raise RecipeError(
            f"{where}.backend: 'vllm' needs vLLM and a GPU: pip install 'rdistill[vllm]' ({error})"
        ) from None
    return LLM(model=model, **engine_args)


def sampling_fields(params: SamplingParams, seed: int) -> dict[str, Any]:
    """Keyword arguments of vLLM's SamplingParams for one request (plain data: a Ray replica builds them)."""
    return {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "max_tokens": params.max_tokens,
        "seed": seed,
        "stop": params.stop or None,
    }


def vllm_sampling(params: SamplingParams, seed: int):
    """vLLM's SamplingParams for one request."""
    from vllm import SamplingParams as VLLMSamplingParams

    return VLLMSamplingParams(**sampling_fields(params, seed))


def output_fields(output: Any) -> dict[str, Any]:
    """What rdistill keeps of one vLLM RequestOutput (its first and only sample), as plain data."""
    sample = output.outputs[0]
    return {
        "text": sample.text,
        "finish_reason": sample.finish_reason,
        "prompt_tokens": len(output.prompt_token_ids or []),
        "completion_tokens": len(sample.token_ids),
    }


def completion_from_fields(request: Request, fields: dict[str, Any], latency: float) -> Completion:
    """A Completion from a sample's `output_fields`."""
    text = open_think(fields["text"])
    reasoning, response = split_think(text)
    reason = fields["finish_reason"] if fields["finish_reason"] in ("stop", "length") else "error"
    return Completion(
        request=request,
        text=text,
        reasoning=reasoning,
        response=response,
        finish_reason=reason,
        prompt_tokens=fields["prompt_tokens"],
        completion_tokens=fields["completion_tokens"],
        latency_s=round(latency, 6),
        error=None if reason != "error" else f"finish_reason {fields['finish_reason']}",
    )


class VLLMBackend:
    """A model on local GPUs through vLLM's offline engine, loaded once, fed in chunks of `batch_size`."""

    def __init__(self, spec: ModelSpec, where: str) -> None:
        if not spec.model:
            raise RecipeError(f"{where}.model: the vllm backend needs a model folder or hub name")
        self.engine = load_engine(spec.model, where, spec.engine_args)
        self.batch_size = spec.batch_size

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """Generate chunk by chunk, each request with its own seed, so reruns repeat it."""
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            started = time.perf_counter()
            outputs = self.engine.chat(
                [request.messages for request in chunk],
                sampling_params=[vllm_sampling(params, request.seed) for request in chunk],
                use_tqdm=False,
            )
            latency = (time.perf_counter() - started) / len(chunk)
            for request, output in zip(chunk, outputs, strict=False):
                on_result(completion_from_fields(request, output_fields(output), latency))

    def close(self) -> None:
        """Drop the engine so its GPU memory can be reclaimed."""
        del self.engine
