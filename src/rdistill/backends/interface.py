"""The interface every generation backend implements, for teachers and students alike.

A backend turns chat requests into completions. `generate` (teacher rollouts) and `evaluate`
(student answers) both drive backends through this interface, so a model behind a vLLM server,
a local transformers checkpoint and a procedural micro-world teacher are interchangeable.
Results are handed back one by one through a callback as they finish, so that a caller can
append them to disk at once and lose nothing when the run is killed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rdistill.config import SamplingParams

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Request:
    """One completion to produce: `(problem['id'], sample_index)` identifies it in output files."""

    problem: dict[str, Any]
    sample_index: int
    seed: int
    messages: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Completion:
    """What a backend returns for one request (the rollout schema's generation fields)."""

    request: Request
    text: str
    reasoning: str | None
    response: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    error: str | None = None
    retries: int = 0

    @property
    def closed_think(self) -> bool:
        """Whether the output opened and closed a think block (the Valley paper's format measure)."""
        return think_closed(self.text)


class Backend(Protocol):
    """Anything that completes chat requests."""

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """Complete every request, calling `on_result` once per request as each finishes (any order)."""

    def close(self) -> None:
        """Release models, connections or servers the backend holds."""


def think_closed(text: str) -> bool:
    """True when `text` opens a think block and closes it afterwards."""
    return THINK_OPEN in text and THINK_CLOSE in text.split(THINK_OPEN, 1)[1]


def split_think(text: str) -> tuple[str | None, str]:
    """(reasoning, response) of a raw completion.

    The reasoning is what stands between `<think>` and the last `</think>`; a think block that
    never closes (a completion cut by the token limit) is all reasoning and no response. Text
    without a think block is all response.
    """
    if THINK_OPEN not in text:
        return None, text.strip()
    before, after = text.split(THINK_OPEN, 1)
    if THINK_CLOSE not in after:
        return after.strip(), ""
    reasoning, response = after.rsplit(THINK_CLOSE, 1)
    return reasoning.strip(), (before + response).strip()


def open_think(text: str) -> str:
    """`text` with `<think>` restored where a chat template put it in the prompt (only `</think>` was generated)."""
    if THINK_CLOSE not in text or THINK_OPEN in text:
        return text
    return THINK_OPEN + ("" if text.startswith("\n") else "\n") + text


def join_think(reasoning: str | None, response: str) -> str:
    """The raw text of a completion whose reasoning arrived separately (e.g. `reasoning_content`)."""
    if reasoning is None:
        return response
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n{response}"
