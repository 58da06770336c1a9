"""Verification throughput: rdistill's graders against the usual baselines, in one run.

- math: verdicts per second of `grade_many` (two worker processes, batches by problem, the
  fast path of `quick_verdict`, dedup), worker start-up included, against Math-Verify (parse
  both, verify) one pair after another in a fresh process, on the same distinct (gold,
  candidate) pairs: every MATH-500 reference answer against several written forms of it and a
  wrong one. The fast path settles most re-spellings, so the comparison is repeated on the
  pairs it leaves to Math-Verify, where only parallelism and parsing each gold answer once help.
- code: MBPP and HumanEval reference solutions against their tests; test cases per second of
  rdistill's sandbox (a warm harness per worker, a fork per test; harness start-up included)
  against one fresh Python process per test case, as LiveCodeBench's evaluator does, both two
  at a time.
- per-test overhead: the marginal cost of one more test in a solution's run.
- with `--executor ray`: the same code items, batched as `grade_many` batches them, graded by
  the Ray executor (two actors on a local Ray instance, whose own start is timed apart) and by
  the local pool (two processes), alternately `--repeats` times (medians): cases per second with
  the workers' start-up, the ratio once both are started, and the scheduling cost of one batch
  on each, from batches with nothing in them.

Usage: python benchmarks/verify.py [--data ../shared/data] [--code-problems N] [--executor ray] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rdistill.grading import _chunks, grade_chunk, grade_many
from rdistill.grading.answers import quick_verdict
from rdistill.grading.executors import make_executor
from rdistill.grading.sandbox import isolation, run_program


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def candidate_forms(answer: str) -> list[str]:
    """Several ways a model might write `answer`, and one wrong answer."""
    forms = [
        answer,
        f"\\left({answer}\\right)" if answer.startswith("(") else f"{{{answer}}}",
        answer.replace("\\frac", "\\dfrac"),
        f"\\text{{ {answer} }}",
    ]
    return list(dict.fromkeys(forms)) + [f"{answer}+1"]


def math_pairs(data: Path) -> list[tuple[str, str, str]]:
    """Distinct (gold answer, candidate) pairs, each with the id of the first problem with that answer."""
    first_problem: dict[tuple[str, str], str] = {}
    for row in read_jsonl(data / "math500" / "test.jsonl"):
        for form in candidate_forms(row["answer"]):
            first_problem.setdefault((row["answer"], form), row["unique_id"])
    return [(problem_id, gold, candidate) for (gold, candidate), problem_id in first_problem.items()]


def needing_math_verify(pairs: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The pairs rdistill cannot settle by spelling alone: where Math-Verify's own cost is compared."""
    return [
        (problem_id, gold, candidate) for problem_id, gold, candidate in pairs if quick_verdict(candidate, gold) is None
    ]


def rdistill_math(pairs: list[tuple[str, str, str]]) -> float:
    items = [
        ({"id": problem_id, "domain": "math", "answer": gold}, f"\\boxed{{{candidate}}}")
        for problem_id, gold, candidate in pairs
    ]
    started = time.perf_counter()
    grade_many(items, workers=2, description="rdistill math")
    return time.perf_counter() - started


PROBE = """
import sys, time
sys.path.insert(0, {here!r})
from pathlib import Path
from verify import math_pairs, needing_math_verify
pairs = math_pairs(Path({data!r}))
pairs = needing_math_verify(pairs) if {symbolic!r} else pairs
from math_verify import parse, verify
from rdistill.grading import grade_chunk
parse("\\\\boxed{{1}}")
started, cpu_started = time.perf_counter(), time.process_time()
if {rdistill!r}:
    grade_chunk([({{"id": p, "domain": "math", "answer": g}}, "\\\\boxed{{" + c + "}}") for p, g, c in pairs], 5)
else:
    for _, g, c in pairs:
        verify(parse("\\\\boxed{{" + g + "}}"), parse("\\\\boxed{{" + c + "}}"))
print(time.perf_counter() - started, time.process_time() - cpu_started)
"""


def math_in_one_process(data: Path, rdistill: bool, symbolic: bool) -> tuple[float, float]:
    """Wall and CPU seconds to grade the pairs one after another in a fresh process (no cache carried over)."""
    code = PROBE.format(here=str(Path(__file__).parent), data=str(data), rdistill=rdistill, symbolic=symbolic)
    wall, cpu = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()[
        -2:
    ]
    return float(wall), float(cpu)


def code_items(data: Path, limit: int | None) -> list[tuple[dict, str]]:
    """Every MBPP and HumanEval problem as the evaluate stage loads it, with its reference solution.

    Both whole test splits by default: one MBPP solution spends seconds in a single test, so a
    short list would measure that one test rather than the verifier.
    """
    from rdistill.data.benchmarks import humaneval_problem, mbpp_problem

    mbpp = [(mbpp_problem(row, "mbpp"), row["code"]) for row in read_jsonl(data / "mbpp" / "test.jsonl")]
    humaneval = [
        (humaneval_problem(row, "humaneval"), row["prompt"] + row["canonical_solution"])
        for row in read_jsonl(data / "humaneval" / "test.jsonl")
    ]
    return (mbpp + humaneval)[:limit]


def test_script(program: str, test: dict) -> str:
    """One test as a stand-alone script: the program, the test, and the call of `check` if it has one."""
    call = f"\ncheck({test['entry_point']})" if test.get("entry_point") else ""
    return f"{program}\n{test['test']}{call}"


def fresh_process_per_test(items: list[tuple[dict, str]]) -> float:
    def one(script: str) -> bool:
        with tempfile.TemporaryDirectory() as workdir:
            run = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True, timeout=60)
        return run.returncode == 0

    scripts = [test_script(program, test) for problem, program in items for test in problem["tests"]]
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, scripts))
    assert all(results), "a reference solution failed in the baseline"
    return time.perf_counter() - started


def rdistill_code(items: list[tuple[dict, str]]) -> float:
    graded = [(problem, f"```python\n{program}\n```") for problem, program in items]
    started = time.perf_counter()
    verdicts = grade_many(graded, timeout_s=60, workers=2, description="rdistill code")
    assert all(v["correct"] for v in verdicts), [v for v in verdicts if not v["correct"]][:3]
    return time.perf_counter() - started


WARM_UP = (
    {
        "id": "warm-up",
        "domain": "code",
        "tests": [{"input": None, "output": None, "entry_point": None, "test": "pass"}],
    },
    "x = 1",
)


def executor_run(executor: str, items: list[tuple[dict, str]], empty_batches: int = 400) -> dict[str, float]:
    """One executor on the code items, batched as `grade_many` batches them; seconds of each phase.

    `start`: until every worker has graded one trivial solution (processes or actors started,
    sandbox probed, harness warm); `grading`: the items' batches after that; `batch`: a worker's
    time per empty batch afterwards, i.e. scheduling and the round trip alone.
    """
    work, workers = functools.partial(grade_chunk, timeout_s=60), 2
    graded = [(problem, f"```python\n{program}\n```") for problem, program in items]
    keys = [(problem["id"], index) for index, (problem, _) in enumerate(graded)]
    batches = [[graded[index] for _, index in chunk] for chunk in _chunks(keys, workers)]
    warm_up = [[(WARM_UP[0], f"```python\n{WARM_UP[1]}\n```")]] * workers
    started = time.perf_counter()
    with make_executor(executor, workers, None, False, lambda line: None) as pool:
        list(pool.map(work, warm_up))
        ready = time.perf_counter()
        verdicts = [verdict for _, results in pool.map(work, batches) for verdict in results]
        graded_at = time.perf_counter()
        list(pool.map(work, [[]] * empty_batches))
        batch = (time.perf_counter() - graded_at) * workers / empty_batches
    assert len(verdicts) == len(graded) and all(v["correct"] for v in verdicts)
    return {"start": ready - started, "grading": graded_at - ready, "batch": batch}


def ray_against_local(items: list[tuple[dict, str]], repeats: int) -> dict[str, dict[str, float]]:
    """Per executor, the median of each phase over `repeats` runs on the same items, local and Ray alternately."""
    from rdistill.cluster import ray_session

    started = time.perf_counter()
    with ray_session(None, 2, "benchmark"):
        init = time.perf_counter() - started
        runs: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
        for _ in range(repeats):
            for executor in runs:
                runs[executor].append(executor_run(executor, items))
    medians = {
        executor: {phase: statistics.median(run[phase] for run in done) for phase in done[0]}
        for executor, done in runs.items()
    }
    return medians | {"init": {"start": init}}


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
    parser.add_argument(
        "--data", type=Path, default=beside[0] if beside else Path("shared/data"), help="the shared benchmark data"
    )
    parser.add_argument(
        "--code-problems", type=int, default=None, help="code problems to run (default: all of MBPP, then HumanEval)"
    )
    parser.add_argument(
        "--executor", choices=["local", "ray"], default="local", help="ray: also compare the Ray executor's code rate"
    )
    parser.add_argument("--repeats", type=int, default=3, help="alternate local and Ray runs (--executor ray)")
    args = parser.parse_args()
    print(
        f"sandbox isolation: {isolation()}; 1-minute load average at start: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )

    pairs, symbolic = math_pairs(args.data), needing_math_verify(math_pairs(args.data))
    (baseline_math, cpu_baseline), (baseline_symbolic, _) = (
        math_in_one_process(args.data, False, subset) for subset in (False, True)
    )
    ours_math, ours_symbolic = rdistill_math(pairs), rdistill_math(symbolic)
    _, cpu_ours = math_in_one_process(args.data, rdistill=True, symbolic=False)
    items = code_items(args.data, args.code_problems)
    cases = sum(len(problem["tests"]) for problem, _ in items)
    baseline_code, ours_code = fresh_process_per_test(items), rdistill_code(items)
    overhead = per_test_overhead()
    ray = ray_against_local(items, args.repeats) if args.executor == "ray" else None

    print(
        f"math pairs: {len(pairs)} ({len(symbolic)} not settled by spelling), code test cases: {cases} "
        f"({len(items)} MBPP and HumanEval solutions); load average at end: {os.getloadavg()[0]:.1f}"
    )
    print(f"math CPU seconds in one process: Math-Verify {cpu_baseline:.1f}, rdistill {cpu_ours:.1f}")
    print(f"math_cpu_saving: {cpu_baseline / cpu_ours:.2f}")
    print(f"math_verify_single_process_per_s: {len(pairs) / baseline_math:.1f}")
    print(f"rdistill_math_per_s: {len(pairs) / ours_math:.1f}")
    print(f"math_speedup_where_math_verify_decides: {baseline_symbolic / ours_symbolic:.2f}")
    print(f"math_speedup: {baseline_math / ours_math:.2f}")
    print(f"fresh_process_per_test_cases_per_s: {cases / baseline_code:.1f}")
    print(f"rdistill_code_cases_per_s: {cases / ours_code:.1f}")
    print(f"code_speedup: {baseline_code / ours_code:.2f}")
    print(f"per_test_overhead_ms: {1000 * overhead:.1f}")
    if ray is not None:
        local, remote = ray["local"], ray["ray"]
        print(
            f"Ray executor: a local Ray instance (started in {ray['init']['start']:.1f} s, not counted), 2 workers; "
            f"medians of {args.repeats} alternate runs. Start-up (workers ready and warm): local "
            f"{local['start']:.2f} s, Ray {remote['start']:.2f} s"
        )
        whole = {name: cases / (run["start"] + run["grading"]) for name, run in (("local", local), ("ray", remote))}
        print(f"local_pool_code_cases_per_s: {whole['local']:.1f}")
        print(f"ray_code_cases_per_s: {whole['ray']:.1f}")
        print(f"ray_vs_local_started_workers: {local['grading'] / remote['grading']:.2f}")
        print(f"local_batch_overhead_ms: {1000 * local['batch']:.2f}")
        print(f"ray_batch_overhead_ms: {1000 * remote['batch']:.2f}")
        print(f"ray_vs_local: {whole['ray'] / whole['local']:.2f}")


if __name__ == "__main__":
    main()
