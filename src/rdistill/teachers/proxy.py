"""Proxy fine-tunes: DED's test of a teacher by what a student learns from it.

Each teacher's correct traces on the same problems fine-tune a copy of the base student, once
per seed; every proxy student then answers the same validation problems, held out from the
training pool (never the evaluation sets), and its accuracy gain over the base, averaged over
seeds, is the teacher's score, with a bootstrap interval over the validation problems. The
schedule must leave the valley (README, "Choosing teachers"): a student still below its base says
which teacher hurts least, not which teaches most. Each (teacher, seed) result is saved as it
finishes, so an interrupted stage resumes.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.backends import Completion, Request, make_backend
from rdistill.config import ModelSpec, ProxyOptions, SamplingParams
from rdistill.data import sft_messages, write_json
from rdistill.grading import grade_many
from rdistill.training import fine_tune


def split_problems(
    problems: list[dict[str, Any]], rows_by_teacher: dict[str, list[dict[str, Any]]], options: ProxyOptions
) -> tuple[list[dict[str, Any]], list[str]]:
    """(validation problems, ids of the proxy-training problems): disjoint, seeded, the same for every teacher.

    Training problems are those every teacher solved at least once, so that each proxy student
    sees the same problems and only the teachers' writing differs.
    """
    rng = random.Random(options.seed)
    by_domain: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for problem in problems:
        by_domain[problem["domain"]].append(problem)
    validation = [
        problem
        for domain in sorted(by_domain)
        for problem in rng.sample(by_domain[domain], min(options.validation, len(by_domain[domain])))
    ]
    held_out = {problem["id"] for problem in validation}
    solved = [{row["problem_id"] for row in rows if row["correct"]} for rows in rows_by_teacher.values()]
    trainable = sorted(set.intersection(*solved) - held_out)
    return validation, rng.sample(trainable, min(options.examples, len(trainable)))


def teacher_conversations(rows: list[dict[str, Any]], problem_ids: list[str]) -> list[list[dict[str, str]]]:
    """One correct trace of the teacher per proxy-training problem (its lowest sample index)."""
    first_correct: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["sample_index"]):
        if row["correct"]:
            first_correct.setdefault(row["problem_id"], row)
    return [sft_messages(first_correct[problem_id]) for problem_id in problem_ids]


# Bootstrap resamples of the validation problems behind each gain's interval.
RESAMPLES = 1000


def validation_correct(
    model_dir: Path, problems: list[dict[str, Any]], max_tokens: int, console=None
) -> dict[str, bool]:
    """Problem id -> whether the student's greedy answer is correct."""
    backend = make_backend(ModelSpec(name=model_dir.name, backend="hf", model=str(model_dir)), "teachers.proxy")
    requests = [Request(problem, 0, 0, [{"role": "user", "content": problem["prompt"]}]) for problem in problems]
    answers: dict[str, Completion] = {}
    try:
        backend.generate(
            requests,
            SamplingParams(temperature=0.0, max_tokens=max_tokens),
            lambda c: answers.__setitem__(c.request.problem["id"], c),
        )
    finally:
        backend.close()
    verdicts = grade_many(
        [(p, answers[p["id"]].response) for p in problems], description="grade proxy answers", console=console
    )
    return {problem["id"]: bool(verdict["correct"]) for problem, verdict in zip(problems, verdicts, strict=True)}


def accuracy_by_domain(correct: dict[str, float], problems: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of per-problem scores (0/1, or a share over seeds), overall and per domain."""
    by_domain: dict[str, list[float]] = defaultdict(list)
    for problem in problems:
        by_domain[problem["domain"]].append(correct[problem["id"]])
    values = [value for domain_values in by_domain.values() for value in domain_values]
    return {"overall": sum(values) / len(values), **{d: sum(v) / len(v) for d, v in sorted(by_domain.items())}}


def gain_interval(differences: list[float], seed: int) -> list[float]:
    """95 % percentile bootstrap interval of the mean of per-problem differences (student minus base)."""
    values = np.asarray(differences, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(RESAMPLES, len(values)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def planned_steps(examples: int, options: ProxyOptions) -> int:
    """Optimiser steps of one proxy fine-tune (examples x epochs / batch; packing makes it approximate)."""
    return math.ceil(examples * options.sft.epochs / options.sft.batch_size)


def cost_line(teachers: int, examples: int, options: ProxyOptions) -> str:
    """What the proxy rule is about to spend, said before it starts."""
    steps = planned_steps(examples, options)
    return (
        f"proxy rule: {teachers} teachers x {len(options.seeds)} seeds x about {steps} optimiser steps "
        f"({examples} traces, {options.sft.epochs:g} epochs, batch {options.sft.batch_size}) = about "
        f"{steps * teachers * len(options.seeds):,} steps, then {teachers * len(options.seeds) + 1} greedy passes "
        f"over the validation problems"
    )


def _proxy_run(
    base_dir: Path,
    rows: list[dict[str, Any]],
    train_ids: list[str],
    validation: list[dict[str, Any]],
    options: ProxyOptions,
    seed: int,
    model_dir: Path,
    console=None,
) -> dict[str, Any]:
    """Fine-tune one proxy student (one teacher, one seed), answer the validation problems, delete it."""
    sft = options.sft.model_copy(update={"seed": seed})
    training = fine_tune(
        base_dir, teacher_conversations(rows, train_ids), model_dir, sft, f"proxy {model_dir.name}", console
    )
    correct = validation_correct(model_dir, validation, options.max_tokens, console)
    shutil.rmtree(model_dir)
    return {"correct": correct, "steps": training["steps"], "seconds": training["seconds"]}


def teacher_result(
    runs: list[dict[str, Any]], base: dict[str, bool], validation: list[dict[str, Any]], options: ProxyOptions
) -> dict[str, Any]:
    """A teacher's proxy evidence over seeds: accuracy and gain (means), the gain's interval, each seed's gain."""
    ids = [problem["id"] for problem in validation]
    share = {pid: sum(run["correct"][pid] for run in runs) / len(runs) for pid in ids}
    accuracy = accuracy_by_domain(share, validation)
    base_accuracy = accuracy_by_domain({pid: float(base[pid]) for pid in ids}, validation)
    seed_gains = [accuracy_by_domain(run["correct"], validation)["overall"] - base_accuracy["overall"] for run in runs]
    return {
        "accuracy": accuracy,
        "gain": {key: accuracy[key] - base_accuracy[key] for key in accuracy},
        "gain_interval": gain_interval([share[pid] - base[pid] for pid in ids], options.seed),
        "seed_gains": seed_gains,
        "steps": [run["steps"] for run in runs],
        "seconds": round(sum(run["seconds"] for run in runs), 1),
    }


def proxy_scores(
    base_dir: Path,
    rows_by_teacher: dict[str, list[dict[str, Any]]],
    problems: list[dict[str, Any]],
    options: ProxyOptions,
    work_dir: Path,
    console=None,
) -> dict[str, Any]:
    """The base's validation accuracy and, per teacher, its proxy students' accuracy and gain over seeds."""
    validation, train_ids = split_problems(problems, rows_by_teacher, options)
    (console.print if console is not None else print)(cost_line(len(rows_by_teacher), len(train_ids), options))
    work_dir.mkdir(parents=True, exist_ok=True)
    base_file = work_dir / "base.json"
    if not base_file.exists():
        write_json(validation_correct(base_dir, validation, options.max_tokens, console), base_file)
    base = json.loads(base_file.read_text())
    scores: dict[str, Any] = {
        "base": accuracy_by_domain({pid: float(value) for pid, value in base.items()}, validation),
        "validation_problems": len(validation),
        "training_examples": len(train_ids),
        "seeds": options.seeds,
        "planned_steps": planned_steps(len(train_ids), options),
        "teachers": {},
    }
    for teacher, rows in sorted(rows_by_teacher.items()):
        runs = []
        for seed in options.seeds:
            result_file = work_dir / f"{teacher}-seed{seed}.json"
            if not result_file.exists():
                run = _proxy_run(base_dir, rows, train_ids, validation, options, seed, work_dir / teacher, console)
                write_json(run, result_file)
            runs.append(json.loads(result_file.read_text()))
        scores["teachers"][teacher] = teacher_result(runs, base, validation, options)
    return scores
