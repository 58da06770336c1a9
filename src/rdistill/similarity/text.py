"""Word-level text views shared by the curation steps: normalised words and word n-grams.

Normalisation runs on a whole pool at once with pyarrow's string kernels (NFKC, lower case,
digits split from letters, everything but letters and digits dropped); a per-text Python
regex costs more than the n-gram matching itself on 100,000 problems.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VARIABLE = "_"


def normalise_batch(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(vocabulary, word ids of every text concatenated, offsets: text i is ids[offsets[i]:offsets[i+1]]).

    Words are lower-case runs of letters or of digits; one-letter words are mostly variables
    (x, n, a) and all become `_`, so that `x + y` and `a + b` read alike, at the price of also
    equating the English article with a variable.
    """
    column = pc.utf8_lower(pc.utf8_normalize(pa.array(texts, type=pa.large_string()), "NFKC"))
    # One pass: a run of digits gets spaces around it, anything but letters and digits becomes a space.
    column = pc.replace_substring_regex(column, r"([0-9]+)|[^\p{L}0-9]+", r" \1 ")
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(column))
    encoded = pc.dictionary_encode(words.flatten())
    vocabulary = [VARIABLE if len(word) == 1 and word.isalpha() else word for word in encoded.dictionary.to_pylist()]
    ids = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = words.offsets.to_numpy().astype(np.int64)
    empty = [index for index, word in enumerate(vocabulary) if not word]
    if empty:
        keep = ids != empty[0]
        offsets = np.concatenate([[0], np.cumsum(keep)])[offsets]
        ids = ids[keep]
    return vocabulary, ids, offsets


def word_ngrams(words: list[str], n: int) -> set[str]:
    """The distinct n-word windows of `words` (the whole text when it is shorter than n)."""
    if len(words) <= n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[start : start + n]) for start in range(len(words) - n + 1)}
