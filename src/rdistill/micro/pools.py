"""Training pools of the micro-world with the shape of real ones: mostly easy, redundant, several routes per problem.

A pool draws distinct structures level by level (`difficulty_weights`, most of them easy), none
held out. Easy levels hold few structures, so a pool that asks for more one-step problems than
exist gets the rest as rewordings of the ones it has (`meta.copy: reworded`), as a real pool's
easy problems repeat. On top, `duplicate_share` of the pool are copies of other pool problems:
half near-duplicates (the same words with a trivial edit, which MinHash catches) and half
paraphrases (other words for the same structure, which it does not).
"""

from __future__ import annotations

import json
import random
from typing import Any

from rdistill.micro.holdout import HeldOut
from rdistill.micro.problems import RENDERERS, STRUCTURES, stable_id, structure_key, structure_of

# Consecutive draws that find no new structure before a level counts as exhausted.
EXHAUSTED_AFTER = 500


def level_quotas(count: int, levels: list[int], weights: list[float]) -> dict[int, int]:
    """Problems per level: `count` split by `weights`, remainders to the largest fractions."""
    total = sum(weights)
    exact = [count * weight / total for weight in weights]
    quotas = [int(share) for share in exact]
    for index in sorted(range(len(levels)), key=lambda i: exact[i] - quotas[i], reverse=True)[: count - sum(quotas)]:
        quotas[index] += 1
    return dict(zip(levels, quotas, strict=True))


def _with_meta(problem: dict[str, Any], **fields: Any) -> dict[str, Any]:
    meta = json.loads(problem["meta"]) | fields
    return {**problem, "meta": json.dumps(meta)}


def distinct_at_level(
    domain: str, level: int, count: int, rng: random.Random, held_out: HeldOut
) -> list[dict[str, Any]]:
    """Up to `count` problems of distinct structures at one level, none held out; fewer if the level runs out.

    A structure seen before or held out costs a set lookup; only new ones take the MinHash test.
    """
    seen = set(held_out.structures)
    found: list[dict[str, Any]] = []
    misses = 0
    while len(found) < count and misses < EXHAUSTED_AFTER:
        fresh = []
        while len(fresh) < 2 * (count - len(found)) and misses < EXHAUSTED_AFTER:
            problem = RENDERERS[domain](STRUCTURES[domain](level, rng), rng)
            key = structure_key(problem)
            if key in seen:
                misses += 1
                continue
            misses = 0
            seen.add(key)
            fresh.append(problem)
        found += [problem for problem, near in zip(fresh, held_out.overlaps(fresh), strict=True) if not near]
    return found[:count]


def reword(problem: dict[str, Any], rng: random.Random, taken: set[str], held_out: HeldOut) -> dict[str, Any] | None:
    """The same structure in other words (a new prompt, not near a held-out one), or None after fifty tries."""
    for _ in range(50):
        candidate = RENDERERS[problem["domain"]](structure_of(problem), rng)
        if candidate["prompt"] not in taken and not held_out.contains(candidate):
            return candidate
    return None


NEAR_EDITS = (
    lambda text: text.replace(", then ", "; then ", 1),
    lambda text: text.replace(" ", "  ", 1),
    lambda text: text[:-1] + ("." if text.endswith("?") else "?"),
    lambda text: text[0].lower() + text[1:],
)


def near_duplicate(problem: dict[str, Any], rng: random.Random, taken: set[str]) -> dict[str, Any] | None:
    """The same words with a trivial edit (punctuation, spacing, case), as copies between sources differ."""
    for edit in rng.sample(NEAR_EDITS, len(NEAR_EDITS)):
        prompt = edit(problem["prompt"])
        if prompt not in taken and prompt != problem["prompt"]:
            return {**problem, "prompt": prompt, "id": stable_id("micro", problem["domain"], prompt)}
    return None


def draw_pool(
    domain: str,
    count: int,
    levels: list[int],
    weights: list[float],
    duplicate_share: float,
    seed: int,
    held_out: HeldOut,
) -> list[dict[str, Any]]:
    """A training pool of `count` problems of one domain (see the module's docstring)."""
    rng = random.Random(f"pool-{domain}-{seed}")
    copies = round(count * duplicate_share)
    originals: list[dict[str, Any]] = []
    for level, quota in level_quotas(count - copies, levels, weights).items():
        sources = distinct_at_level(domain, level, quota, rng, held_out)
        if quota and not sources:
            raise ValueError(f"no {domain} problem of level {level} is left outside the held-out sets")
        originals += sources
        taken = {problem["prompt"] for problem in originals}
        for _ in range(quota - len(sources)):
            copy = None
            for _ in range(len(sources)):  # some structures have run out of wordings: try others
                source = sources[rng.randrange(len(sources))]
                if (copy := reword(source, rng, taken, held_out)) is not None:
                    break
            if copy is None:
                raise ValueError(f"level {level} of {domain} cannot give {quota} problems ({len(sources)} structures)")
            taken.add(copy["prompt"])
            originals.append(_with_meta(copy, copy="reworded", copy_of=source["id"]))
    return originals + _copies(originals, copies, rng, held_out)


def _copies(originals: list[dict[str, Any]], count: int, rng: random.Random, held_out: HeldOut) -> list[dict[str, Any]]:
    """`count` copies of pool problems, alternating near-duplicates and paraphrases."""
    taken = {problem["prompt"] for problem in originals}
    made: list[dict[str, Any]] = []
    while len(made) < count:
        source = originals[rng.randrange(len(originals))]
        near = len(made) % 2 == 0
        copy = near_duplicate(source, rng, taken) if near else reword(source, rng, taken, held_out)
        if copy is None or held_out.contains(copy):
            continue
        taken.add(copy["prompt"])
        made.append(_with_meta(copy, copy="near_duplicate" if near else "paraphrase", copy_of=source["id"]))
    return made
