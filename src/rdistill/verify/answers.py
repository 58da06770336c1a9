"""Answer extraction and comparison for math and short-answer problems."""

from __future__ import annotations

import re

THINK_CLOSE = "</think>"


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` in `text`, braces balanced, or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, position = 0, start + len("\\boxed{") - 1
    for index in range(position, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[position + 1 : index].strip()
    return None


def extract_answer(response: str) -> str | None:
    """The final answer: the last boxed expression, else what follows 'the answer is'."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed
    match = re.findall(r"answer is[:\s]*\$?([^\n$]+?)\$?\s*\.?\s*$", response, flags=re.IGNORECASE | re.MULTILINE)
    return match[-1].strip() if match else None


def _normalise(answer: str) -> str:
    return re.sub(r"\s+", " ", answer.strip().strip(".").strip("$")).lower()


def answers_equal(predicted: str, gold: str) -> bool:
    """Equal as numbers when both parse as numbers, else equal after whitespace and case folding."""
    try:
        return abs(float(predicted.replace(",", "")) - float(gold.replace(",", ""))) < 1e-9
    except ValueError:
        return _normalise(predicted) == _normalise(gold)
