"""Decontamination and near-duplicate removal on real benchmark text (../shared/data)."""

from __future__ import annotations

import random

import pytest

from helpers import DATA, MATH_FILES, clean_pool, disguises, math_problems
from rdistill.config import DecontaminateOptions, DedupOptions
from rdistill.curate.decontaminate import BenchmarkIndex, read_benchmark_file
from rdistill.similarity.minhash import jaccard, near_duplicates, shingle_hashes

needs_data = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the checkout (set RDISTILL_SHARED_DATA)"
)


@pytest.fixture(scope="module")
def index() -> BenchmarkIndex:
    options = DecontaminateOptions()
    items = [item for path in MATH_FILES for item in read_benchmark_file(path, options.text_fields)]
    return BenchmarkIndex(items, options.ngram, options.boilerplate_items, options.template_share)


@needs_data
def test_disguised_math500_and_aime_problems_are_all_caught_and_a_clean_pool_loses_nothing(index):
    rng = random.Random(0)
    problems = math_problems()
    inserted = [(kind, text) for problem in problems for kind, text in disguises(problem, rng).items()]
    clean = clean_pool()
    hits = index.match([text for _, text in inserted] + clean)
    recall = {
        kind: sum(position in hits for position, (k, _) in enumerate(inserted) if k == kind) / len(problems)
        for kind in dict(inserted)
    }
    assert recall == {kind: 1.0 for kind in recall}
    assert not [clean[position - len(inserted)] for position in hits if position >= len(inserted)]


@needs_data
def test_a_problem_embedded_in_longer_text_is_caught_by_ngram_overlap_with_the_item_it_matched(index):
    long_enough = [
        (item, words) for item, words in zip(index.items, index.content, strict=False) if len(words) >= index.n
    ]
    texts = [f"Here is a warm-up exercise for you. {item.text} Show all your work." for item, _ in long_enough]
    hits = index.match(texts)
    assert len(hits) == len(long_enough) > 300
    assert all(hits[i].item == item and hits[i].kind == "13-gram overlap" for i, (item, _) in enumerate(long_enough))


@needs_data
def test_shared_template_text_alone_is_not_contamination(index):
    boilerplate = (
        "Let the answer be $\\tfrac{m}{n}$, where $m$ and $n$ are relatively prime positive integers. Find $m+n$."
    )
    assert (
        index.match([f"A jar holds 7 red and 5 blue marbles; two are drawn without replacement. {boilerplate}"]) == {}
    )


@needs_data
def test_minhash_finds_planted_near_duplicates_and_keeps_one_of_each():
    rng = random.Random(1)
    problems = math_problems()
    originals = [text for text in problems if len(text.split()) >= 40][:60]
    planted = []
    for number, text in enumerate(originals):
        words = text.split()
        words[rng.randrange(len(words))] = "(reworded)"
        planted.append(" ".join(words) + (" Explain." if number % 2 else ""))
    options = DedupOptions()
    hashes = shingle_hashes(originals + planted, options.shingle)
    similarity = [jaccard(a, b) for a, b in zip(hashes[: len(originals)], hashes[len(originals) :], strict=False)]
    pool = originals + [text for text in problems if text not in originals][:300] + planted
    keys = [f"p{i}" for i in range(len(pool) - len(planted))] + [f"d{i}" for i in range(len(planted))]
    found = near_duplicates(keys, pool, options)
    # LSH may miss a pair right at the threshold; planted pairs clearly above it must all be found.
    clear = {f"d{i}": f"p{i}" for i, value in enumerate(similarity) if value >= 0.87}
    assert len(clear) >= 40
    assert {key: found.get(key) for key in clear} == clear
    assert all(key.startswith("d") and similarity[int(key[1:])] >= options.threshold for key in found)


def test_exact_match_ignores_case_spacing_punctuation_and_variable_names():
    index = BenchmarkIndex(read_items(["Solve for $x$: $3x + 5 = 20$."]), 13)
    hit = index.match(["solve FOR  $y$ ;  $3y+5=20$ !"])[0]
    assert hit.kind == "exact match" and hit.item.item_id == "0"
    assert index.match(["Solve for $x$: $3x + 5 = 21$."]) == {}


def read_items(texts):
    from rdistill.curate.decontaminate import BenchmarkItem

    return [BenchmarkItem("toy", str(number), text) for number, text in enumerate(texts)]
