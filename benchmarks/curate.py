"""Decontamination + near-duplicate removal of 100,000 problems, against plain-Python baselines, in one run.

The pool: 100,000 problems of three sentences each, drawn from MMLU, MBPP and HumanEval
questions (none of which overlaps MATH or AIME), plus every MATH-500 / AIME 2024 / AIME 2025
problem inserted in five disguises (verbatim, re-spaced, re-punctuated, renamed variables,
all three) and 1,000 planted near-duplicates (one word changed). The evaluation sets: MATH-500,
AIME 2024 and AIME 2025.

- rdistill: `BenchmarkIndex.match` (hashed n-grams matched with numpy) and `near_duplicates`
  (MinHash LSH, exact Jaccard confirmation), as the curate stage runs them.
- baseline decontamination: the same normalised words, a Python set of 13-word tuples of the
  evaluation items, each pool problem's tuples looked up one by one (it must find the same hits).
- baseline dedup: all-pairs Jaccard of shingle sets, CPU time on a 2,000-problem sample
  scaled by the square of the size ratio (running it on 100,000 would take hours).

Both wall-clock and CPU seconds are printed: on a shared machine the CPU seconds tell what an
idle one would take.

Usage: RDISTILL_SHARED_DATA=../shared/data python benchmarks/curate.py [--problems 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import DATA, MATH_FILES, disguises, math_problems  # noqa: E402
from rdistill.config import DecontaminateOptions, DedupOptions  # noqa: E402
from rdistill.curate.decontaminate import BenchmarkIndex, read_benchmark_file  # noqa: E402
from rdistill.similarity.minhash import jaccard, near_duplicates, shingle_hashes  # noqa: E402


def clean_sentences() -> list[str]:
    """Sentences of MMLU, MBPP and HumanEval questions: text that shares nothing with MATH or AIME."""
    texts = [
        json.loads(line)["question"] for line in (DATA / "mmlu_stem_nonmath" / "test.jsonl").read_text().splitlines()
    ]
    texts += [json.loads(line)["prompt"] for line in (DATA / "mbpp" / "test.jsonl").read_text().splitlines()]
    texts += [json.loads(line)["prompt"] for line in (DATA / "humaneval" / "test.jsonl").read_text().splitlines()]
    sentences = [s.strip() for text in texts for s in re.split(r"(?<=[.?!])\s+", text) if len(s.split()) >= 4]
    return list(dict.fromkeys(sentences))


def build_pool(size: int, rng: random.Random) -> tuple[list[str], int, dict[int, int]]:
    """(pool texts, how many are disguised benchmark items, planted duplicate position -> original position)."""
    sentences = clean_sentences()
    disguised = [text for problem in math_problems() for text in disguises(problem, rng).values()]
    base = [" ".join(rng.sample(sentences, 3)) for _ in range(size - len(disguised) - 1000)]
    planted = {}
    for _ in range(1000):
        original = rng.randrange(len(base))
        words = base[original].split()
        words[rng.randrange(len(words))] = "reworded"
        planted[len(disguised) + len(base)] = len(disguised) + original
        base.append(" ".join(words))
    return disguised + base, len(disguised), planted


WORD = re.compile(r"[^\W\d_]+|\d+")


def plain_normalise(text: str) -> list[str]:
    """rdistill's normalisation written as a per-text Python regex."""
    words = WORD.findall(unicodedata.normalize("NFKC", text).lower())
    return ["_" if len(word) == 1 and word.isalpha() else word for word in words]


def baseline_decontaminate(index: BenchmarkIndex, texts: list[str]) -> set[int]:
    """Plain Python: a set of word tuples, every window of every pool problem looked up."""
    n = index.n
    grams = {tuple(words[i : i + n]) for words in index.content for i in range(len(words) - n + 1)}
    hits = set()
    for position, text in enumerate(texts):
        all_words = plain_normalise(text)
        if " ".join(all_words) in index.exact:
            hits.add(position)
            continue
        words = index.strip(all_words)
        if any(tuple(words[i : i + n]) in grams for i in range(len(words) - n + 1)):
            hits.add(position)
    return hits


def baseline_dedup_seconds(texts: list[str], options: DedupOptions, sample: int) -> float:
    """CPU seconds of all-pairs exact Jaccard on `sample` texts, scaled quadratically to all of them."""
    subset = texts[:sample]
    started = time.process_time()
    sets = shingle_hashes(subset, options.shingle)
    for i in range(len(sets)):
        for j in range(i):
            jaccard(sets[i], sets[j])
    return (time.process_time() - started) * (len(texts) / sample) ** 2


class Clock:
    """Wall-clock and CPU seconds since the last lap: on a shared machine CPU time is the fairer measure."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        laps = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return laps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--pairs-sample", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(0)
    texts, disguised, planted = build_pool(args.problems, rng)
    decontaminate, dedup = DecontaminateOptions(), DedupOptions()
    items = [item for path in MATH_FILES for item in read_benchmark_file(path, decontaminate.text_fields)]

    clock = Clock()
    index = BenchmarkIndex(items, decontaminate.ngram, decontaminate.boilerplate_items, decontaminate.template_share)
    hits = index.match(texts)
    decontaminate_s, decontaminate_cpu = clock.lap()
    survivors = [position for position in range(len(texts)) if position not in hits]
    duplicates = near_duplicates([str(p) for p in survivors], [texts[p] for p in survivors], dedup)
    dedup_s, dedup_cpu = clock.lap()
    baseline_hits = baseline_decontaminate(index, texts)
    baseline_decontaminate_s, baseline_decontaminate_cpu = clock.lap()
    baseline_dedup_cpu = baseline_dedup_seconds([texts[p] for p in survivors], dedup, args.pairs_sample)

    recall = sum(position in hits for position in range(disguised)) / disguised
    false_hits = sum(position >= disguised for position in hits)
    # Changing one word of a short problem can leave it below the threshold: count the pairs above it.
    pair_hashes = shingle_hashes([texts[p] for pair in planted.items() for p in pair], dedup.shingle)
    above = [
        pair
        for number, pair in enumerate(planted.items())
        if jaccard(pair_hashes[2 * number], pair_hashes[2 * number + 1]) >= dedup.threshold
    ]
    planted_found = sum(duplicates.get(str(dup)) == str(orig) for dup, orig in above) / len(above)
    total = decontaminate_s + dedup_s
    agreement = len(baseline_hits & set(hits)) / max(1, len(baseline_hits | set(hits)))
    print(
        f"pool: {len(texts):,} problems ({disguised:,} disguised MATH-500/AIME items, {len(planted):,} "
        f"planted near-duplicates); {len(items)} evaluation items"
    )
    print(
        f"near-duplicates dropped: {len(duplicates):,}; planted pairs at or above the {dedup.threshold} "
        f"threshold: {len(above)} of {len(planted)}"
    )
    print(
        f"baseline dedup: all pairs of {args.pairs_sample:,} problems, scaled to the pool; load average at "
        f"the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} (2 cores)"
    )
    print(f"baseline_ngram_set_decontaminate_s: {baseline_decontaminate_s:.1f}")
    print(f"baseline_all_pairs_dedup_cpu_s_extrapolated: {baseline_dedup_cpu:.0f}")
    print(f"baseline_agreement: {agreement:.4f}")
    print(f"clean_problems_flagged: {false_hits}")
    print(f"disguised_item_recall: {recall:.4f}")
    print(f"planted_duplicate_recall: {planted_found:.4f}")
    print(f"baseline_ngram_set_decontaminate_cpu_s: {baseline_decontaminate_cpu:.1f}")
    print(f"decontaminate_s: {decontaminate_s:.1f}")
    print(f"decontaminate_cpu_s: {decontaminate_cpu:.1f}")
    print(f"dedup_s: {dedup_s:.1f}")
    print(f"dedup_cpu_s: {dedup_cpu:.1f}")
    print(f"decontaminate_speedup_vs_ngram_set: {baseline_decontaminate_s / decontaminate_s:.2f}")
    print(f"decontaminate_cpu_speedup_vs_ngram_set: {baseline_decontaminate_cpu / decontaminate_cpu:.2f}")
    print(f"dedup_cpu_speedup_vs_all_pairs: {baseline_dedup_cpu / dedup_cpu:.0f}")
    print(f"decontaminate_plus_dedup_s: {total:.1f}")
    print(f"decontaminate_plus_dedup_cpu_s: {decontaminate_cpu + dedup_cpu:.1f}")


if __name__ == "__main__":
    main()
