"""Real benchmark problems and the disguises a copied problem takes, shared by the curation tests and benchmark."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

# ../shared/data beside the checkout, as the other real-data tests expect; RDISTILL_SHARED_DATA
# points elsewhere (a git worktree in a sub-folder, say).
DATA = Path(os.environ.get("RDISTILL_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
MATH_FILES = [DATA / "math500" / "test.jsonl", DATA / "aime24" / "test.jsonl", DATA / "aime25" / "test.jsonl"]
RENAMES = {"x": "t", "y": "u", "z": "w", "a": "p", "b": "q", "c": "r", "n": "j", "m": "l", "k": "s"}


def math_problems() -> list[str]:
    """Every MATH-500, AIME 2024 and AIME 2025 problem text."""
    return [json.loads(line)["problem"] for path in MATH_FILES for line in path.read_text().splitlines() if line.strip()]


def clean_pool() -> list[str]:
    """Problems that share no item with MATH-500 or AIME: MBPP, HumanEval and MMLU questions."""
    texts = [json.loads(line)["prompt"] for line in (DATA / "mbpp" / "test.jsonl").read_text().splitlines() if line.strip()]
    texts += [json.loads(line)["prompt"] for line in (DATA / "humaneval" / "test.jsonl").read_text().splitlines() if line.strip()]
    texts += [json.loads(line)["question"] for line in (DATA / "mmlu_stem_nonmath" / "test.jsonl").read_text().splitlines() if line.strip()]
    return texts


def respace(text: str, rng: random.Random) -> str:
    """Spaces doubled, turned into line breaks, or removed around operators."""
    text = re.sub(r"\s*([=+\-<>])\s*", r"\1", text)
    return re.sub(" ", lambda _: rng.choice(["  ", "\n", " \t ", " "]), text)


def repunctuate(text: str, rng: random.Random) -> str:
    """Sentence punctuation (before a space or the end, so never a decimal point) swapped, dropped or doubled."""
    return re.sub(r"[.,;:?!](?=\s|$)", lambda _: rng.choice(["", ".", ";", " ,", "!!"]), text)


def rename_variables(text: str) -> str:
    """One-letter variables inside $...$ renamed (x -> t, n -> j, ...); LaTeX commands untouched."""
    def inside(match: re.Match) -> str:
        return re.sub(r"(?<![\\A-Za-z])([a-z])(?![A-Za-z])", lambda m: RENAMES.get(m.group(1), m.group(1)), match.group(0))

    return re.sub(r"\$[^$]+\$", inside, text)


def disguises(text: str, rng: random.Random) -> dict[str, str]:
    """The problem verbatim, re-spaced, re-punctuated, with renamed variables, and all three at once."""
    return {
        "verbatim": text,
        "respaced": respace(text, rng),
        "repunctuated": repunctuate(text, rng),
        "renamed": rename_variables(text),
        "all three": rename_variables(repunctuate(respace(text, rng), rng)),
    }
