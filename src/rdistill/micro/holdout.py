"""The micro-world's held-out sets, drawn first and fixed like a real benchmark, and the test that keeps them held out.

The eval set (levels 1-4, a quarter each) and the generalisation set (levels 5 and 6, longer
chains than any pool holds) of each domain are world constants: every seed, base and pool meets
the same items. Every pool and base corpus excludes each held-out structure in any wording and
any prompt that the curation's MinHash test finds near a held-out prompt (`HeldOut.contains`).
"""

from __future__ import annotations

import functools
import random
from typing import Any

from rdistill.config import DedupOptions
from rdistill.micro.problems import EVAL_FACTS, FACTS, RENDERERS, STRUCTURES, structure_key, text_problem
from rdistill.similarity import NearDuplicateIndex

EVAL_LEVELS = (1, 2, 3, 4)
GENERALISATION_LEVELS = (5, 6)
EVAL_PER_LEVEL = 20
GENERALISATION_PER_LEVEL = 20
EVAL_MAX = EVAL_PER_LEVEL * len(EVAL_LEVELS)
GENERALISATION_MAX = GENERALISATION_PER_LEVEL * len(GENERALISATION_LEVELS)
HELD_OUT_SEED = "micro-held-out-v2"


def _round_robin(by_level: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Items taken one level after another, so that any first N items are stratified by level."""
    return [level[index] for index in range(max(map(len, by_level))) for level in by_level if index < len(level)]


def _fixed_set(domain: str, levels: tuple[int, ...], per_level: int, name: str) -> list[dict[str, Any]]:
    rng = random.Random(f"{HELD_OUT_SEED}-{name}-{domain}")
    seen: set[str] = set()
    by_level = []
    for level in levels:
        items: list[dict[str, Any]] = []
        while len(items) < per_level:
            problem = RENDERERS[domain](STRUCTURES[domain](level, rng), rng)
            key = structure_key(problem)
            if key not in seen:
                seen.add(key)
                items.append({**problem, "split": name})
        by_level.append(items)
    return _round_robin(by_level)


@functools.cache
def eval_set(domain: str) -> tuple[dict[str, Any], ...]:
    """The fixed eval items of `domain`: math and code stratified round-robin by level; text the 60 eval facts."""
    if domain == "text":
        return tuple({**text_problem(fact, 0), "split": "eval"} for fact in FACTS[:EVAL_FACTS])
    return tuple(_fixed_set(domain, EVAL_LEVELS, EVAL_PER_LEVEL, "eval"))


@functools.cache
def generalisation_set(domain: str) -> tuple[dict[str, Any], ...]:
    """The fixed generalisation items of `domain`: longer chains (levels 5 and 6) than any pool holds."""
    return tuple(_fixed_set(domain, GENERALISATION_LEVELS, GENERALISATION_PER_LEVEL, "generalisation"))


class HeldOut:
    """Every held-out item of the in-domain sets: their structures, and their prompts for the near-duplicate test."""

    def __init__(self) -> None:
        items = [item for domain in STRUCTURES for item in (*eval_set(domain), *generalisation_set(domain))]
        self.structures = {structure_key(item) for item in items}
        self.prompts = [item["prompt"] for item in items]
        self.index = NearDuplicateIndex(self.prompts, DedupOptions())

    def contains(self, problem: dict[str, Any]) -> bool:
        """Whether a problem is held out: the same structure as a held-out item, or a near-duplicate prompt."""
        return self.overlaps([problem])[0]

    def overlaps(self, problems: list[dict[str, Any]]) -> list[bool]:
        """`contains` for many problems at once (one MinHash pass)."""
        near = self.index.matches([problem["prompt"] for problem in problems])
        return [structure_key(p) in self.structures or hit is not None for p, hit in zip(problems, near, strict=True)]


@functools.cache
def held_out() -> HeldOut:
    """The world's held-out items (built once per process: a few hundred prompts)."""
    return HeldOut()
