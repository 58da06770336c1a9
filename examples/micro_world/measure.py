"""The micro-world's measured tables (docs/micro-world.md, "Measured"), from finished sweeps.

Run the two sweeps first, then this script on their run directories:

    rdistill sweep recipes/world/forgetting.yaml   # the direct base: full, rehearsal, LoRA x 3 seeds
    rdistill sweep recipes/world/reasoner.yaml     # the reasoner base: full x 3 seeds
    python examples/micro_world/measure.py runs/forgetting runs/reasoner

It prints, as Markdown: each base's negative log-likelihood per token on each teacher's traces
(three samples of 200 problems, mean and range), and the distilled students' accuracy per
benchmark and group (mean, sample standard deviation and a 95 % t-interval over the seeds).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from rdistill.data import VERIFIED_COLUMNS, read_base, read_records
from rdistill.teachers.signals import common_problem_sample, student_nll

T_975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}  # two-sided 95 % t quantiles by sample size (df = n - 1)
NLL_SEEDS = (0, 1, 2)
NLL_TRACES = 200


def nll_table(parents: dict[str, Path]) -> str:
    """Per base and teacher: NLL per token of the base on three samples of the teacher's first-sample traces."""
    rows = ["| base | teacher | NLL per token, mean | range over 3 samples |", "|---|---|---|---|"]
    for base, parent in parents.items():
        by_teacher = defaultdict(list)
        for row in read_records(parent / "verified.parquet", VERIFIED_COLUMNS):
            by_teacher[row["teacher"]].append(row)
        values = defaultdict(list)
        for seed in NLL_SEEDS:
            for teacher, nll in student_nll(
                read_base(parent), common_problem_sample(by_teacher, NLL_TRACES, seed)
            ).items():
                values[teacher].append(nll)
        for teacher, nlls in sorted(values.items()):
            rows.append(f"| {base} | {teacher} | {statistics.fmean(nlls):.3f} | {min(nlls):.3f} – {max(nlls):.3f} |")
    return "\n".join(rows)


def interval(values: list[float]) -> str:
    """Mean ± sd [95 % t-interval] of accuracies, in percent."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{100 * mean:.1f}"
    sd = statistics.stdev(values)
    half = T_975.get(len(values), 1.96) * sd / math.sqrt(len(values))
    return f"{100 * mean:.1f} ± {100 * sd:.1f} [{100 * (mean - half):.1f}, {100 * (mean + half):.1f}]"


def accuracy_table(parents: dict[str, Path]) -> str:
    """Per base and variant: the distilled students' accuracy over seeds, and the base's own."""
    summaries = {base: json.loads((parent / "sweep" / "summary.json").read_text()) for base, parent in parents.items()}
    benchmarks = list(next(iter(summaries.values()))["base"])
    header = "| base | cells | " + " | ".join(benchmarks) + " | in-domain | generalisation | out-of-domain |"
    rows = [header, "|" + "---|" * (len(benchmarks) + 5)]
    for base, summary in summaries.items():
        own = summary["base"]
        rows.append(f"| {base} | base | " + " | ".join(f"{100 * own[b]:.1f}" for b in benchmarks) + " | | | |")
        for group in summary["groups"]:
            cells = [cell for cell in summary["cells"] if cell["group"] == group["group"]]
            per_benchmark = [interval([cell["accuracy"][b] for cell in cells]) for b in benchmarks]
            groups = [interval([cell[g] for cell in cells]) if cells[0].get(g) is not None else "–" for g in
                      ("in_domain", "generalisation", "out_of_domain")]  # fmt: skip
            rows.append(
                f"| {base} | {group['group']} ({len(cells)} seeds) | " + " | ".join(per_benchmark + groups) + " |"
            )
    return "\n".join(rows)


def main(direct: str, reasoner: str) -> None:
    """Print both tables for the two sweeps' parent run directories."""
    parents = {"direct": Path(direct), "reasoner": Path(reasoner)}
    print("## Base NLL per token on each teacher's traces\n")
    print(nll_table(parents))
    print("\n## Accuracy after the demo's distillation (%, mean ± sd [95 % t-interval] over seeds)\n")
    print(accuracy_table(parents))


if __name__ == "__main__":
    main(*sys.argv[1:3])
