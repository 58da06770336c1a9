"""Stage `teachers`: score every teacher and choose whose traces go on to curation.

The DED paper's point is that a teacher's own accuracy does not decide how well a student
learns from it. This stage records the evidence for every teacher (accuracy overall and per
domain, trace length and its spread, diversity between samples, the base student's perplexity
on its traces and, when asked, the gain of a student briefly fine-tuned on them) and applies
the recipe's rule, so that the choice can be audited in `teachers.json` and the report.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rdistill.config import TeachersOptions
from rdistill.data import BASE_FILE, PROBLEM_COLUMNS, VERIFIED_COLUMNS, read_base, read_records, write_json
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import RecipeError
from rdistill.teachers.proxy import proxy_scores
from rdistill.teachers.signals import common_problem_sample, student_nll, trace_statistics

OUTPUT = "teachers.json"
PROXY_DIR = "teachers_proxy"


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
    """The teachers whose traces go on to curation, and why."""
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
    if options.choose == "perplexity":
        chosen = _ranked(scores, "student_nll", options, lowest_first=True)[: options.keep]
        return (
            chosen,
            f"lowest student perplexity on their traces among teachers above {options.min_accuracy:.0%} accuracy",
        )
    chosen = _ranked(scores, "proxy_gain", options, lowest_first=False)[: options.keep]
    gains = ", ".join(f"{name} {scores[name]['proxy_gain']:+.1%}" for name in chosen)
    return chosen, f"largest validation gain of a proxy student fine-tuned on their traces ({gains})"


def add_student_signals(
    scores: dict[str, dict[str, Any]],
    rows: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    student: Path,
    options: TeachersOptions,
    run_dir: Path,
    console=None,
) -> dict[str, Any] | None:
    """Student perplexity and, for the proxy rule, proxy gains, written into `scores`; returns the proxy details."""
    grouped = by_teacher(rows)
    if options.perplexity_traces:
        nlls = student_nll(student, common_problem_sample(grouped, options.perplexity_traces, options.proxy.seed))
        for teacher, nll in nlls.items():
            scores[teacher]["student_nll"] = nll
    if options.choose != "proxy":
        return None
    eligible = {
        name: teacher_rows for name, teacher_rows in grouped.items() if scores[name]["accuracy"] >= options.min_accuracy
    }
    training = [problem for problem in problems if problem["split"] == "train"]
    proxy = proxy_scores(student, eligible, training, options.proxy, run_dir / PROXY_DIR, console)
    for teacher, result in proxy["teachers"].items():
        scores[teacher]["proxy_accuracy"] = result["accuracy"]["overall"]
        scores[teacher]["proxy_gain"] = result["gain"]["overall"]
    return proxy


def needs_student(options: TeachersOptions) -> bool:
    """Whether the rule or the evidence asked for needs the base student (perplexity, proxy fine-tunes)."""
    return bool(options.perplexity_traces) or options.choose == "proxy"


def run(options: TeachersOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `teachers.json`: the evidence about every teacher and the choice.

    The student-based signals use the base student of `base.json`; they are skipped when the
    options ask for none of them.
    """
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        rows = read_records(run_dir / "verified.parquet", VERIFIED_COLUMNS)
        scores = score_teachers(rows)
        proxy = None
        if needs_student(options):
            problems = read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)
            proxy = add_student_signals(scores, rows, problems, read_base(run_dir), options, run_dir, ctx.console)
        chosen, why = choose(scores, options)
        rule = "forced" if options.teacher else options.choose
        write_json({"rule": rule, "chosen": chosen, "why": why, "teachers": scores, "proxy": proxy}, run_dir / OUTPUT)
        return {"teachers": len(scores), "chosen": len(chosen)}

    inputs = ["verified.parquet", "problems.parquet", *([BASE_FILE] if needs_student(options) else [])]
    return run_stage(run_dir, "teachers", options, inputs, [OUTPUT], work, ctx, partials=[PROXY_DIR])
