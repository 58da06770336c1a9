"""Answer extraction and comparison for math and short-answer problems.

Equivalence of math answers is decided by Math-Verify (symbolic: fractions, radicals,
intervals, sets, tuples, percentages, units). Its time limits rely on signals, so `answers_equal`
must run in a process's main thread: `rdistill.grading.grade_many` runs it in worker processes.
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


# Spellings that never change an answer's value: sizing and spacing commands, fraction styles.
_NEUTRAL_LATEX = [
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])"), ""),
    (re.compile(r"\\[dt]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\[,;:! ]|~"), " "),
]
_CONTROL_WORD_OR_TEXT = re.compile(r"\\[A-Za-z]+|\\?[^\\]+")
_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|boxed)\s*\{(.*)\}$", re.DOTALL)


def _balanced(text: str) -> bool:
    """Whether `text`'s braces pair up: `{a}+{b}` is two groups, not one wrapper around `a}+{b`."""
    depth = 0
    for character in text:
        depth += {"{": 1, "}": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def _unwrap(answer: str) -> str:
    """`answer` without the wrappers around all of it: `{...}`, `\\text{...}`, `$...$`, a final period."""
    while True:
        stripped = re.sub(r"(?<!\.)\.$", "", answer.strip().strip("$").strip()).strip()
        wrapped = _WRAPPER.match(stripped) or (re.match(r"^\{(.*)\}$", stripped, re.DOTALL))
        inner = wrapped.group(1) if wrapped and _balanced(wrapped.group(1)) else stripped
        if inner == answer:
            return answer
        answer = inner


def _normalise(answer: str) -> str:
    """A canonical spelling: two answers with the same one are equal, whatever Math-Verify says.

    The converse does not hold: answers that differ here go to Math-Verify. This settles the
    spellings models vary most (`\\dfrac`, `\\left(`, `\\text{...}`, outer braces) in
    microseconds, where Math-Verify's ANTLR parser spends tens of milliseconds on each new string.
    Spaces are kept only between two letters or digits, where they separate words or numbers;
    case is folded outside control words (`\\Delta` is not `\\delta`).
    """
    for pattern, replacement in _NEUTRAL_LATEX:
        answer = pattern.sub(replacement, answer)
    answer = _unwrap(answer)
    answer = re.sub(r"\s+", lambda space: " " if _between_words(space) else "", answer)
    return _CONTROL_WORD_OR_TEXT.sub(
        lambda part: part.group() if part.group().startswith("\\") else part.group().lower(), answer
    )


def _between_words(space: re.Match) -> bool:
    text, start, end = space.string, space.start(), space.end()
    return 0 < start and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()


def _as_number(answer: str) -> float | None:
    try:
        return float(answer.replace(",", ""))
    except ValueError:
        return None


def quick_verdict(predicted: str, gold: str) -> bool | None:
    """The verdict where it needs no parsing: plain numbers compared, or equal canonical spellings.

    None means Math-Verify must decide.
    """
    predicted_number, gold_number = _as_number(predicted), _as_number(gold)
    if predicted_number is not None and gold_number is not None:
        return abs(predicted_number - gold_number) <= 1e-9 * max(1.0, abs(gold_number))
    return True if _normalise(predicted) == _normalise(gold) else None


def answers_equal(predicted: str, gold: str, timeout_s: int = TIMEOUT_S) -> bool:
    """Whether two final answers are equivalent: `quick_verdict`, else Math-Verify on both as boxed LaTeX.

    Answers Math-Verify cannot parse (words, letters) are equal only by their canonical spelling.
    """
    quick = quick_verdict(predicted, gold)
    if quick is not None:
        return quick
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
