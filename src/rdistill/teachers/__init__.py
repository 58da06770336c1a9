"""Stage `teachers`: score every teacher and choose whose traces go on to curation.

The DED paper's point is that a teacher's own accuracy does not decide how well a student
learns from it. This stage records the evidence for every teacher (accuracy overall and per
domain, trace length and its spread, diversity between samples; on the base student, NLL per
token, rank–surprisal ratio and local naturalness; when asked, the gain of students fine-tuned
on its traces) and applies the recipe's rule, so that the choice can be audited in
`teachers.json` and the report. The per-trace student signals go to `teacher_signals.parquet`,
where curation can rank traces by them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rdistill.config import TeachersOptions
from rdistill.data import (
    BASE_FILE,
    PROBLEM_COLUMNS,
    VERIFIED_COLUMNS,
    read_base,
    read_records,
    write_json,
    write_parquet,
)
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import RecipeError
from rdistill.signals import load_student, score_traces, teacher_signals
from rdistill.teachers.proxy import proxy_scores
from rdistill.teachers.signals import common_problem_sample, trace_statistics

OUTPUT = "teachers.json"
SIGNALS_OUTPUT = "teacher_signals.parquet"
PROXY_DIR = "teachers_proxy"
KEY_COLUMNS = ("teacher", "problem_id", "sample_index")
# Ranking rules: the evidence they rank by, whether lower is better, and how the reason reads.
RULES = {
    "perplexity": ("student_nll", True, "lowest student NLL per token on their traces"),
    "rsr": ("rsr", True, "lowest rank–surprisal ratio on the student (mean token rank over mean NLL)"),
    "local": ("local_nll", True, "highest local naturalness (lowest mean NLL of a step given its local window)"),
    "proxy": ("proxy_gain", False, "largest validation gain of proxy students fine-tuned on their traces"),
}
# Every signal in the evidence table and which way is better, for teachers.json and the report.
SIGNALS = {
    "accuracy": "higher",
    "student_nll": "lower",
    "rsr": "lower",
    "local_nll": "lower",
    "mean_completion_tokens": "none",
    "length_cv": "higher",
    "diversity": "higher",
    "proxy_gain": "higher",
}


def by_teacher(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Verified rollouts grouped by teacher, teachers in name order."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["teacher"]].append(row)
    return dict(sorted(grouped.items()))


def score_teachers(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Trace statistics of every teacher found in verified rollouts."""
    return {teacher: trace_statistics(teacher_rows) for teacher, teacher_rows in by_teacher(rows).items()}


def _ranked(scores: dict[str, dict[str, Any]], key: str, options: TeachersOptions, lowest_first: bool) -> list[str]:
    """Teachers above the accuracy floor, best first by `key` (ties broken by accuracy)."""
    eligible = [
        name
        for name, score in scores.items()
        if score["accuracy"] >= options.min_accuracy and score.get(key) is not None
    ]
    if not eligible:
        raise RecipeError(f"teachers.min_accuracy: no teacher reaches {options.min_accuracy:.0%} with a {key} score")
    sign = 1 if lowest_first else -1
    return sorted(eligible, key=lambda name: (sign * scores[name][key], -scores[name]["accuracy"]))


def choose(scores: dict[str, dict[str, Any]], options: TeachersOptions) -> tuple[list[str], str]:
    """The teachers whose traces go on to curation, and why (naming the values that decided)."""
    if options.teacher is not None:
        if options.teacher not in scores:
            raise RecipeError(f"teachers.teacher: {options.teacher!r} has no rollouts (teachers: {', '.join(scores)})")
        return [options.teacher], "forced by the recipe (teachers.teacher)"
    if options.choose == "all":
        return sorted(scores), "every teacher's traces are kept (teachers.choose: all)"
    if options.choose == "accuracy":
        chosen = sorted(scores, key=lambda name: -scores[name]["accuracy"])[: options.keep]
        accuracies = ", ".join(f"{name} {scores[name]['accuracy']:.1%}" for name in chosen)
        return chosen, f"highest verified accuracy ({accuracies})"
    key, lowest_first, reason = RULES[options.choose]
    ranking = _ranked(scores, key, options, lowest_first)
    values = ", ".join(f"{name} {scores[name][key]:.4g}" for name in ranking)
    return (
        ranking[: options.keep],
        f"{reason} among teachers above {options.min_accuracy:.0%} accuracy (best first: {values})",
    )


def needs_signals(options: TeachersOptions) -> bool:
    """Whether traces are to be scored on the base student (for the teachers' evidence, or for curation)."""
    return bool(options.signals.traces) or options.signals.all_traces


def needs_proxy(options: TeachersOptions) -> bool:
    """Whether the proxy fine-tunes run: for the proxy rule, or for the evidence (`proxy.always`)."""
    return options.choose == "proxy" or options.proxy.always


def needs_student(options: TeachersOptions) -> bool:
    """Whether the rule or the evidence asked for needs the base student (signals, proxy fine-tunes)."""
    return needs_signals(options) or needs_proxy(options)


def student_signals(
    scores: dict[str, dict[str, Any]], rows: list[dict[str, Any]], student: Path, options: TeachersOptions, console
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score traces on the student; write each teacher's signals into `scores`.

    Returns the per-trace rows (the common sample, or every rollout with `all_traces`) and what
    the scoring cost. The teachers are compared on the common sample only, so that no teacher
    is judged on easier problems than another.
    """
    grouped = by_teacher(rows)
    sample = common_problem_sample(grouped, options.signals.traces, options.proxy.seed)
    sampled = {tuple(row[key] for key in KEY_COLUMNS) for teacher_rows in sample.values() for row in teacher_rows}
    scored = rows if options.signals.all_traces else [row for rows_ in sample.values() for row in rows_]
    values, seconds = score_traces(*load_student(student), scored, options.signals, console)
    trace_rows = [
        {**{key: row[key] for key in KEY_COLUMNS}, **value} for row, value in zip(scored, values, strict=True)
    ]
    for teacher in scores:
        mine = [r for r in trace_rows if r["teacher"] == teacher and tuple(r[k] for k in KEY_COLUMNS) in sampled]
        if mine:
            scores[teacher].update(teacher_signals(mine))
    cost = {
        "traces": len(scored),
        "sample_per_teacher": len(next(iter(sample.values()), [])),
        "seconds": {
            "student_nll": round(seconds["whole"], 2),
            "rsr": round(seconds["whole"], 2),
            "local_nll": round(seconds["local"], 2),
        },
        "note": "student_nll and rsr come from the same forward pass; local_nll from one pass per step",
    }
    return trace_rows, cost


def proxy_evidence(
    scores: dict[str, dict[str, Any]],
    rows: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    student: Path,
    options: TeachersOptions,
    run_dir: Path,
    console,
) -> dict[str, Any]:
    """Proxy fine-tunes of the teachers above the accuracy floor; their gains written into `scores`."""
    eligible = {
        name: teacher_rows
        for name, teacher_rows in by_teacher(rows).items()
        if scores[name]["accuracy"] >= options.min_accuracy
    }
    training = [problem for problem in problems if problem["split"] == "train"]
    started = time.perf_counter()
    proxy = proxy_scores(student, eligible, training, options.proxy, run_dir / PROXY_DIR, console)
    proxy["seconds"] = round(time.perf_counter() - started, 1)
    for teacher, result in proxy["teachers"].items():
        scores[teacher]["proxy_accuracy"] = result["accuracy"]["overall"]
        scores[teacher]["proxy_gain"] = result["gain"]["overall"]
        scores[teacher]["proxy_gain_low"], scores[teacher]["proxy_gain_high"] = result["gain_interval"]
    return proxy


def run(options: TeachersOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `teachers.json` (the evidence about every teacher, the choice and why) and `teacher_signals.parquet`.

    The student-based signals use the base student of `base.json`; they are skipped when the
    options ask for none of them (the signals file is then empty).
    """
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        rows = read_records(run_dir / "verified.parquet", VERIFIED_COLUMNS)
        scores = score_teachers(rows)
        trace_rows, cost, proxy = [], None, None
        if needs_student(options):
            student = read_base(run_dir)
            if needs_signals(options):
                trace_rows, cost = student_signals(scores, rows, student, options, ctx.console)
            if needs_proxy(options):
                problems = read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)
                proxy = proxy_evidence(scores, rows, problems, student, options, run_dir, ctx.console)
        chosen, why = choose(scores, options)
        write_parquet(trace_rows, run_dir / SIGNALS_OUTPUT)
        write_json(
            {
                "rule": "forced" if options.teacher else options.choose,
                "chosen": chosen,
                "why": why,
                "signals": {name: {"better": better} for name, better in SIGNALS.items()},
                "student_signals": cost,
                "teachers": scores,
                "proxy": proxy,
            },
            run_dir / OUTPUT,
        )
        return {"teachers": len(scores), "chosen": len(chosen), "scored_traces": len(trace_rows)}

    inputs = ["verified.parquet", "problems.parquet", *([BASE_FILE] if needs_student(options) else [])]
    return run_stage(run_dir, "teachers", options, inputs, [OUTPUT, SIGNALS_OUTPUT], work, ctx, partials=[PROXY_DIR])
