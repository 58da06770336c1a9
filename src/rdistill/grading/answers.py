"""Answer extraction and comparison for math, multiple-choice and short-answer problems.

Extraction rules, in one place (tests/test_answers.py checks each; docs/grading.md compares them
with lm-evaluation-harness, simple-evals and Qwen2.5-Math):

Math and short answers (`extract_answer`), first rule that finds a well-formed answer:
1. the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced, whose content is well-formed:
   an empty box or one of punctuation alone is skipped, and an earlier one is taken;
2. the last well-formed answer phrase: "the answer is X", "final answer: X", "Answer: X"
   (any case). X is the rest of the line up to the end of its first sentence or of the inline
   math it opens with; when the line ends at the phrase ("The answer is:"), X is the display
   math (`$$...$$`, `\\[...\\]`) or the line that follows;
3. else no answer (`no_answer`): no last-number fallback, so that a format failure is counted
   as one and not as a lucky match.
Well-formed: after the wrappers (`$`, `**`, `\\(...\\)`, a final period) are stripped, the text
holds a letter, a digit or a LaTeX command. The boxed rule goes first because the prompts ask
for a box; among answers of one rule the last wins, since a model corrects itself forward.

Multiple choice (`extract_choice`), a letter among the problem's choices, first rule that gives one:
1. the last box that reads as a letter: `\\boxed{B}`, `\\boxed{(B)}`, `\\boxed{\\text{B}}`, `\\boxed{B) Paris}`;
2. the last answer phrase that reads as a letter ("The answer is (B).", "Answer: B",
   "the correct option is **B) Paris**"; "choice" and "option" count as "answer");
3. a leading letter: the answer's first line is "B", "(B)", "B)", "B." or "B:" alone or before text;
4. the last "(B)" anywhere (lm-eval's flexible-extract for MMLU chain-of-thought).
Reading as a letter: the text (markup stripped) is the letter, "(X)", or "X" followed by ")",
".", ":", "," or a space (so "B) Paris" is B). A lower-case letter counts only alone ("b",
"(b)"); rules 3 and 4 take capitals only, where "a" is usually a word.

Equivalence of math answers is decided by Math-Verify (symbolic: fractions, radicals,
intervals, sets, tuples, percentages, units). Its time limits rely on signals, so `answers_equal`
must run in a process's main thread: `rdistill.grading.grade_many` runs it in worker processes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

TIMEOUT_S = 5
LETTERS = "ABCDEFGHIJ"

ANSWER_PHRASE = re.compile(r"\b(?:final\s+)?(?:answer|choice|option)\s*(?:is\b\s*:?|:)[ \t]*", re.IGNORECASE)
DISPLAY_MATH = re.compile(r"\s*(\$\$.*?\$\$|\\\[.*?\\\])", re.DOTALL)
WELL_FORMED = re.compile(r"[A-Za-z0-9]|\\[A-Za-z]+")
_OUTER = re.compile(r"^(?:\*\*|\$\$|\$|\\\(|\\\[|`)+|(?:\*\*|\$\$|\$|\\\)|\\\]|`)+$")
_LETTER_MARKUP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit)\s*\{([^{}]*)\}|\*\*|\$|`")


def boxed_contents(text: str) -> Iterator[str]:
    """Contents of every complete `\\boxed{...}` / `\\fbox{...}` in `text`, last first, braces balanced."""
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 0, match.end() - 1
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    found.append(text[start + 1 : index].strip())
                    break
    return reversed(found)


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{...}` (or `\\fbox{...}`) in `text`, empty or not, or None."""
    return next(boxed_contents(text), None)


def clean_capture(text: str) -> str:
    """An answer without the markup around all of it: `$...$`, `**...**`, `\\(...\\)`, a final period or colon."""
    previous = None
    while previous != text:
        previous = text
        text = _OUTER.sub("", text.strip()).strip()
        text = re.sub(r"(?<!\.)[.:;,]$", "", text).strip()
    return text


def well_formed(text: str) -> bool:
    """Whether an extracted answer says something: a letter, a digit or a LaTeX command, not punctuation alone."""
    return bool(WELL_FORMED.search(text))


def phrase_captures(text: str) -> Iterator[str]:
    """What follows each answer phrase, last first: the rest of its line, or the display math or line after it."""
    found = []
    for match in ANSWER_PHRASE.finditer(text):
        rest = text[match.end() :]
        line = rest.split("\n", 1)[0]
        if well_formed(clean_capture(line)):
            found.append(line)
            continue
        display = DISPLAY_MATH.match(rest)
        if display:
            found.append(display.group(1))
            continue
        following = [candidate for candidate in rest.split("\n")[1:] if candidate.strip()]
        found.append(following[0] if following else "")
    return reversed([clean_capture(_first_sentence(capture)) for capture in found])


def _first_sentence(capture: str) -> str:
    """A capture cut where its answer ends: the inline math it opens with, else its first sentence.

    "$42$. I hope it is correct" gives $42$; "196. Let me check." gives 196.
    """
    math = re.match(r"\s*(\$\$.*?\$\$|\$(?:\\\$|[^$])+\$|\\\(.*?\\\))", capture)
    if math:
        return math.group(1)
    return re.split(r"(?<=[^\s.])\.\s+(?=[A-Z])", capture, maxsplit=1)[0]


def _unboxed(capture: str) -> str:
    """A phrase's answer without a box around it ("The answer is \\boxed{7}." gives 7); empty boxes do not count."""
    return next((boxed for boxed in boxed_contents(capture) if well_formed(boxed)), capture)


def extract_answer(response: str) -> str | None:
    """The final answer of a math or short-answer response by the module's rules, or None (`no_answer`)."""
    for boxed in boxed_contents(response):
        if well_formed(clean_capture(boxed)):
            return boxed
    for capture in phrase_captures(response):
        answer = clean_capture(_unboxed(capture))
        if well_formed(answer):
            return answer
    return None


def choice_letter(text: str, letters: str = LETTERS) -> str | None:
    """The choice letter `text` reads as ("B", "(B)", "B) Paris", "\\text{B}"), in capitals, or None.

    A lower-case letter counts only alone ("b", "(b)", "b)"): before more text it is a word ("a bit").
    """
    plain = _LETTER_MARKUP.sub(lambda match: match.group(1) or "", text).strip()
    match = re.match(r"^\(?([A-Za-z])(\)|[.:,]|\s|$)", plain)
    if not match:
        return None
    letter, after = match.groups()
    if letter.islower() and not (after == "" or (after == ")" and not plain[match.end() :].strip())):
        return None
    return letter.upper() if letter.upper() in letters else None


def extract_choice(response: str, letters: str = LETTERS) -> str | None:
    """The chosen letter of a multiple-choice response by the module's rules, or None (`no_answer`)."""
    for candidate in (*boxed_contents(response), *phrase_captures(response)):
        letter = choice_letter(clean_capture(_unboxed(candidate)), letters)
        if letter:
            return letter
    first_line = next((line for line in response.strip().splitlines() if line.strip()), "")
    leading = re.match(r"^\W*?\(?([A-Z])(?:\)|[.:](?!\w)|\s*$)", clean_capture(first_line))
    if leading and leading.group(1) in letters:
        return leading.group(1)
    standalone = [letter for letter in re.findall(r"\(([A-Z])\)", response) if letter in letters]
    return standalone[-1] if standalone else None


# Spellings that never change an answer's value: sizing and spacing commands, fraction styles.
_NEUTRAL_LATEX = [
    (re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])"), ""),
    (re.compile(r"\\[dt]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\[,;:! ]|~"), " "),
]
_CONTROL_WORD_OR_TEXT = re.compile(r"\\[A-Za-z]+|\\?[^\\]+")
_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|boxed)\s*\{(.*)\}$", re.DOTALL)


def balanced_braces(text: str) -> bool:
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
        inner = wrapped.group(1) if wrapped and balanced_braces(wrapped.group(1)) else stripped
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
