"""Verification throughput: rdistill's graders against the usual baselines, in one run.

- math: verdicts per second of `grade_many` (two worker processes, batches by problem, fast
  paths, dedup), worker start-up included, against single-process Math-Verify (parse both,
  verify) on the same distinct (gold, candidate) pairs: every MATH-500 reference answer against
  several written forms of it and a wrong one.
- code: MBPP canonical solutions against their asserts; test cases per second of rdistill's
  sandbox (a warm harness per worker, a fork per test; harness start-up included) against one
  fresh Python process per test case, as LiveCodeBench's evaluator does, both two at a time.
- per-test overhead: the marginal cost of one more test in a solution's run.

Usage: python benchmarks/verify.py [--data ../shared/data] [--mbpp 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rdistill.verify import grade_many
from rdistill.verify.sandbox import isolation, run_program


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def candidate_forms(answer: str) -> list[str]:
    """Several ways a model might write `answer`, and one wrong answer."""
    forms = [answer, f"\\left({answer}\\right)" if answer.startswith("(") else f"{{{answer}}}", answer.replace("\\frac", "\\dfrac"), f"\\text{{ {answer} }}"]
    return list(dict.fromkeys(forms)) + [f"{answer}+1"]


def math_pairs(data: Path) -> list[tuple[str, str, str]]:
    """Distinct (gold answer, candidate) pairs, each with the id of the first problem with that answer."""
    first_problem: dict[tuple[str, str], str] = {}
    for row in read_jsonl(data / "math500" / "test.jsonl"):
        for form in candidate_forms(row["answer"]):
            first_problem.setdefault((row["answer"], form), row["unique_id"])
    return [(problem_id, gold, candidate) for (gold, candidate), problem_id in first_problem.items()]


def math_verify_single_process(pairs: list[tuple[str, str, str]]) -> float:
    from math_verify import parse, verify

    started = time.perf_counter()
    for _, gold, candidate in pairs:
        verify(parse(f"\\boxed{{{gold}}}"), parse(f"\\boxed{{{candidate}}}"))
    return time.perf_counter() - started


def rdistill_math(pairs: list[tuple[str, str, str]]) -> float:
    items = [({"id": problem_id, "domain": "math", "answer": gold}, f"\\boxed{{{candidate}}}") for problem_id, gold, candidate in pairs]
    started = time.perf_counter()
    grade_many(items, workers=2, description="rdistill math")
    return time.perf_counter() - started


CPU_PROBE = """
import sys, time
sys.path.insert(0, {here!r})
from pathlib import Path
from verify import math_pairs
pairs = math_pairs(Path({data!r}))
from math_verify import parse, verify
from rdistill.verify import grade_chunk
parse("\\\\boxed{{1}}")
started = time.process_time()
if {rdistill!r}:
    grade_chunk([({{"id": p, "domain": "math", "answer": g}}, "\\\\boxed{{" + c + "}}") for p, g, c in pairs], 5)
else:
    for _, g, c in pairs:
        verify(parse("\\\\boxed{{" + g + "}}"), parse("\\\\boxed{{" + c + "}}"))
print(time.process_time() - started)
"""


def math_cpu_seconds(data: Path, rdistill: bool) -> float:
    """CPU time to grade every pair in one fresh process: the work per verdict, whatever the load."""
    code = CPU_PROBE.format(here=str(Path(__file__).parent), data=str(data), rdistill=rdistill)
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[-1])


def mbpp_items(data: Path, limit: int) -> list[tuple[str, list[dict]]]:
    rows = read_jsonl(data / "mbpp" / "test.jsonl")[:limit]
    return [
        (row["code"], [{"input": None, "output": None, "entry_point": None, "test": "\n".join(row["test_imports"] + [assertion])} for assertion in row["test_list"]])
        for row in rows
    ]


def fresh_process_per_test(items: list[tuple[str, list[dict]]]) -> float:
    def one(program: str, test: str) -> bool:
        with tempfile.TemporaryDirectory() as workdir:
            run = subprocess.run([sys.executable, "-c", program + "\n" + test], cwd=workdir, capture_output=True, timeout=60)
        return run.returncode == 0

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda pair: one(*pair), [(program, test["test"]) for program, tests in items for test in tests]))
    assert all(results), "a canonical MBPP solution failed in the baseline"
    return time.perf_counter() - started


def rdistill_code(items: list[tuple[str, list[dict]]]) -> float:
    problems = [({"id": f"c{index}", "domain": "code", "tests": tests}, f"```python\n{program}\n```") for index, (program, tests) in enumerate(items)]
    started = time.perf_counter()
    verdicts = grade_many(problems, timeout_s=60, workers=2, description="rdistill code")
    assert all(v["correct"] for v in verdicts), [v for v in verdicts if not v["correct"]][:3]
    return time.perf_counter() - started


def per_test_overhead(tests: int = 41, repeats: int = 10) -> float:
    trivial = [{"input": None, "output": None, "entry_point": None, "test": "pass"}]

    def timed(count: int) -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            run_program("x = 1", trivial * count, 5)
        return (time.perf_counter() - started) / repeats

    return (timed(tests) - timed(1)) / (tests - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    beside = [p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir()]
    parser.add_argument("--data", type=Path, default=beside[0] if beside else Path("shared/data"), help="the shared benchmark data")
    parser.add_argument("--mbpp", type=int, default=200, help="MBPP problems to run")
    args = parser.parse_args()
    print(f"sandbox isolation: {isolation()}; 1-minute load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    pairs = math_pairs(args.data)
    baseline_math, ours_math = math_verify_single_process(pairs), rdistill_math(pairs)
    items = mbpp_items(args.data, args.mbpp)
    cases = sum(len(tests) for _, tests in items)
    baseline_code, ours_code = fresh_process_per_test(items), rdistill_code(items)
    overhead = per_test_overhead()
    cpu_baseline, cpu_ours = math_cpu_seconds(args.data, rdistill=False), math_cpu_seconds(args.data, rdistill=True)

    print(f"math pairs: {len(pairs)}, code test cases: {cases} ({len(items)} MBPP solutions); load average at end: {os.getloadavg()[0]:.1f}")
    print(f"math CPU seconds in one process: Math-Verify {cpu_baseline:.1f}, rdistill {cpu_ours:.1f}")
    print(f"math_cpu_saving: {cpu_baseline / cpu_ours:.2f}")
    print(f"math_verify_single_process_per_s: {len(pairs) / baseline_math:.1f}")
    print(f"rdistill_math_per_s: {len(pairs) / ours_math:.1f}")
    print(f"math_speedup: {baseline_math / ours_math:.2f}")
    print(f"fresh_process_per_test_cases_per_s: {cases / baseline_code:.1f}")
    print(f"rdistill_code_cases_per_s: {cases / ours_code:.1f}")
    print(f"code_speedup: {baseline_code / ours_code:.2f}")
    print(f"per_test_overhead_ms: {1000 * overhead:.1f}")


if __name__ == "__main__":
    main()
