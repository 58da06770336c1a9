"""The `micro` backend: the micro-world's procedural teachers, answering instantly and offline."""

from __future__ import annotations

import time
from typing import Any

from rdistill.errors import RecipeError
from rdistill.micro.teachers import TEACHERS, write_trace


def check_teacher(name: str, where: str) -> None:
    """Fail early, naming the recipe key, if `name` is no micro teacher."""
    if name not in TEACHERS:
        raise RecipeError(f"{where}: unknown micro teacher {name!r} (known: {', '.join(TEACHERS)})")


def generate(teacher: str, requests: list[tuple[dict[str, Any], int, int]]) -> list[dict[str, Any]]:
    """Rollouts of `teacher` for (problem, sample_index, seed) requests, in the rollout schema."""
    style = TEACHERS[teacher]
    rollouts = []
    for problem, sample_index, seed in requests:
        started = time.perf_counter()
        reasoning, response = write_trace(problem, style, seed)
        rollouts.append(
            {
                "problem_id": problem["id"],
                "teacher": teacher,
                "sample_index": sample_index,
                "seed": seed,
                "messages": [{"role": "user", "content": problem["prompt"]}],
                "reasoning": reasoning,
                "response": response,
                "finish_reason": "stop",
                # Procedural teachers have no tokenizer: whitespace-separated words stand in for tokens.
                "prompt_tokens": len(problem["prompt"].split()),
                "completion_tokens": len(reasoning.split()) + len(response.split()),
                "latency_s": round(time.perf_counter() - started, 6),
                "error": None,
            }
        )
    return rollouts
