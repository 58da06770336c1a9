"""`rdistill plan`: what a recipe will cost before anything is spent.

Per stage: requests, prompt and completion tokens, training tokens and optimiser steps, GPU-hours
from stated throughputs and dollars from stated prices. It touches no model and no endpoint:
the micro-world's pool is drawn (procedural, seconds) and its procedural teachers' lengths are
measured on a sample of it; a served teacher's mean completion length is declared (default half
its `max_tokens`), prompts are counted in words times TOKENS_PER_WORD. It reads stage modules'
own functions (the pool, the requests), so it is an entry point.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from rdistill.config import ModelSpec, Recipe

TOKENS_PER_WORD = 1.3
# Problems whose rollouts are written to measure a procedural teacher's mean lengths.
MEASURE_SAMPLE = 200
# Default throughputs per GPU by student size (parameters up to the bound): training tokens/s
# (full fine-tuning, bf16, packed) and generated tokens/s (batched vLLM decoding). Rough figures for
# an H100-class GPU; --train-tokens-per-s and --generate-tokens-per-s override them.
THROUGHPUTS = (
    (2e9, 20_000, 20_000),
    (8e9, 6_000, 8_000),
    (15e9, 3_000, 4_000),
    (35e9, 1_200, 1_500),
    (float("inf"), 500, 600),
)


@dataclass(frozen=True)
class Prices:
    """What a GPU-hour and a million served-teacher tokens cost, and the throughputs to turn tokens into hours."""

    gpu_hour: float = 3.0
    prompt_mtok: float = 0.5
    completion_mtok: float = 2.0
    train_tokens_per_s: float | None = None
    generate_tokens_per_s: float | None = None
    teacher_completion_tokens: float | None = None


def _words(text: str) -> int:
    return len(text.split())


def _pool(recipe: Recipe) -> list[dict[str, Any]]:
    """The recipe's pool as the problems stage builds it (a hub pool is read from the hub: network)."""
    from rdistill.data.pools import load_pool
    from rdistill.problems import micro_pool

    return micro_pool(recipe.problems.micro) if recipe.problems.source == "micro" else load_pool(recipe.problems)


def measured_lengths(teacher: ModelSpec, problems: list[dict[str, Any]], recipe: Recipe) -> tuple[float, float]:
    """Mean (prompt, completion) tokens of a procedural teacher, from its rollouts on a sample of the pool."""
    from rdistill.backends import make_backend
    from rdistill.generate import pending_requests

    step = max(1, len(problems) // MEASURE_SAMPLE)
    requests = pending_requests(teacher, problems[::step], recipe.generate, set())
    counts: list[tuple[int, int]] = []
    backend = make_backend(teacher, "generate.teachers")
    backend.generate(
        requests,
        teacher.sampling or recipe.generate.sampling,
        lambda done: counts.append((done.prompt_tokens, done.completion_tokens)),
    )
    backend.close()
    return (sum(c[0] for c in counts) / len(counts), sum(c[1] for c in counts) / len(counts)) if counts else (0, 0)


def _teacher_plan(teacher: ModelSpec, train: list[dict[str, Any]], recipe: Recipe, prices: Prices) -> dict[str, Any]:
    samples = recipe.generate.samples_per_problem
    sampling = teacher.sampling or recipe.generate.sampling
    if teacher.backend == "micro":
        prompt, completion = measured_lengths(teacher, train, recipe)
        source = "measured"
    else:
        prompt = TOKENS_PER_WORD * sum(_words(p["prompt"]) for p in train) / max(len(train), 1)
        completion = prices.teacher_completion_tokens or sampling.max_tokens / 2
        source = "declared" if prices.teacher_completion_tokens else "assumed: half of max_tokens"
    rollouts = len(train) * samples
    entry = {
        "requests": math.ceil(rollouts / teacher.samples_per_request),
        "rollouts": rollouts,
        "prompt_tokens": round(rollouts * prompt),
        "completion_tokens": round(rollouts * completion),
        "mean_completion_tokens": round(completion, 1),
        "lengths": source,
    }
    if teacher.backend == "openai":
        entry["dollars"] = round(
            entry["prompt_tokens"] / 1e6 * prices.prompt_mtok
            + entry["completion_tokens"] / 1e6 * prices.completion_mtok,
            2,
        )
    return entry


def student_parameters(recipe: Recipe) -> int:
    """Parameters of the base student: from the micro config, a local folder's config.json or a GGUF header
    (input and output embeddings counted once when the config ties them)."""
    tied = False
    if recipe.base.student == "micro":
        micro = recipe.base.micro
        layers, hidden, inner, vocab = micro.num_layers, micro.hidden_size, micro.intermediate_size, micro.vocab_size
    else:
        from rdistill.base import local_model
        from rdistill.models import gguf_sizes, is_gguf

        path = local_model(recipe.base)
        config = gguf_sizes(path) if is_gguf(path) else json.loads((path / "config.json").read_text(encoding="utf-8"))
        layers, hidden = config["num_hidden_layers"], config["hidden_size"]
        inner, vocab = config["intermediate_size"], config["vocab_size"]
        tied = bool(config.get("tie_word_embeddings"))
    return int(layers * (4 * hidden * hidden + 3 * hidden * inner) + (1 if tied else 2) * vocab * hidden)


def _throughputs(parameters: int, prices: Prices) -> tuple[float, float]:
    train, generate = next((t, g) for bound, t, g in THROUGHPUTS if parameters <= bound)
    return prices.train_tokens_per_s or train, prices.generate_tokens_per_s or generate


def _benchmark_sizes(recipe: Recipe, pool: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
    """(problems, k, max_tokens) per benchmark; a hub benchmark without `limit` counts as unknown (0), a
    log-likelihood one as one request per problem and no generated token."""
    from rdistill.data.benchmarks import sampling_of, source_path

    sizes = {}
    for index, spec in enumerate(recipe.evaluate.benchmarks):
        if spec.format == "micro":
            domain = spec.domain or spec.name
            count = sum(1 for p in pool if p["split"] == spec.split and p["domain"] == domain)
        elif spec.path:
            path = source_path(spec, f"evaluate.benchmarks[{index}]")
            count = sum(1 for line in path.read_bytes().splitlines() if line.strip())
        else:
            count = 0
        count = min(count, spec.limit) if spec.limit else count
        k, sampling = sampling_of(spec, recipe.evaluate)
        # log-likelihood scoring generates nothing: one scored pass per problem
        sizes[spec.name] = (count, 1, 0) if spec.scoring == "loglikelihood" else (count, k, sampling.max_tokens)
    return sizes


def plan(recipe: Recipe, prices: Prices = Prices()) -> dict[str, Any]:
    """The cost estimate of every stage of `recipe` (see the module's docstring for where each number comes from)."""
    pool = _pool(recipe)
    train = [p for p in pool if p["split"] == "train"]
    teachers = {t.name: _teacher_plan(t, train, recipe, prices) for t in recipe.generate.teachers}
    parameters = student_parameters(recipe)
    train_rate, generate_rate = _throughputs(parameters, prices)
    rollouts = sum(t["rollouts"] for t in teachers.values())
    examples = min(recipe.curate.budget, rollouts)
    mean_tokens = sum(t["prompt_tokens"] + t["completion_tokens"] for t in teachers.values()) / max(rollouts, 1)
    training_tokens = sum(examples * mean_tokens * stage.sft.epochs for stage in recipe.train.schedule())
    steps = sum(math.ceil(examples * stage.sft.epochs / stage.sft.batch_size) for stage in recipe.train.schedule())
    students = int(recipe.evaluate.base) + int(recipe.evaluate.distilled) + len(recipe.evaluate.students)
    benchmarks = {
        name: {
            "problems": count,
            "k": k,
            "requests": count * k * students,
            "max_completion_tokens": count * k * students * cap,
        }
        for name, (count, k, cap) in _benchmark_sizes(recipe, pool).items()
    }
    eval_tokens = sum(b["max_completion_tokens"] for b in benchmarks.values())
    gpu_hours = {
        "train": training_tokens / train_rate / 3600,
        "evaluate (upper bound)": eval_tokens / generate_rate / 3600,
    }
    dollars = sum(t.get("dollars", 0.0) for t in teachers.values()) + sum(gpu_hours.values()) * prices.gpu_hour
    return {
        "pool": {"train": len(train), "all": len(pool)},
        "generate": teachers,
        "train": {
            "examples": examples,
            "mean_example_tokens": round(mean_tokens, 1),
            "tokens": round(training_tokens),
            "steps": steps,
            "student_parameters": parameters,
            "tokens_per_s_per_gpu": train_rate,
        },
        "evaluate": {"benchmarks": benchmarks, "students": students, "generated_tokens_per_s_per_gpu": generate_rate},
        "gpu_hours": {key: round(value, 6) for key, value in gpu_hours.items()},
        "dollars": round(dollars, 2),
        "prices": {
            "gpu_hour": prices.gpu_hour,
            "prompt_mtok": prices.prompt_mtok,
            "completion_mtok": prices.completion_mtok,
        },
    }
