"""Near-duplicate removal: MinHash LSH over word shingles, one representative kept per cluster.

LSH proposes candidates from MinHash signatures; each is confirmed by the exact Jaccard
similarity of the shingle sets, so the estimate's noise (about ±0.04 at 128 permutations)
never merges short, templated problems that differ in one step. Shingles are hashed with
CRC-32, not Python's salted `hash`, so the clusters are the same in every process.
"""

from __future__ import annotations

import zlib

from datasketch import LeanMinHash, MinHash, MinHashLSH

from rdistill.config import DedupOptions
from rdistill.curate.text import normalise_words, word_ngrams


def _identity(value: int) -> int:
    return value


def shingles(text: str, size: int) -> set[int]:
    """CRC-32 hashes of the text's word shingles."""
    return {zlib.crc32(gram.encode()) for gram in word_ngrams(normalise_words(text), size)}


def jaccard(first: set[int], second: set[int]) -> float:
    """Exact Jaccard similarity of two shingle sets."""
    union = len(first | second)
    return len(first & second) / union if union else 1.0


def near_duplicates(keys: list[str], texts: list[str], options: DedupOptions) -> dict[str, str]:
    """Key of each dropped text -> key of the representative it duplicates.

    Texts are visited in the given order and only representatives enter the index, so the
    first text of a cluster represents it; the earliest confirmed representative wins.
    """
    shingle_sets = [shingles(text, options.shingle) for text in texts]
    signatures = MinHash.bulk([list(s) for s in shingle_sets], num_perm=options.num_perm, hashfunc=_identity)
    # Weighted towards recall: a false candidate costs one exact Jaccard, a missed pair a duplicate.
    lsh = MinHashLSH(threshold=options.threshold, num_perm=options.num_perm, weights=(0.1, 0.9))
    position = {key: index for index, key in enumerate(keys)}
    duplicate_of: dict[str, str] = {}
    for index, (key, signature) in enumerate(zip(keys, signatures)):
        similar = [match for match in lsh.query(signature) if jaccard(shingle_sets[index], shingle_sets[position[match]]) >= options.threshold]
        if similar:
            duplicate_of[key] = min(similar, key=position.__getitem__)
        elif key not in position or position[key] == index:
            lsh.insert(key, LeanMinHash(signature))
    return duplicate_of
