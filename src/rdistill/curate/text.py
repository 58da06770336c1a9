"""Word-level text views shared by the curation steps: normalised words and word n-grams."""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"[^\W\d_]+|\d+")
VARIABLE = "_"


def normalise_words(text: str) -> list[str]:
    """Lower-case words and numbers, punctuation and spacing dropped, one-letter words renamed `_`.

    One-letter words are mostly variables (x, n, a): renaming them all alike makes `x + y` and
    `a + b` the same text, at the price of also equating the English article with a variable.
    """
    words = WORD.findall(unicodedata.normalize("NFKC", text).lower())
    return [VARIABLE if len(word) == 1 and word.isalpha() else word for word in words]


def word_ngrams(words: list[str], n: int) -> set[str]:
    """The distinct n-word windows of `words` (the whole text when it is shorter than n)."""
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[start : start + n]) for start in range(len(words) - n + 1)}
