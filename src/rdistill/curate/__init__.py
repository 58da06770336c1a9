"""Stage `curate`: turn verified rollouts into a small training set, explaining every choice.

Steps, in order, each configured in the recipe's `curate` section:
1. teacher: keep the traces of the teachers chosen in teachers.json;
2. decontaminate: drop problems overlapping the run's eval split, the recipe's benchmarks or extra files;
3. filters: truncation, correctness, think tags, extracted answer, repetition, token length;
4. dedup: one representative per cluster of near-duplicate problems (MinHash LSH);
5. trajectories: at most k of a problem's traces, the most different ones;
6. select: a strategy orders the problems and the budget is filled, under domain quotas.
Every rollout gets a row in `selection.parquet` with the step that kept or dropped it and why;
`curation.json` holds the funnel, the histograms and every decontamination hit.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rdistill.config import CurateOptions
from rdistill.curate.decontaminate import BenchmarkIndex, BenchmarkItem, Hit, eval_items, read_benchmark_file
from rdistill.curate.difficulty import problem_levels
from rdistill.curate.filters import first_failure, repetition, student_token_counts, trace_checks
from rdistill.curate.select import SIGNAL_STRATEGIES, Candidate, select_budget, topic_of
from rdistill.curate.trajectories import arrange
from rdistill.data import (
    PROBLEM_COLUMNS,
    VERIFIED_COLUMNS,
    read_parquet,
    read_records,
    sft_messages,
    write_json,
    write_jsonl,
    write_parquet,
)
from rdistill.data.benchmarks import source_path, statements
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import DataError, RecipeError
from rdistill.similarity.minhash import near_duplicates

SFT_OUTPUT = "sft.jsonl"
SELECTION_OUTPUT = "selection.parquet"
CURATION_OUTPUT = "curation.json"
STEPS = ("teacher", "decontaminate", "filters", "dedup", "trajectories", "select")
SELECTION_COLUMNS = ("problem_id", "teacher", "sample_index", "domain", "difficulty", "correct", "completion_tokens")
SELECTION_EXTRA = (
    "kept",
    "step",
    "why",
    "level",
    "pass_rate",
    "repetition",
    "student_tokens",
    "matched",
    "duplicate_of",
    "student_nll",
    "rsr",
    "local_nll",
)
SIGNALS_INPUT = "teacher_signals.parquet"
# The per-trace student signals the teachers stage measured (rdistill.signals), carried into selection.parquet.
TRACE_SIGNAL_COLUMNS = ("student_nll", "rsr", "local_nll")
LENGTH_BINS = 10

__all__ = ["curate", "run"]


def _drop(row: dict[str, Any], step: str, why: str) -> None:
    row.update(kept=False, step=step, why=why)


def _decontaminate(
    rows: list[dict[str, Any]], problems: dict[str, dict[str, Any]], options: CurateOptions
) -> dict[str, Hit]:
    """Problem id -> its hit, against the run's eval split, the recipe's benchmarks and its extra files."""
    settings = options.decontaminate
    if not settings.enabled:
        return {}
    items = eval_items(list(problems.values()))
    for index, spec in enumerate(settings.benchmarks or []):
        where = f"curate.decontaminate.benchmarks[{index}]"
        items += [BenchmarkItem(spec.name, item_id, text) for item_id, text in statements(spec, where)]
    for path in settings.extra_files:
        items += read_benchmark_file(path, settings.text_fields)
    pool = sorted({row["problem_id"] for row in rows if row["step"] is None})
    hits = BenchmarkIndex(items, settings.ngram, settings.boilerplate_items, settings.template_share).match(
        [problems[pid]["prompt"] for pid in pool]
    )
    return {pool[position]: hit for position, hit in hits.items()}


def _dedup(rows: list[dict[str, Any]], problems: dict[str, dict[str, Any]], options: CurateOptions) -> dict[str, str]:
    """Problem id -> the representative it duplicates, among problems with acceptable traces.

    In the pool's order, not the rollouts': which of two duplicates is kept must not depend on
    which teacher's traces survived the filters (a study's arms keep different traces).
    """
    if not options.dedup.enabled:
        return {}
    acceptable = {row["problem_id"] for row in rows if row["step"] is None}
    order = [pid for pid in problems if pid in acceptable]
    return near_duplicates(order, [problems[pid]["prompt"] for pid in order], options.dedup)


def _annotate(rows: list[dict[str, Any]], problems: dict[str, dict[str, Any]], options: CurateOptions) -> None:
    """Add the measures the filters and the report use: difficulty level, pass rate, repetition, tokens."""
    levels, rates = problem_levels(rows, problems, options.difficulty)
    counts = student_token_counts(rows, options.filters)
    for index, row in enumerate(rows):
        row.update(
            level=levels[row["problem_id"]],
            pass_rate=rates[row["problem_id"]],
            repetition=round(repetition(f"{row['reasoning']}\n{row['response']}"), 4),
            student_tokens=counts[index] if counts is not None else None,
            kept=False,
            step=None,
            why=None,
            matched=None,
            duplicate_of=None,
        )


def _candidates(
    rows: list[dict[str, Any]], problems: dict[str, dict[str, Any]], options: CurateOptions
) -> list[Candidate]:
    """Problems with acceptable traces, each holding the traces the trajectory step lets through.

    In the pool's order, so that arms that keep different traces of the same problems (correct
    or incorrect ones, one teacher's or another's) draw the same problems from the same seed.
    """
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["step"] is None:
            by_problem[row["problem_id"]].append(row)
    candidates = []
    for pid in (pid for pid in problems if pid in by_problem):
        traces = by_problem[pid]
        problem = problems[pid]
        kept, over = arrange(traces, traces[0]["level"], options.trajectories, random.Random(f"{options.seed}-{pid}"))
        for row in over:
            _drop(row, "trajectories", f"over {len(kept)} traces for a level-{row['level']} problem")
        candidates.append(
            Candidate(pid, problem["domain"], problem["prompt"], traces[0]["level"], topic_of(problem), kept)
        )
    return candidates


def attach_signals(rows: list[dict[str, Any]], signals: list[dict[str, Any]], options: CurateOptions) -> None:
    """Give every rollout its student signals from teacher_signals.parquet (None where it was not scored).

    A strategy that ranks by a signal needs it on the traces it ranks: without any, it is a
    recipe error that says how to get them, not a silent random order.
    """
    by_key = {(s["teacher"], s["problem_id"], s["sample_index"]): s for s in signals}
    for row in rows:
        found = by_key.get((row["teacher"], row["problem_id"], row["sample_index"]), {})
        row.update({column: found.get(column) for column in TRACE_SIGNAL_COLUMNS})
    column = SIGNAL_STRATEGIES.get(options.strategy)
    if column is not None and not any(row[column] is not None for row in rows):
        raise RecipeError(
            f"curate.strategy: {options.strategy} ranks traces by {column}, but {SIGNALS_INPUT} has none; set "
            "teachers.signals.all_traces: true and rerun the teachers stage"
        )


def unsolved_by_some_teacher(rows: list[dict[str, Any]]) -> set[str]:
    """Problems that at least one of the run's teachers has no correct trace of."""
    teachers = {row["teacher"] for row in rows}
    solved_by: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row["correct"]:
            solved_by[row["problem_id"]].add(row["teacher"])
    return {row["problem_id"] for row in rows if solved_by[row["problem_id"]] != teachers}


def mixed_verdict_problems(rows: list[dict[str, Any]], options: CurateOptions, chosen: set[str]) -> set[str]:
    """Problems with a correct and an incorrect trace among the rollouts still undecided that pass every filter
    but correctness: the same problems for a study's correct and incorrect arms, whichever it keeps."""
    checks = trace_checks(options.model_copy(update={"correctness": "all"}), chosen)
    verdicts: dict[str, set[bool]] = defaultdict(set)
    for row in rows:
        if row["step"] is None and first_failure(row, checks) is None:
            verdicts[row["problem_id"]].add(bool(row["correct"]))
    return {pid for pid, seen in verdicts.items() if len(seen) == 2}


def teachers_kept(chosen: set[str], options: CurateOptions) -> set[str]:
    """The teachers whose traces curation may keep: those teachers.json chose, or the one `curate.teacher` names."""
    if options.teacher is None:
        return chosen
    if options.teacher not in chosen:
        raise RecipeError(
            f"curate.teacher: {options.teacher!r} is not among the chosen teachers ({', '.join(sorted(chosen))})"
        )
    return {options.teacher}


def curate(
    rows: list[dict[str, Any]], problems: dict[str, dict[str, Any]], chosen: set[str], options: CurateOptions
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Decide every rollout (kept, step, why and the measures behind it).

    Returns the kept rollouts in order and the details of the steps.
    """
    chosen = teachers_kept(chosen, options)
    _annotate(rows, problems, options)
    checks = trace_checks(options, chosen)
    unsolved = unsolved_by_some_teacher(rows) if options.same_problems else set()
    for row in rows:
        if row["teacher"] not in chosen:
            _drop(row, "teacher", "teacher not chosen")
        elif row["problem_id"] in unsolved:
            _drop(row, "teacher", "a teacher never solved the problem (same_problems)")
    hits = _decontaminate(rows, problems, options)
    for row in rows:
        if row["step"] is None and row["problem_id"] in hits:
            _drop(row, "decontaminate", f"contaminated ({hits[row['problem_id']].kind})")
            row["matched"] = hits[row["problem_id"]].describe()
    mixed = mixed_verdict_problems(rows, options, chosen) if options.mixed_verdicts else None
    for row in rows:
        if row["step"] is None and mixed is not None and row["problem_id"] not in mixed:
            _drop(row, "filters", "the problem lacks a correct or an incorrect trace (mixed_verdicts)")
    for row in rows:
        if row["step"] is None and (reason := first_failure(row, checks)) is not None:
            _drop(row, "filters", reason)
    duplicates = _dedup(rows, problems, options)
    for row in rows:
        if row["step"] is None and row["problem_id"] in duplicates:
            _drop(row, "dedup", "near-duplicate problem")
            row["duplicate_of"] = duplicates[row["problem_id"]]
    chosen_pairs, quotas = select_budget(_candidates(rows, problems, options), options)
    kept_rows = [trace for _, trace in chosen_pairs]
    for trace in kept_rows:
        trace.update(kept=True, step="select", why=f"selected ({options.strategy})")
    over = f"over budget {options.budget}" + (f" / {options.budget_tokens} tokens" if options.budget_tokens else "")
    for row in rows:
        if row["step"] is None:
            _drop(row, "select", over)
    details = {
        "decontamination": [
            {
                "problem_id": pid,
                "kind": hit.kind,
                "benchmark": hit.item.benchmark,
                "item_id": hit.item.item_id,
                "overlap": hit.overlap,
            }
            for pid, hit in sorted(hits.items())
        ],
        "near_duplicates": len(set(duplicates)),
        "quotas": quotas,
    }
    return kept_rows, details


def funnel(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step, in order: rollouts that reached it, how many it dropped, and why."""
    remaining = len(rows)
    table = []
    for step in STEPS:
        reasons = Counter(row["why"] for row in rows if row["step"] == step and not row["kept"])
        dropped = sum(reasons.values())
        table.append({"step": step, "in": remaining, "dropped": dropped, "reasons": dict(reasons.most_common())})
        remaining -= dropped
    return table


def histograms(rows: list[dict[str, Any]], levels: int) -> dict[str, Any]:
    """Trace length (teacher tokens) and difficulty level, before curation and among the kept traces."""
    lengths = [row["completion_tokens"] or 0 for row in rows]
    low, high = min(lengths, default=0), max(lengths, default=0)
    width = max(1, -(-(high - low + 1) // LENGTH_BINS))
    edges = [low + width * index for index in range(LENGTH_BINS + 1)]

    def length_counts(subset: list[dict[str, Any]]) -> list[int]:
        counts = [0] * LENGTH_BINS
        for row in subset:
            counts[min(LENGTH_BINS - 1, ((row["completion_tokens"] or 0) - low) // width)] += 1
        return counts

    kept = [row for row in rows if row["kept"]]
    return {
        "length": {"edges": edges, "before": length_counts(rows), "after": length_counts(kept)},
        "difficulty": {
            "levels": list(range(levels)),
            "before": [sum(r["level"] == lv for r in rows) for lv in range(levels)],
            "after": [sum(r["level"] == lv for r in kept) for lv in range(levels)],
        },
    }


def sft_example(row: dict[str, Any]) -> dict[str, Any]:
    """A kept rollout as a chat training example."""
    return {
        "messages": sft_messages(row),
        "problem_id": row["problem_id"],
        "teacher": row["teacher"],
        "why": row["why"],
    }


def run(options: CurateOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `sft.jsonl`, `selection.parquet` (a reason for every rollout) and `curation.json` (funnel, histograms)."""
    run_dir = Path(run_dir)
    extra_inputs = [str(path) for path in options.decontaminate.extra_files] + [
        str(source_path(spec, f"curate.decontaminate.benchmarks[{index}]").resolve())
        for index, spec in enumerate(options.decontaminate.benchmarks or [])
        if spec.path and options.decontaminate.enabled
    ]
    for path in options.decontaminate.extra_files:
        if not Path(path).is_file():
            raise RecipeError(f"curate.decontaminate.extra_files: {path} not found")

    def work() -> dict[str, Any]:
        rows = read_records(run_dir / "verified.parquet", VERIFIED_COLUMNS)
        problems = {p["id"]: p for p in read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)}
        unknown = next((number for number, row in enumerate(rows) if row["problem_id"] not in problems), None)
        if unknown is not None:
            raise DataError(
                f"{run_dir / 'verified.parquet'}: row {unknown}: problem_id {rows[unknown]['problem_id']!r} "
                f"is not in problems.parquet"
            )
        chosen = set(json.loads((run_dir / "teachers.json").read_text())["chosen"])
        signals_file = run_dir / SIGNALS_INPUT
        attach_signals(rows, read_parquet(signals_file) if signals_file.exists() else [], options)
        kept, details = curate(rows, problems, chosen, options)
        write_jsonl([sft_example(row) for row in kept], run_dir / SFT_OUTPUT)
        write_parquet(
            [{key: row[key] for key in SELECTION_COLUMNS + SELECTION_EXTRA} for row in rows], run_dir / SELECTION_OUTPUT
        )
        steps = funnel(rows)
        write_json(
            {
                "rollouts": len(rows),
                "kept": len(kept),
                "funnel": steps,
                "histograms": histograms(rows, options.difficulty.levels),
                **details,
            },
            run_dir / CURATION_OUTPUT,
        )
        return {"examples": len(kept), "rollouts": len(rows)} | {f"dropped/{s['step']}": s["dropped"] for s in steps}

    return run_stage(
        run_dir,
        "curate",
        options,
        inputs=[
            "verified.parquet",
            "teachers.json",
            "problems.parquet",
            *([SIGNALS_INPUT] if (run_dir / SIGNALS_INPUT).exists() else []),
            *extra_inputs,
        ],
        outputs=[SFT_OUTPUT, SELECTION_OUTPUT, CURATION_OUTPUT],
        work=work,
        ctx=ctx,
    )
