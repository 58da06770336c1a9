"""Selection to a budget: a strategy orders the problems, their traces fill the budget, quotas split it.

Every strategy only *orders* problems. With a trajectory cap k, each problem in that order
brings its k traces (DED's several trajectories per problem). Without one, the budget fills in
passes: the first trace of every problem, then the second of each, and so on, so that a small
budget covers as many problems as it can (question diversity matters more than traces per
question in OpenCodeReasoning). With domain quotas (DED) each domain fills its share of the budget from its
own order; a domain that runs out leaves its shortfall to the others, largest quota first.
A token budget (`budget_tokens`) also stops the selection once the traces' teacher tokens would
exceed it, so that study arms with different traces per problem train on equal tokens.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rdistill.config import CurateOptions, DiversityOptions

TOPIC_KEYS = ("subject", "topic", "type", "platform")
# Strategies that rank by a per-trace student signal (teacher_signals.parquet), and its column.
SIGNAL_STRATEGIES = {"rsr": "rsr", "local": "local_nll"}


@dataclass
class Candidate:
    """A problem that still has acceptable traces, with what the strategies rank it by."""

    problem_id: str
    domain: str
    text: str
    level: int
    topic: str
    traces: list[dict[str, Any]] = field(default_factory=list)

    @property
    def quality(self) -> int:
        """0 when one of its traces is verified correct, 1 otherwise (s1's first criterion)."""
        return 0 if any(trace["correct"] is True for trace in self.traces) else 1

    @property
    def longest(self) -> int:
        """Tokens of its longest trace: s1 prefers problems that need long reasoning."""
        return max((trace["completion_tokens"] or 0) for trace in self.traces)


def topic_of(problem: dict[str, Any]) -> str:
    """The problem's topic for s1's diversity: a subject-like field of `meta`, else its domain."""
    meta = json.loads(problem.get("meta") or "{}")
    return next(
        (f"{problem['domain']}/{meta[key]}" for key in TOPIC_KEYS if isinstance(meta.get(key), str)), problem["domain"]
    )


def _shuffled(candidates: list[Candidate], rng: random.Random) -> list[Candidate]:
    shuffled = list(candidates)
    rng.shuffle(shuffled)
    return shuffled


def _interleave(groups: list[list[Candidate]]) -> list[Candidate]:
    """One from each group in turn, until all are used up."""
    order = []
    for depth in range(max((len(group) for group in groups), default=0)):
        order += [group[depth] for group in groups if depth < len(group)]
    return order


def stratified(candidates: list[Candidate], rng: random.Random) -> list[Candidate]:
    """Equal shares per difficulty level: levels taken in turn, random within a level."""
    levels = sorted({c.level for c in candidates})
    return _interleave([_shuffled([c for c in candidates if c.level == level], rng) for level in levels])


def s1_order(candidates: list[Candidate], rng: random.Random) -> list[Candidate]:
    """s1: quality first, then the hardest (longest-reasoning) problems, spread across topics in turn."""
    shuffled = _shuffled(candidates, rng)
    topics = sorted({c.topic for c in candidates})
    rng.shuffle(topics)
    ranked = {
        topic: sorted((c for c in shuffled if c.topic == topic), key=lambda c: (c.quality, -c.level, -c.longest))
        for topic in topics
    }
    return _interleave([ranked[topic] for topic in topics])


def _signal(trace: dict[str, Any], key: str) -> float:
    """A trace's student signal, lower is better; a trace the teachers stage did not score comes last."""
    value = trace.get(key)
    return math.inf if value is None else value


def signal_order(candidates: list[Candidate], key: str, rng: random.Random) -> list[Candidate]:
    """Problems by their best trace's signal (rank–surprisal or local NLL, lowest first), each one's traces best first.

    The traces of a problem are reordered too, so that a budget filled one trace per problem
    takes the best of each (the papers' response selection).
    """
    for candidate in candidates:
        candidate.traces.sort(key=lambda trace: _signal(trace, key))
    return sorted(_shuffled(candidates, rng), key=lambda c: _signal(c.traces[0], key) if c.traces else math.inf)


def embed(texts: list[str], options: DiversityOptions) -> np.ndarray:
    """Unit-length vectors of the problems: mean-pooled hidden states of a local model, or TF-IDF."""
    if options.embedding_model is None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)).fit_transform(texts)
    return _model_embeddings(texts, options)


def _model_embeddings(texts: list[str], options: DiversityOptions) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(options.embedding_model)
    model = AutoModel.from_pretrained(options.embedding_model).eval()
    vectors = []
    with torch.no_grad():
        for start in range(0, len(texts), options.batch_size):
            batch = tokenizer(
                texts[start : start + options.batch_size], padding=True, truncation=True, return_tensors="pt"
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    matrix = np.concatenate(vectors)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _similarities(vectors: Any, index: int) -> np.ndarray:
    """Cosine similarity of every problem to problem `index` (rows are unit length; TF-IDF's are sparse)."""
    product = vectors @ vectors[index].T
    return (product.toarray() if hasattr(product, "toarray") else np.asarray(product)).ravel()


def k_center(candidates: list[Candidate], count: int, options: DiversityOptions, rng: random.Random) -> list[Candidate]:
    """Greedy k-center over problem embeddings: a seeded first centre, then always the farthest problem.

    Only the first `count` centres are computed (a budget never needs more problems than it has
    examples); the rest follow in seeded-random order.
    """
    if len(candidates) <= 1:
        return list(candidates)
    vectors = embed([c.text for c in candidates], options)
    first = rng.randrange(len(candidates))
    order = [first]
    nearest = 1 - _similarities(vectors, first)
    nearest[first] = -np.inf
    while len(order) < min(count, len(candidates)):
        chosen = int(np.argmax(nearest))
        order.append(chosen)
        nearest = np.minimum(nearest, 1 - _similarities(vectors, chosen))
        nearest[order] = -np.inf
    centres = set(order)
    rest = [index for index in range(len(candidates)) if index not in centres]
    rng.shuffle(rest)
    return [candidates[index] for index in order + rest]


def order_problems(
    candidates: list[Candidate], options: CurateOptions, count: int, rng: random.Random
) -> list[Candidate]:
    """The problems in the order the strategy wants them in the training set."""
    if options.strategy == "random":
        return _shuffled(candidates, rng)
    if options.strategy in ("easy_first", "hard_first"):
        sign = 1 if options.strategy == "easy_first" else -1
        return sorted(_shuffled(candidates, rng), key=lambda c: sign * c.level)
    if options.strategy == "stratified":
        return stratified(candidates, rng)
    if options.strategy == "diversity":
        return k_center(candidates, count, options.diversity, rng)
    if options.strategy in SIGNAL_STRATEGIES:
        return signal_order(candidates, SIGNAL_STRATEGIES[options.strategy], rng)
    return s1_order(candidates, rng)


def budget_order(ordered: list[Candidate], problem_major: bool) -> list[tuple[Candidate, dict[str, Any]]]:
    """(problem, trace) pairs in the order they fill the budget.

    Problem-major (a trajectory cap is set: each chosen problem brings its k traces) or
    round-robin (no cap: every problem's first trace, then every second, and so on).
    """
    if problem_major:
        return [(c, trace) for c in ordered for trace in c.traces]
    return [
        (c, c.traces[depth])
        for depth in range(max((len(c.traces) for c in ordered), default=0))
        for c in ordered
        if depth < len(c.traces)
    ]


def quota_targets(budget: int, quotas: dict[str, float]) -> dict[str, int]:
    """The budget split by the shares, rounded by largest remainder so that the parts sum to the budget."""
    exact = {domain: budget * share for domain, share in sorted(quotas.items())}
    targets = {domain: int(value) for domain, value in exact.items()}
    for domain in sorted(exact, key=lambda d: (targets[d] - exact[d], d))[: budget - sum(targets.values())]:
        targets[domain] += 1
    return targets


def within_tokens(
    pairs: list[tuple[Candidate, dict[str, Any]]], limit: int | None
) -> list[tuple[Candidate, dict[str, Any]]]:
    """The longest prefix of `pairs` whose traces' teacher tokens fit in `limit` (all of them when None).

    A prefix, not a knapsack: the budget's order is the strategy's ranking, and skipping a long
    trace to fit a shorter later one would quietly favour short traces.
    """
    if limit is None:
        return pairs
    used = 0
    for index, (_, trace) in enumerate(pairs):
        used += trace["completion_tokens"] or 0
        if used > limit:
            return pairs[:index]
    return pairs


def select_budget(
    candidates: list[Candidate], options: CurateOptions
) -> tuple[list[tuple[Candidate, dict[str, Any]]], dict[str, Any]]:
    """The chosen (problem, trace) pairs, exactly the budget when enough are eligible, and how quotas fared."""
    problem_major = options.trajectories.per_problem is not None or bool(options.trajectories.per_level)
    if not options.quotas:
        ordered = order_problems(candidates, options, options.budget, random.Random(f"{options.seed}-all"))
        return within_tokens(budget_order(ordered, problem_major)[: options.budget], options.budget_tokens), {}
    targets = quota_targets(options.budget, options.quotas)
    token_targets = quota_targets(options.budget_tokens, options.quotas) if options.budget_tokens else {}
    sequences = {}
    for domain in sorted(options.quotas):
        members = [c for c in candidates if c.domain == domain]
        ordered = order_problems(members, options, targets[domain], random.Random(f"{options.seed}-{domain}"))
        sequences[domain] = within_tokens(budget_order(ordered, problem_major), token_targets.get(domain))
    taken = {domain: min(targets[domain], len(sequences[domain])) for domain in sequences}
    shortfall = options.budget - sum(taken.values())
    for domain in sorted(sequences, key=lambda d: (-options.quotas[d], d)):
        extra = min(shortfall, len(sequences[domain]) - taken[domain])
        taken[domain] += extra
        shortfall -= extra
    chosen = [pair for domain in sequences for pair in sequences[domain][: taken[domain]]]
    return chosen, {
        "targets": targets,
        "selected": taken,
        "short_of_target": {d: targets[d] - min(targets[d], len(sequences[d])) for d in sequences},
    }
