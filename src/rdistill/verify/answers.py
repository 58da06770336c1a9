"""Answer extraction and comparison for math and short-answer problems.

Equivalence of math answers is decided by Math-Verify (symbolic: fractions, radicals,
intervals, sets, tuples, percentages, units). Its time limits rely on signals, so `answers_equal`
must run in a process's main thread: `rdistill.verify.grade_many` runs it in worker processes.
"""

from __future__ import annotations

import functools
import re

TIMEOUT_S = 5


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, braces balanced, or None."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    depth, position = 0, text.index("{", start)
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


def _as_number(answer: str) -> float | None:
    try:
        return float(answer.replace(",", ""))
    except ValueError:
        return None


def answers_equal(predicted: str, gold: str, timeout_s: int = TIMEOUT_S) -> bool:
    """Whether two final answers are equivalent.

    Plain numbers and identical strings are decided at once; anything else goes to
    Math-Verify, parsing both as boxed LaTeX. Answers Math-Verify cannot parse (words, letters)
    fall back to comparison after whitespace and case folding.
    """
    predicted_number, gold_number = _as_number(predicted), _as_number(gold)
    if predicted_number is not None and gold_number is not None:
        return abs(predicted_number - gold_number) <= 1e-9 * max(1.0, abs(gold_number))
    if _normalise(predicted) == _normalise(gold):
        return True
    from math_verify import verify

    gold_parsed, predicted_parsed = _parsed(gold, timeout_s), _parsed(predicted, timeout_s)
    if not gold_parsed or not predicted_parsed:
        return False
    return bool(verify(list(gold_parsed), list(predicted_parsed), timeout_seconds=timeout_s))


@functools.lru_cache(maxsize=8192)
def _parsed(answer: str, timeout_s: int) -> tuple:
    """Math-Verify's parse of a boxed answer, cached: a gold answer meets many candidates."""
    from math_verify import parse

    return tuple(parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout_s))
