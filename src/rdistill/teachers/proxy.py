"""Proxy fine-tunes: DED's test of a teacher by what a student learns from it.

Each teacher's correct traces on the same problems fine-tune a copy of the base student for a
short schedule; every proxy student then answers the same validation problems, held out from
the training pool (never the evaluation sets), and its accuracy gain over the base is the
teacher's score. Each teacher's result is saved as it finishes, so an interrupted stage resumes.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

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


def validation_accuracy(
    model_dir: Path, problems: list[dict[str, Any]], max_tokens: int, console=None
) -> dict[str, float]:
    """Greedy accuracy of a student on `problems`, overall and per domain."""
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
    by_domain: dict[str, list[bool]] = defaultdict(list)
    for problem, verdict in zip(problems, verdicts, strict=False):
        by_domain[problem["domain"]].append(bool(verdict["correct"]))
    flags = [flag for values in by_domain.values() for flag in values]
    return {"overall": sum(flags) / len(flags), **{domain: sum(v) / len(v) for domain, v in sorted(by_domain.items())}}


def proxy_scores(
    base_dir: Path,
    rows_by_teacher: dict[str, list[dict[str, Any]]],
    problems: list[dict[str, Any]],
    options: ProxyOptions,
    work_dir: Path,
    console=None,
) -> dict[str, Any]:
    """The base's validation accuracy and, per teacher, its proxy student's accuracy and gain."""
    validation, train_ids = split_problems(problems, rows_by_teacher, options)
    base_file = work_dir / "base.json"
    if not base_file.exists():
        write_json(validation_accuracy(base_dir, validation, options.max_tokens, console), base_file)
    base = json.loads(base_file.read_text())
    scores: dict[str, Any] = {
        "base": base,
        "validation_problems": len(validation),
        "training_examples": len(train_ids),
        "teachers": {},
    }
    for teacher, rows in sorted(rows_by_teacher.items()):
        result_file = work_dir / f"{teacher}.json"
        if not result_file.exists():
            model_dir = work_dir / teacher
            fine_tune(
                base_dir,
                teacher_conversations(rows, train_ids),
                model_dir,
                options.sft,
                f"proxy student of {teacher}",
                console,
            )
            accuracy = validation_accuracy(model_dir, validation, options.max_tokens, console)
            write_json({"accuracy": accuracy, "gain": {k: accuracy[k] - base[k] for k in accuracy}}, result_file)
            shutil.rmtree(model_dir)
        scores["teachers"][teacher] = json.loads(result_file.read_text())
    return scores
