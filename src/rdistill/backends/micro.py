"""The `micro` backend: the micro-world's procedural teachers, answering instantly and offline."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rdistill.backends.interface import Completion, Request, join_think
from rdistill.config import ModelSpec, SamplingParams
from rdistill.errors import RecipeError
from rdistill.micro.teachers import TEACHERS, write_trace

# A procedural teacher's own generation limit, like a model's context: a runaway loop stops here
# (finish_reason 'length') even when the request allows more.
CONTEXT_WORDS = 400


def check_micro_teacher(name: str, where: str) -> None:
    """Fail, naming the recipe key, if `name` is no procedural teacher."""
    if name not in TEACHERS:
        raise RecipeError(f"{where}.name: unknown micro teacher {name!r} (known: {', '.join(TEACHERS)})")


class MicroBackend:
    """A procedural teacher: writes a trace from the problem's solution structure, ignoring sampling settings."""

    def __init__(self, spec: ModelSpec, where: str) -> None:
        check_micro_teacher(spec.name, where)
        self.style = TEACHERS[spec.name]

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """One trace per request, seeded by the request so that reruns reproduce it, cut at `max_tokens` words
        (or the teacher's own limit, CONTEXT_WORDS)."""
        for request in requests:
            started = time.perf_counter()
            limit = min(params.max_tokens, CONTEXT_WORDS)
            trace = write_trace(request.problem, self.style, request.seed, max_words=limit)
            text = join_think(trace.reasoning, trace.response) if trace.finished else f"<think>\n{trace.reasoning}"
            on_result(
                Completion(
                    request=request,
                    text=text,
                    reasoning=trace.reasoning,
                    response=trace.response,
                    finish_reason="stop" if trace.finished else "length",
                    # Procedural teachers have no tokenizer: whitespace-separated words stand in for tokens.
                    prompt_tokens=len(request.problem["prompt"].split()),
                    completion_tokens=len(trace.reasoning.split()) + len(trace.response.split()),
                    latency_s=round(time.perf_counter() - started, 6),
                )
            )

    def close(self) -> None:
        """Nothing to release."""
