"""Near-duplicates: MinHash LSH over word shingles, one representative kept per cluster.

Curation removes near-duplicate problems with it, and the micro-world keeps every pool and base
corpus clear of its held-out prompts with the same test, so "near-duplicate" means one thing.

datasketch computes the signatures and the LSH index proposes candidates; each candidate is
confirmed by the exact Jaccard similarity of the shingle sets, so the estimate's noise (about
±0.04 at 128 permutations) never merges short, templated problems that differ in one step.
Shingle hashes are computed for the whole pool at once with numpy from CRC-32 word hashes (not
Python's salted `hash`), so the clusters are the same in every process.
"""

from __future__ import annotations

import zlib

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from rdistill.config import DedupOptions
from rdistill.similarity.text import normalise_batch

MIX = np.uint64(0x9E3779B97F4A7C15)


def _identity(value: int) -> int:
    return value


def shingle_hashes(texts: list[str], size: int) -> list[np.ndarray]:
    """Per text, the sorted distinct 32-bit hashes of its `size`-word shingles (the whole text if shorter)."""
    vocabulary, ids, offsets = normalise_batch(texts)
    word_hashes = np.fromiter(
        (zlib.crc32(word.encode()) for word in vocabulary), dtype=np.uint64, count=len(vocabulary)
    )
    flat = word_hashes[ids]
    lengths = np.diff(offsets)
    # A text shorter than `size` words is one shingle of all its words: pad its window with zeros.
    padded_lengths = np.maximum(lengths, np.minimum(size, np.maximum(lengths, 1)))
    padded_offsets = np.concatenate([[0], np.cumsum(padded_lengths + size - 1)])
    padded = np.zeros(int(padded_offsets[-1]), dtype=np.uint64)
    text_of_word = np.repeat(np.arange(len(texts)), lengths)
    padded[padded_offsets[text_of_word] + (np.arange(len(flat)) - offsets[text_of_word])] = flat
    windows = len(padded) - size + 1
    hashes = np.zeros(max(windows, 0), dtype=np.uint64)
    for shift in range(size):
        hashes = (hashes ^ padded[shift : shift + windows]) * MIX
    starts = np.arange(max(windows, 0))
    text_of = np.searchsorted(padded_offsets, starts, side="right") - 1
    inside = starts - padded_offsets[text_of] < np.maximum(lengths - size + 1, 1)[text_of]
    keys = (text_of[inside].astype(np.uint64) << np.uint64(32)) | (hashes[inside] >> np.uint64(32))
    keys = np.unique(keys)
    owner = (keys >> np.uint64(32)).astype(np.int64)
    values = keys & np.uint64(0xFFFFFFFF)
    return np.split(values, np.searchsorted(owner, np.arange(1, len(texts))))


def jaccard(first: np.ndarray, second: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted, distinct hash arrays."""
    shared = len(np.intersect1d(first, second, assume_unique=True))
    union = len(first) + len(second) - shared
    return shared / union if union else 1.0


def near_duplicates(keys: list[str], texts: list[str], options: DedupOptions) -> dict[str, str]:
    """Key of each dropped text -> key of the representative it duplicates.

    Texts are visited in the given order and only representatives enter the index, so the
    first text of a cluster represents it; the earliest confirmed representative wins.
    """
    shingles = shingle_hashes(texts, options.shingle)
    signatures = MinHash.bulk([s.tolist() for s in shingles], num_perm=options.num_perm, hashfunc=_identity)
    # Weighted towards recall: a false candidate costs one exact Jaccard, a missed pair a duplicate.
    lsh = MinHashLSH(threshold=options.threshold, num_perm=options.num_perm, weights=(0.1, 0.9))
    position = {key: index for index, key in enumerate(keys)}
    duplicate_of: dict[str, str] = {}
    for index, (key, signature) in enumerate(zip(keys, signatures, strict=False)):
        similar = [
            match
            for match in lsh.query(signature)
            if jaccard(shingles[index], shingles[position[match]]) >= options.threshold
        ]
        if similar:
            duplicate_of[key] = min(similar, key=position.__getitem__)
        elif position[key] == index:
            lsh.insert(key, LeanMinHash(signature))
    return duplicate_of


class NearDuplicateIndex:
    """Reference texts that candidates are checked against: is a candidate a near-duplicate of any of them?

    The same test as `near_duplicates` (word shingles, exact Jaccard at the threshold), but exact:
    an inverted index from shingle to reference finds every reference sharing a shingle, so none
    is missed the way LSH misses a few pairs near the threshold. Meant for reference sets of up to
    tens of thousands of texts (held-out items, benchmarks).
    """

    def __init__(self, texts: list[str], options: DedupOptions) -> None:
        self.options = options
        self.shingles = shingle_hashes(texts, options.shingle) if texts else []
        self.postings: dict[int, list[int]] = {}
        for index, shingles in enumerate(self.shingles):
            for value in shingles.tolist():
                self.postings.setdefault(value, []).append(index)

    def matches(self, texts: list[str]) -> list[int | None]:
        """Per candidate, the first reference text it is a near-duplicate of, or None."""
        if not texts or not self.shingles:
            return [None] * len(texts)
        found: list[int | None] = []
        for shingles in shingle_hashes(texts, self.options.shingle):
            shared: dict[int, int] = {}
            for value in shingles.tolist():
                for reference in self.postings.get(value, ()):
                    shared[reference] = shared.get(reference, 0) + 1
            close = [
                reference
                for reference, count in shared.items()
                if count / (len(shingles) + len(self.shingles[reference]) - count) >= self.options.threshold
            ]
            found.append(min(close) if close else None)
        return found
