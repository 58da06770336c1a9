"""Stage `evaluate`: students (the base, the distilled student, any others) on the recipe's benchmarks.

Each student answers every problem of every benchmark k times through the generation backend
interface; the answers are graded by the same rules as the teachers' (`rdistill.grading.grade_many`)
and scored (`metrics`): avg@k, pass@k, maj@k, the share of samples with no answer, completion
and think-tag rates, output tokens, each with a bootstrap interval over problems, and every
student's difference from the first (the base) with a paired interval. A student whose k
samples come back identical, problem after problem, at temperature > 0 is flagged
(`sampling_check`). Answers are appended to `eval/parts/` as they arrive and graded once per
(student, benchmark), so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from rdistill.analysis.bootstrap import resample_indices
from rdistill.backends import Backend, Completion, Request, make_backend
from rdistill.backends.sampling_check import SamplingCheck, endpoint_of, print_warning, warning
from rdistill.config import EvaluateOptions, ModelSpec
from rdistill.console import PlainProgress, is_terminal
from rdistill.data import (
    BASE_FILE,
    GROUPS,
    JsonlAppender,
    key_seed,
    read_base,
    read_jsonl,
    read_parquet,
    write_json,
    write_parquet,
)
from rdistill.data.benchmarks import Benchmark, load_benchmark, source_path
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import RecipeError
from rdistill.evaluate.loglikelihood import collect_choice_scores
from rdistill.evaluate.metrics import (
    ANSWER_DOMAINS,
    breakdown,
    delta,
    group_score,
    problem_values,
    score,
)
from rdistill.grading import grade_many

EVAL_DIR = "eval"
PARTS = "eval/parts"
SUMMARY = "eval/summary.json"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def students_of(options: EvaluateOptions, run_dir: Path) -> list[tuple[ModelSpec, str]]:
    """(spec, recipe key path) of every student to evaluate, the reference for deltas first."""
    students = []
    if options.base:
        base_model = read_base(run_dir)
        students.append(
            (
                ModelSpec(name="base", backend="hf", model=str(base_model), batch_size=options.batch_size),
                "evaluate.base",
            )
        )
    if options.distilled:
        students.append(
            (
                ModelSpec(
                    name="distilled", backend="hf", model=str(run_dir / "student"), batch_size=options.batch_size
                ),
                "evaluate.distilled",
            )
        )
    students += [(spec, f"evaluate.students[{index}]") for index, spec in enumerate(options.students)]
    return students


def _check_names(labelled: list[tuple[str, str]], kind: str) -> None:
    seen: set[str] = set()
    for name, where in labelled:
        if not SAFE_NAME.match(name):
            raise RecipeError(f"{where}: {name!r} must be letters, digits, '.', '_' or '-' (it names files)")
        if name in seen:
            raise RecipeError(f"{where}: {kind} name {name!r} is used twice")
        seen.add(name)


def check_options(options: EvaluateOptions) -> None:
    """Fail before any work, naming the recipe key, on settings that cannot run or names that would collide."""
    own = [name for name, wanted in (("base", options.base), ("distilled", options.distilled)) if wanted]
    students = [(ModelSpec(name=name), f"evaluate.{name}") for name in own]
    students += [(spec, f"evaluate.students[{index}]") for index, spec in enumerate(options.students)]
    if not students:
        raise RecipeError(
            "evaluate: no student to evaluate (base and distilled are off and evaluate.students is empty)"
        )
    if not options.benchmarks:
        raise RecipeError("evaluate.benchmarks: no benchmark to evaluate on")
    for spec, where in students:
        if spec.sampling is not None:
            raise RecipeError(
                f"{where}.sampling: students are sampled with each benchmark's settings; set them on "
                f"evaluate.benchmarks"
            )
    _check_names([(spec.name, f"{where}.name") for spec, where in students], "student")
    scored = [index for index, spec in enumerate(options.benchmarks) if spec.scoring == "loglikelihood"]
    for spec, where in students:
        if scored and spec.backend != "hf" and where.startswith("evaluate.students"):
            raise RecipeError(
                f"evaluate.benchmarks[{scored[0]}].scoring: 'loglikelihood' needs local 'hf' students; {where} is "
                f"{spec.backend!r}"
            )
    _check_names(
        [(spec.name, f"evaluate.benchmarks[{index}].name") for index, spec in enumerate(options.benchmarks)],
        "benchmark",
    )


def pending_requests(benchmark: Benchmark, done: set[tuple[str, int]]) -> list[Request]:
    """The requests of a benchmark whose answers are not in the part file yet, seeded alike for every student."""
    return [
        Request(
            problem,
            sample,
            key_seed(benchmark.sampling.seed, benchmark.name, problem["id"], sample),
            benchmark.messages(problem),
        )
        for problem in benchmark.problems
        for sample in range(benchmark.samples)
        if (problem["id"], sample) not in done
    ]


def answer_row(completion: Completion) -> dict[str, Any]:
    """A line of `eval/parts/STUDENT/BENCH.jsonl`: one ungraded answer."""
    return {
        "problem_id": completion.request.problem["id"],
        "sample_index": completion.request.sample_index,
        "text": completion.text,
        "response": completion.response,
        "finish_reason": completion.finish_reason,
        "has_think": completion.closed_think,
        "tokens": completion.completion_tokens,
        "error": completion.error,
    }


class Student:
    """A student's backend, started on first use so that a student whose parts are all done costs nothing."""

    def __init__(self, spec: ModelSpec, where: str) -> None:
        self.spec, self.where = spec, where
        self.backend: Backend | None = None

    def get(self) -> Backend:
        """The backend, made on the first call."""
        if self.backend is None:
            self.backend = make_backend(self.spec, self.where)
        return self.backend

    def close(self) -> None:
        """Release the backend if one was made."""
        if self.backend is not None:
            self.backend.close()


def sampling_warning(verdict: dict[str, Any], spec: ModelSpec, where: str, benchmark: Benchmark) -> str:
    """The warning for a student whose samples of `benchmark` all came back identical."""
    sampling_key, samples_key = benchmark.sampling_keys
    return warning(verdict, f"{where} on {benchmark.name}", endpoint_of(spec), sampling_key, samples_key)


def collect_answers(
    student: Student, benchmark: Benchmark, path: Path, label: str, console=None
) -> list[dict[str, Any]]:
    """Every answer of one student to one benchmark: those in `path`, then the missing ones, appended as they come.

    Warns as soon as the first problems' samples show a backend that ignores sampling settings.
    """
    answers = read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []
    requests = pending_requests(benchmark, {(a["problem_id"], a["sample_index"]) for a in answers})
    if not requests:
        return answers
    writer = JsonlAppender(path)
    check = SamplingCheck.for_requests(student.spec, [r.problem["id"] for r in requests], benchmark.sampling)
    plain = None if is_terminal(console) else PlainProgress(f"answer {label}", len(requests), console=console)
    with Progress(console=console, transient=False, disable=plain is not None) as progress:
        task = progress.add_task(f"answer {label}", total=len(requests))

        def keep(completion: Completion) -> None:
            row = answer_row(completion)
            writer.write(row)
            answers.append(row)
            progress.advance(task)
            if plain is not None:
                plain.update(plain.completed + 1)
            verdict = check.observe(row["problem_id"], row["text"])
            if verdict and verdict["ignores_sampling"]:
                print_warning(progress.console, sampling_warning(verdict, student.spec, student.where, benchmark))

        try:
            student.get().generate(requests, benchmark.sampling, keep)
        finally:
            writer.close()
    return answers


def eval_rows(
    student: str, benchmark: Benchmark, answers: list[dict[str, Any]], verdicts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Eval rows (docs/schema.md) from graded answers, in problem then sample order."""
    problems = {problem["id"]: problem for problem in benchmark.problems}
    rows = []
    for answer, verdict in zip(answers, verdicts, strict=False):
        problem = problems[answer["problem_id"]]
        rows.append(
            {
                "student": student,
                "benchmark": benchmark.name,
                "problem_id": answer["problem_id"],
                "sample_index": answer["sample_index"],
                "difficulty": problem["difficulty"],
                "subject": json.loads(problem["meta"] or "{}").get("subject"),
                "correct": bool(verdict["correct"]),
                "finished": answer["finish_reason"] == "stop",
                "has_think": answer["has_think"],
                "tokens": answer["tokens"],
                "response": answer["text"],
                "finish_reason": answer["finish_reason"],
                "extracted": verdict["extracted"],
                "tests_passed": verdict["tests_passed"],
                "tests_total": verdict["tests_total"],
                "verify_error": verdict["verify_error"] or answer["error"],
                # Log-likelihood scoring only: lm-eval's acc_norm pick, and every choice's log-likelihood.
                "correct_norm": answer["choice_norm"] == problem["answer"] if "choice_norm" in answer else None,
                "loglikelihoods": answer.get("loglikelihoods"),
            }
        )
    order = {problem_id: index for index, problem_id in enumerate(problems)}
    return sorted(rows, key=lambda row: (order[row["problem_id"]], row["sample_index"]))


def part_stem(run_dir: Path, student: str, benchmark: str) -> Path:
    """`eval/parts/STUDENT/BENCH`: .jsonl holds the answers as they arrive, .parquet the graded rows."""
    return Path(run_dir) / PARTS / student / benchmark


def answer_part(student: Student, benchmark: Benchmark, run_dir: Path, console=None) -> list[dict[str, Any]]:
    """Every answer of one student to one benchmark, generating those not yet in its part file."""
    path = part_stem(run_dir, student.spec.name, benchmark.name).with_suffix(".jsonl")
    collect = collect_choice_scores if benchmark.scoring == "loglikelihood" else collect_answers
    return collect(student, benchmark, path, f"{student.spec.name} on {benchmark.name}", console)


def grade_parts(
    answers: dict[tuple[str, str], list[dict[str, Any]]],
    benchmarks: dict[str, Benchmark],
    run_dir: Path,
    options: EvaluateOptions,
    console=None,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Graded rows of each (student, benchmark) part, written to its .parquet.

    One grading pass for all parts, so that its workers start once.
    """
    problems = {name: {p["id"]: p for p in benchmark.problems} for name, benchmark in benchmarks.items()}
    items = [
        (problems[bench][a["problem_id"]], a["response"] or "") for (_, bench), part in answers.items() for a in part
    ]
    verdicts = iter(
        grade_many(items, **options.grading.grading_arguments(), description="grade answers", console=console)
    )
    rows = {}
    for (student, bench), part in answers.items():
        rows[(student, bench)] = eval_rows(student, benchmarks[bench], part, [next(verdicts) for _ in part])
        write_parquet(rows[(student, bench)], part_stem(run_dir, student, bench).with_suffix(".parquet"))
    return rows


def evaluate_students(
    students: list[tuple[ModelSpec, str]],
    benchmarks: list[Benchmark],
    run_dir: Path,
    options: EvaluateOptions,
    console=None,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Eval rows per (student, benchmark): graded parts read back, the others answered, then graded.

    One backend per student, started only if one of its parts needs answers.
    """
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for spec, where in students:
        student = Student(spec, where)
        try:
            for benchmark in benchmarks:
                graded = part_stem(run_dir, spec.name, benchmark.name).with_suffix(".parquet")
                if graded.exists():
                    rows[(spec.name, benchmark.name)] = read_parquet(graded)
                else:
                    answers[(spec.name, benchmark.name)] = answer_part(student, benchmark, run_dir, console)
        finally:
            student.close()
    if answers:
        rows |= grade_parts(answers, {b.name: b for b in benchmarks}, run_dir, options, console)
    return rows


def _public(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores without their bootstrap replicates, rounded for the JSON file."""
    return {
        key: [round(v, 6) for v in value] if isinstance(value, list) else round(value, 6)
        for key, value in scores.items()
        if key != "replicates"
    }


def score_all(
    benchmarks: list[Benchmark],
    students: list[str],
    rows: dict[tuple[str, str], list[dict[str, Any]]],
    options: EvaluateOptions,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Scores with bootstrap replicates per (student, benchmark).

    Every student of a benchmark is resampled on the same draws, so that differences are paired.
    """
    scored = {}
    for index, benchmark in enumerate(benchmarks):
        order = [problem["id"] for problem in benchmark.problems]
        draws = resample_indices(len(order), options.bootstrap_samples, options.bootstrap_seed + index)
        for student in students:
            values = problem_values(rows[(student, benchmark.name)], answer_task=benchmark.domain in ANSWER_DOMAINS)
            scored[(student, benchmark.name)] = score(values, order, draws, options.confidence)
    return scored


def group_entry(
    scored: dict[tuple[str, str], dict[str, Any]], student: str, reference: str, members: list[str], confidence: float
) -> dict[str, Any]:
    """A student's mean avg@k over a group's benchmarks, and its difference from the reference's."""
    scores = group_score([scored[(student, name)] for name in members], confidence)
    entry = _public(scores)
    if student != reference:
        entry["delta"] = _public(
            delta(scores, group_score([scored[(reference, name)] for name in members], confidence), confidence)
        )
    return entry


def sampling_checks(
    students: list[tuple[ModelSpec, str]],
    benchmarks: list[Benchmark],
    rows: dict[tuple[str, str], list[dict[str, Any]]],
) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
    """The sampling check's verdict per (student, benchmark) where it applies, and a warning per flagged one.

    Run on the graded rows (problem, then sample order), so that a part read back from an
    earlier session is checked like one answered now.
    """
    checks, warnings = {}, []
    for spec, where in students:
        for benchmark in benchmarks:
            samples = [(row["problem_id"], row["response"]) for row in rows[(spec.name, benchmark.name)]]
            verdict = SamplingCheck.over(spec, samples, benchmark.sampling)
            if verdict is not None:
                checks[(spec.name, benchmark.name)] = verdict
                if verdict["ignores_sampling"]:
                    warnings.append(sampling_warning(verdict, spec, where, benchmark))
    return checks, warnings


def summarise(
    benchmarks: list[Benchmark],
    students: list[str],
    rows: dict[tuple[str, str], list[dict[str, Any]]],
    options: EvaluateOptions,
    checks: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """summary.json (docs/schema.md): each student's scores per benchmark and group, deltas from the first student.

    `checks`: the sampling check's verdicts (`sampling_checks`), recorded with the scores they qualify.
    """
    confidence, reference = options.confidence, students[0]
    scored = score_all(benchmarks, students, rows, options)
    groups = {group: [b.name for b in benchmarks if b.group == group] for group in GROUPS}
    summary: dict[str, Any] = groups | {
        "reference": reference,
        "confidence": confidence,
        "bootstrap_samples": options.bootstrap_samples,
        "benchmarks": {b.name: b.summary() for b in benchmarks},
        "students": {student: {} for student in students},
        "groups": {student: {} for student in students},
    }
    for (student, name), scores in scored.items():
        student_rows = rows[(student, name)]
        entry = {
            "problems": len({row["problem_id"] for row in student_rows}),
            "k": summary["benchmarks"][name]["k"],
            **_public(scores),
        }
        entry |= {
            "by_difficulty": breakdown(student_rows, "difficulty"),
            "by_subject": breakdown(student_rows, "subject"),
        }
        if student != reference:
            entry["delta"] = _public(delta(scores, scored[(reference, name)], confidence))
        if checks and (student, name) in checks:
            entry["sampling_check"] = checks[(student, name)]
        summary["students"][student][name] = entry
    for student in students:
        for group, members in groups.items():
            if members:
                summary["groups"][student][group] = group_entry(scored, student, reference, members, confidence)
    return summary


def link_graded_answers(source_run: Path, run_dir: Path, student: str, benchmarks: list[Benchmark]) -> None:
    """Point `student`'s graded parts at another run's (relative symlinks), for parts this run lacks.

    For a student whose answers cannot differ between the runs (a sweep's base, asked and graded
    alike): `evaluate_students` then reads them back as it does its own finished parts.
    """
    for benchmark in benchmarks:
        source, link = (
            part_stem(where, student, benchmark.name).with_suffix(".parquet") for where in (source_run, run_dir)
        )
        if source.exists() and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            link.symlink_to(os.path.relpath(source, link.parent))


def run(options: EvaluateOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `eval/BENCH.parquet` per benchmark and `eval/summary.json` for every student.

    `ctx.base_answers_from`: a run whose graded base answers this one may link (`link_graded_answers`).
    """
    run_dir = Path(run_dir)
    console = ctx.console
    check_options(options)
    students = students_of(options, run_dir)

    def work() -> dict[str, Any]:
        benchmarks = [
            load_benchmark(spec, options, run_dir, f"evaluate.benchmarks[{index}]")
            for index, spec in enumerate(options.benchmarks)
        ]
        if ctx.base_answers_from is not None and options.base:
            link_graded_answers(Path(ctx.base_answers_from), run_dir, "base", benchmarks)
        rows = evaluate_students(students, benchmarks, run_dir, options, console)
        names = [spec.name for spec, _ in students]
        for benchmark in benchmarks:
            write_parquet(
                [row for name in names for row in rows[(name, benchmark.name)]],
                run_dir / EVAL_DIR / f"{benchmark.name}.parquet",
            )
        checks, warnings = sampling_checks(students, benchmarks, rows)
        summary = summarise(benchmarks, names, rows, options, checks) | {"warnings": warnings}
        write_json(summary, run_dir / SUMMARY)
        for text in warnings:
            print_warning(console or Console(), text)
        return {
            f"{name}/{bench}": scores["accuracy"]
            for name, benches in summary["students"].items()
            for bench, scores in benches.items()
        }

    # Absolute: a relative path is the working directory's, not the run directory's.
    files = {
        str(source_path(spec, f"evaluate.benchmarks[{index}]").resolve())
        for index, spec in enumerate(options.benchmarks)
        if spec.path and spec.format != "micro"
    }
    micro = any(spec.format == "micro" for spec in options.benchmarks)
    students_in = ([BASE_FILE] if options.base else []) + (["student"] if options.distilled else [])
    inputs = (["problems.parquet"] if micro else []) + students_in + sorted(files)
    # Where the answers are graded (executor, workers) is left out of the hash: changing it resumes.
    fingerprint = options.model_dump(mode="json") | {"grading": options.grading.verdict_settings()}
    return run_stage(run_dir, "evaluate", fingerprint, inputs, [SUMMARY], work, ctx, partials=[EVAL_DIR])
