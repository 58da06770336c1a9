"""Decontamination: drop pool problems that overlap an evaluation item, and say which item.

Two tests, as in the open-r1 and OLMo pipelines: the normalised text is equal to a benchmark
item's, or they share a word n-gram (13 words by default). Normalisation makes the tests blind
to case, spacing, punctuation and the names of one-letter variables, the cheap ways a copied
problem gets disguised; the benchmarks' template words (those in half of a benchmark's items)
are left out of the n-grams so that shared boilerplate never counts as a copy. The whole pool
is normalised with pyarrow and its n-grams hashed and matched with numpy at once; a Python set
of word tuples per problem is slower (benchmarks/curate.py). Every hash hit is confirmed word
by word, so a hash collision never drops a problem.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.data import read_jsonl_lines, read_parquet, row_label
from rdistill.errors import DataError
from rdistill.similarity.text import normalise_batch

MASK = (1 << 64) - 1
PRIME = np.uint64(1099511628211)


@dataclass(frozen=True)
class BenchmarkItem:
    """One evaluation problem: which benchmark, its id there, and its text."""

    benchmark: str
    item_id: str
    text: str


@dataclass(frozen=True)
class Hit:
    """Why a pool problem counts as contaminated: the test that fired and the item it matched."""

    kind: str
    item: BenchmarkItem
    overlap: str

    def describe(self) -> str:
        """The reason written to selection.parquet."""
        return f"contaminated: {self.kind} with {self.item.benchmark}/{self.item.item_id} ({self.overlap[:60]!r})"


@dataclass
class Encoded:
    """Texts as word ids (all words, and content words only) with per-text offsets and word hashes."""

    vocabulary: list[str]
    ids: np.ndarray
    offsets: np.ndarray
    content_ids: np.ndarray
    content_offsets: np.ndarray
    hashes: np.ndarray

    def words(self, text: int, content: bool = False) -> list[str]:
        """The (content) words of one text."""
        ids, offsets = (self.content_ids, self.content_offsets) if content else (self.ids, self.offsets)
        return [self.vocabulary[index] for index in ids[offsets[text] : offsets[text + 1]].tolist()]


def encode(texts: list[str], template: frozenset[str]) -> Encoded:
    """Normalise every text at once; template words are left out of the content view."""
    vocabulary, ids, offsets = normalise_batch(texts)
    hashes = np.fromiter((hash(word) & MASK for word in vocabulary), dtype=np.uint64, count=len(vocabulary))
    is_template = np.fromiter((word in template for word in vocabulary), dtype=bool, count=len(vocabulary))
    keep = ~is_template[ids] if len(ids) else np.zeros(0, dtype=bool)
    content_offsets = np.concatenate([[0], np.cumsum(keep)])[offsets]
    return Encoded(vocabulary, ids, offsets, ids[keep], content_offsets, hashes)


def _sequence_hashes(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """One hash per text of its whole word sequence (0 for an empty text)."""
    lengths = np.diff(offsets)
    result = np.zeros(len(lengths), dtype=np.uint64)
    if len(flat) == 0:
        return result
    powers = _powers(int(lengths.max()))
    text_of = np.repeat(np.arange(len(lengths)), lengths)
    weights = powers[np.arange(len(flat)) - offsets[text_of]]
    filled = lengths > 0
    result[filled] = np.add.reduceat(flat * weights, offsets[:-1][filled]) ^ lengths[filled].astype(np.uint64)
    return result


def _powers(count: int) -> np.ndarray:
    """PRIME to the powers 0 .. count-1, wrapping at 2**64 like the hashes."""
    powers = np.ones(count, dtype=np.uint64)
    powers[1:] = PRIME
    return np.cumprod(powers, dtype=np.uint64)


def _members(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Which of `values` are in the sorted array `known` (a binary search each; np.isin sorts both)."""
    if len(known) == 0:
        return np.zeros(len(values), dtype=bool)
    slots = np.minimum(np.searchsorted(known, values), len(known) - 1)
    return known[slots] == values


def _gram_hashes(flat: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-word window that stays inside one text, and the index of that text."""
    total = len(flat) - n + 1
    if total <= 0:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    grams = np.zeros(total, dtype=np.uint64)
    for shift in range(n):
        grams = grams * PRIME + flat[shift : shift + total]
    text_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))[:total]
    inside = np.arange(total) + n <= offsets[text_of + 1]
    return grams[inside], text_of[inside]


def template_words(
    items: list[BenchmarkItem], word_lists: list[list[str]], share: float, smallest: int = 10
) -> frozenset[str]:
    """Words found in at least `share` of one benchmark's items: its template, not its content.

    Benchmarks of fewer than `smallest` items have too few to tell template from content.
    """
    by_benchmark: dict[str, list[set[str]]] = {}
    for item, words in zip(items, word_lists, strict=False):
        by_benchmark.setdefault(item.benchmark, []).append(set(words))
    template: set[str] = set()
    for word_sets in by_benchmark.values():
        if len(word_sets) >= smallest:
            counts = Counter(word for words in word_sets for word in words)
            template |= {word for word, count in counts.items() if count >= share * len(word_sets)}
    return frozenset(template)


class BenchmarkIndex:
    """Whole-text and n-gram hashes of every evaluation item, for matching a whole pool at once.

    N-grams shared by `boilerplate_items` items or more are dropped from the index: they are the
    benchmark's template (AIME's "where m and n are relatively prime positive integers"), and a
    pool problem that shares only them has copied nothing. Items with fewer than n content
    words can only match exactly: a shorter window would flag any problem sharing a phrase.
    """

    def __init__(
        self, items: list[BenchmarkItem], n: int, boilerplate_items: int = 3, template_share: float = 0.5
    ) -> None:
        self.items = items
        self.n = n
        plain = encode([item.text for item in items], frozenset())
        self.template = template_words(items, [plain.words(i) for i in range(len(items))], template_share)
        encoded = encode([item.text for item in items], self.template)
        self.words = [encoded.words(i) for i in range(len(items))]
        self.content = [encoded.words(i, content=True) for i in range(len(items))]
        self.exact = {" ".join(words): index for index, words in reversed(list(enumerate(self.words)))}
        self.sequences = np.unique(_sequence_hashes(encoded.hashes[encoded.ids], encoded.offsets))
        hashes, owner = _gram_hashes(encoded.hashes[encoded.content_ids], encoded.content_offsets, n)
        first: dict[int, int] = {}
        owners: dict[int, set[int]] = {}
        for value, position in zip(hashes.tolist(), owner.tolist(), strict=False):
            first.setdefault(value, position)
            owners.setdefault(value, set()).add(position)
        self.grams = {value: index for value, index in first.items() if len(owners[value]) < boilerplate_items}

    def strip(self, words: list[str]) -> list[str]:
        """The words that are content, template words left out."""
        return [word for word in words if word not in self.template]

    def match(self, texts: list[str]) -> dict[int, Hit]:
        """Position in `texts` -> its hit: an exact match, else the first shared n-gram found."""
        pool = encode(texts, self.template)
        hits: dict[int, Hit] = {}
        sequences = _sequence_hashes(pool.hashes[pool.ids], pool.offsets)
        for position in np.flatnonzero(_members(sequences, self.sequences) & (np.diff(pool.offsets) > 0)).tolist():
            words = " ".join(pool.words(position))
            if words in self.exact:
                hits[position] = Hit("exact match", self.items[self.exact[words]], words)
        hashes, owner = _gram_hashes(pool.hashes[pool.content_ids], pool.content_offsets, self.n)
        known = np.sort(np.fromiter(self.grams.keys(), dtype=np.uint64, count=len(self.grams)))
        for found in np.flatnonzero(_members(hashes, known)).tolist():
            position = int(owner[found])
            if position not in hits and (
                hit := self._confirm(pool.words(position, content=True), self.grams[int(hashes[found])])
            ):
                hits[position] = hit
        return hits

    def _confirm(self, words: list[str], index: int) -> Hit | None:
        """The hit, checked word by word."""
        item_words = self.content[index]
        n = self.n
        grams = {tuple(item_words[i : i + n]) for i in range(len(item_words) - n + 1)}
        for start in range(len(words) - n + 1):
            window = tuple(words[start : start + n])
            if window in grams:
                return Hit(f"{n}-gram overlap", self.items[index], " ".join(window))
        return None


def benchmark_file_problems(path: Path, text_fields: list[str]) -> tuple[list[BenchmarkItem], list[str]]:
    """(items, errors) of a JSON Lines or Parquet file; the benchmark is named after its folder and file.

    Every row needs one of `text_fields` as non-empty text; an error names the row's 1-based line.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        rows, lines = read_parquet(path), None
    else:
        numbered = read_jsonl_lines(path)
        rows, lines = [row for _, row in numbered], [number for number, _ in numbered]
    name = f"{path.parent.name}/{path.stem}"
    items, errors = [], []
    for index, row in enumerate(rows):
        field = next((key for key in text_fields if isinstance(row.get(key), str) and row[key].strip()), None)
        if field is None:
            errors.append(
                f"{row_label(path, index, lines)}: no text field (looked for {', '.join(text_fields)}; set "
                f"curate.decontaminate.text_fields)"
            )
            continue
        item_id = row.get("unique_id") or row.get("id") or row.get("task_id") or str(index + 1)
        items.append(BenchmarkItem(name, str(item_id), row[field]))
    if not rows:
        errors.append(f"{path}: no rows")
    return items, errors


def read_benchmark_file(path: Path, text_fields: list[str]) -> list[BenchmarkItem]:
    """Evaluation items of a JSON Lines or Parquet file; the first bad row is a DataError naming its line."""
    items, errors = benchmark_file_problems(path, text_fields)
    if errors:
        raise DataError(errors[0])
    return items


def eval_items(problems: list[dict[str, Any]]) -> list[BenchmarkItem]:
    """The run's own evaluation split, one benchmark per domain (as the evaluate stage groups them)."""
    return [BenchmarkItem(f"eval/{p['domain']}", p["id"], p["prompt"]) for p in problems if p["split"] == "eval"]
