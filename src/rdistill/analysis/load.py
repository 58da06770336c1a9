"""A finished sweep directory as per-(cell, student, benchmark, problem) scores, the unit every interval resamples.

`rdistill sweep` leaves `sweep/summary.json` (the cells: name, group, seed, overrides, examples)
and, per cell, `sweep/CELL/eval/BENCH.parquet` (one row per student, problem and sample) with
`eval/summary.json` (which benchmarks are in-domain, generalisation, out-of-domain). The loader
reads only those files (docs/schema.md), so it works on any sweep the existing code builds and
on a synthetic one a test writes.

Samples are averaged per problem (the share right, finished, with a closed think block; the
mean tokens), because problems and seeds, not samples, are what the bootstrap resamples. The
base student's rows are kept (student 'base'); a sweep answers the base once and links the
answers, so `base_scores` takes them from the first cell that has them. A scope is a benchmark
name or a group name; a group's problems are pooled, so each problem counts once (the group
mean of eval/summary.json counts each benchmark once: the two agree when the benchmarks have
equally many problems, as the micro-world's do).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rdistill.data.schema import GROUPS

MEASURES = ("correct", "finished", "has_think", "tokens")
READ_COLUMNS = ("student", "benchmark", "problem_id", "sample_index", "difficulty") + MEASURES
KEY = ["cell", "student", "benchmark", "problem_id"]


@dataclass(frozen=True)
class SweepScores:
    """`cells`: one row per cell (name, group, seed, examples, one column per override key).
    `problems`: one row per (cell, student, benchmark, problem_id) with its scope group, difficulty,
    samples and the per-problem means of MEASURES."""

    cells: pd.DataFrame
    problems: pd.DataFrame


def _problem_means(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    rows = pq.read_table(path, columns=list(READ_COLUMNS)).to_pandas()
    rows[list(MEASURES)] = rows[list(MEASURES)].astype(float)
    return rows.groupby(KEY[1:], sort=True, as_index=False).agg(
        difficulty=("difficulty", "first"),
        samples=("sample_index", "size"),
        **{measure: (measure, "mean") for measure in MEASURES},
    )


def _cell_problems(name: str, cell_dir: Path) -> pd.DataFrame:
    summary = json.loads((cell_dir / "eval" / "summary.json").read_text())
    group_of = {bench: group for group in GROUPS for bench in summary.get(group) or []}
    frames = [_problem_means(cell_dir / "eval" / f"{bench}.parquet") for bench in summary["benchmarks"]]
    problems = pd.concat(frames, ignore_index=True)
    problems.insert(0, "cell", name)
    problems["scope"] = problems["benchmark"].map(group_of)
    return problems


def load_sweep(run_dir: str | Path) -> SweepScores:
    """Read a finished sweep: `run_dir` is the parent run directory (the one holding sweep/summary.json)."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "sweep" / "summary.json").read_text())
    cells = pd.DataFrame(
        [
            {"name": c["name"], "group": c["group"], "seed": c["seed"], "examples": c["examples"]} | c["overrides"]
            for c in summary["cells"]
        ]
    )
    problems = pd.concat(
        [_cell_problems(c["name"], run_dir / "sweep" / c["name"]) for c in summary["cells"]], ignore_index=True
    )
    return SweepScores(cells, problems)


def _in_scope(problems: pd.DataFrame, scope: str) -> pd.DataFrame:
    chosen = problems[(problems["scope"] == scope) if scope in GROUPS else (problems["benchmark"] == scope)]
    if chosen.empty:
        raise ValueError(f"no problems in scope {scope!r} (a benchmark or one of {', '.join(GROUPS)})")
    return chosen


def score_matrix(
    sweep: SweepScores, cells: list[str], measure: str, scope: str, student: str = "distilled"
) -> np.ndarray:
    """(len(cells), problems) scores: one row per cell in the given order (seeds), problems by benchmark and id."""
    chosen = _in_scope(sweep.problems, scope)
    chosen = chosen[(chosen["student"] == student) & chosen["cell"].isin(cells)]
    table = chosen.pivot(index="cell", columns=["benchmark", "problem_id"], values=measure).reindex(cells)
    if table.isna().to_numpy().any():
        raise ValueError(f"cells {cells} do not share their {scope} problems (or one lacks {student} rows)")
    return table.sort_index(axis=1).to_numpy()


def series(
    sweep: SweepScores, by: str, measure: str, scope: str, where: dict[str, Any] | None = None
) -> dict[Any, np.ndarray]:
    """The distilled student's (seeds, problems) scores per value of a cells column (an override key such as
    `curate.budget`), over the cells matching `where` (column -> value); seeds ordered, so arms pair by row."""
    cells = sweep.cells
    for column, value in (where or {}).items():
        cells = cells[cells[column] == value]
    return {
        value: score_matrix(sweep, members.sort_values("seed")["name"].tolist(), measure, scope)
        for value, members in cells.groupby(by, sort=True)
    }


def base_scores(sweep: SweepScores, measure: str, scope: str) -> np.ndarray:
    """The base student's per-problem scores (problems by benchmark and id), from the first cell that has them."""
    base = _in_scope(sweep.problems, scope)
    base = base[base["student"] == "base"]
    if base.empty:
        raise ValueError(f"no base rows in scope {scope!r}: the sweep did not evaluate the base")
    return score_matrix(sweep, [base["cell"].iloc[0]], measure, scope, student="base")[0]


def cell_means(sweep: SweepScores, scope: str, student: str = "distilled") -> pd.DataFrame:
    """Per cell: its `cells` columns and the mean over the scope's problems of every measure (rates vs size)."""
    chosen = _in_scope(sweep.problems, scope)
    means = chosen[chosen["student"] == student].groupby("cell")[list(MEASURES)].mean()
    return sweep.cells.merge(means, left_on="name", right_index=True, how="inner")
