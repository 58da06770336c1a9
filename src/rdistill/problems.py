"""Stage `problems`: build the problem pool and the held-out evaluation sets (`problems.parquet`).

For the micro-world the held-out sets come first and are fixed (`rdistill.micro.holdout`): the
first `eval_per_domain` items of each domain's eval set and `generalisation_per_domain` of its
generalisation set; the pool (`rdistill.micro.pools`) is drawn around them, never holding one.
File and hub pools (`rdistill.data.pools`) mix their sources, each row checked on load; their
held-out rows (split eval) come from each source's `eval_size`, `eval_split` or `eval_path`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from rdistill.config import MicroWorldOptions, ProblemsOptions
from rdistill.data import write_parquet
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.data.pools import load_pool, local_inputs
from rdistill.errors import RecipeError
from rdistill.micro.holdout import eval_set, generalisation_set, held_out
from rdistill.micro.pools import draw_pool
from rdistill.micro.problems import EVAL_FACTS, FACT_WORDINGS, FACTS, text_problem

OUTPUT = "problems.parquet"


def rehearsal_facts(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` look-ups of the facts outside the out-of-domain eval set, in both wordings, seeded."""
    items = [text_problem(fact, wording) for fact in FACTS[EVAL_FACTS:] for wording in range(len(FACT_WORDINGS))]
    return random.Random(f"rehearsal-{seed}").sample(items, count)


def micro_pool(world: MicroWorldOptions) -> list[dict[str, Any]]:
    """Training pool, eval and generalisation sets of the micro-world; nothing in the pool is held out."""
    rows: list[dict[str, Any]] = []
    for domain in ("math", "code"):
        try:
            pool = draw_pool(
                domain,
                getattr(world, domain),
                world.difficulties,
                world.level_weights(),
                world.duplicate_share,
                world.seed,
                held_out(),
            )
        except ValueError as error:
            raise RecipeError(f"problems.micro.{domain}: {error}; ask for fewer problems or other levels") from error
        rows += pool + list(eval_set(domain)[: world.eval_per_domain])
        rows += list(generalisation_set(domain)[: world.generalisation_per_domain])
    rows += rehearsal_facts(world.text, world.seed) + list(eval_set("text")[: world.eval_per_domain])
    return rows


def counts_of(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per split and domain, and the pool's copies by kind (near duplicates, paraphrases, rewordings)."""
    counts = Counter(f"{row['split']}/{row['domain']}" for row in rows)
    counts.update(
        f"train/{row['domain']}/{copy}"
        for row in rows
        if row["split"] == "train" and (copy := json.loads(row["meta"]).get("copy"))
    )
    return dict(sorted(counts.items()))


def run(options: ProblemsOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `problems.parquet` for the recipe's problem source."""

    def work() -> dict[str, Any]:
        rows = micro_pool(options.micro) if options.source == "micro" else load_pool(options)
        write_parquet(rows, Path(run_dir) / OUTPUT)
        return counts_of(rows)

    return run_stage(run_dir, "problems", options, local_inputs(options), [OUTPUT], work, ctx)
