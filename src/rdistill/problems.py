"""Stage `problems`: build the problem pool and the held-out evaluation sets (`problems.parquet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdistill.config import MicroWorldOptions, ProblemsOptions
from rdistill.data import write_parquet
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import RecipeError
from rdistill.micro.problems import FACT_COUNT, generate_problems

OUTPUT = "problems.parquet"


def eval_size(domain: str, options: MicroWorldOptions) -> int:
    """Held-out problems of `domain`: the fact look-ups are capped by the facts the pool leaves out."""
    if domain == "text":
        return min(options.eval_per_domain, FACT_COUNT - options.text)
    return options.eval_per_domain


def micro_pool(options: ProblemsOptions) -> list[dict[str, Any]]:
    """Training pool and eval sets of the micro-world; eval prompts never occur in the pool."""
    world = options.micro
    pool: list[dict[str, Any]] = []
    for domain in ("math", "code", "text"):
        try:
            train = generate_problems(domain, getattr(world, domain), world.difficulties, seed=world.seed)
            held_out = generate_problems(
                domain,
                eval_size(domain, world),
                world.difficulties,
                seed=world.seed + 7919,
                exclude={p["prompt"] for p in train},
            )
        except ValueError as error:
            raise RecipeError(
                f"problems.micro.{domain}: {error}; ask for fewer problems or more difficulties"
            ) from error
        pool += train + [{**problem, "split": "eval"} for problem in held_out]
    return pool


def run(options: ProblemsOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `problems.parquet` for the recipe's problem source."""

    def work() -> dict[str, Any]:
        rows = micro_pool(options)
        write_parquet(rows, Path(run_dir) / OUTPUT)
        counts: dict[str, int] = {}
        for row in rows:
            key = f"{row['split']}/{row['domain']}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    return run_stage(run_dir, "problems", options, [], [OUTPUT], work, ctx)
