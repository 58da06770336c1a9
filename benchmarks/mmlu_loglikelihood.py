"""Log-likelihood multiple choice of a real student on MMLU-STEM (non-math): acc, acc_norm, seconds, and a check.

The scores come from the evaluate stage's own code (`Benchmark.choice_requests`,
`rdistill.evaluate.loglikelihood.score_problems` on the `hf` backend): lm-evaluation-harness's
zero-shot MMLU prompt, continuations " A".." D", acc and acc_norm as lm-eval defines them.
The check recomputes the log-likelihoods of the first `--check` problems the plainest way, one
unpadded forward pass of context + continuation per choice (lm-eval's `_encode_pair` split),
and prints the largest difference.

Both wall-clock and CPU seconds are printed: on a shared machine the CPU seconds tell what an
idle one would take.

Usage: python benchmarks/mmlu_loglikelihood.py models/SmolLM2-135M-Instruct [--sample 300 --seed 0]
       [--continuation text]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from rdistill.backends.hf import HFBackend, encode_pair
from rdistill.config import BenchmarkSpec, EvaluateOptions, ModelSpec
from rdistill.data.benchmarks import load_benchmark
from rdistill.evaluate.loglikelihood import score_problems

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu_stem_nonmath"


def direct_loglikelihood(backend: HFBackend, context: str, continuation: str) -> float:
    """Summed log-probability of the continuation from one unpadded forward pass of the whole sequence."""
    import torch

    context_ids, continuation_ids = encode_pair(backend.tokenizer, context, continuation)
    ids = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        log_probs = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), dim=-1)
    positions = range(len(context_ids) - 1, len(context_ids) + len(continuation_ids) - 1)
    return float(sum(log_probs[position, token] for position, token in zip(positions, continuation_ids, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="transformers folder or .gguf file of the student")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--sample", type=int, default=0, help="a random slice of this many problems (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--check", type=int, default=3, help="problems recomputed by direct forward passes")
    parser.add_argument("--continuation", choices=["letter", "text"], default="letter")
    args = parser.parse_args()
    spec = BenchmarkSpec(
        name="mmlu_stem_nonmath",
        format="mcq",
        path=args.data,
        scoring="loglikelihood",
        continuation=args.continuation,
    )
    benchmark = load_benchmark(spec, EvaluateOptions(), Path("."), "benchmark")
    problems = benchmark.problems
    if args.sample:
        problems = random.Random(args.seed).sample(problems, args.sample)
    backend = HFBackend(ModelSpec(name="student", backend="hf", model=args.model, batch_size=args.batch_size), "model")
    wall, cpu = time.perf_counter(), time.process_time()
    rows = score_problems(backend, benchmark, problems)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gold = {problem["id"]: problem["answer"] for problem in problems}
    acc = sum(row["text"] == gold[row["problem_id"]] for row in rows) / len(rows)
    acc_norm = sum(row["choice_norm"] == gold[row["problem_id"]] for row in rows) / len(rows)
    worst = 0.0
    for problem, row in list(zip(problems, rows, strict=True))[: args.check]:
        context, continuations, _ = benchmark.choice_requests(problem)
        direct = [direct_loglikelihood(backend, context, continuation) for continuation in continuations]
        worst = max(worst, *(abs(a - b) for a, b in zip(direct, row["loglikelihoods"], strict=True)))
        print(json.dumps({"problem": problem["id"], "batched": row["loglikelihoods"], "direct": direct}))
    print(
        json.dumps(
            {
                "problems": len(rows),
                "continuation": args.continuation,
                "sample_seed": args.seed if args.sample else None,
                "acc": round(acc, 4),
                "acc_norm": round(acc_norm, 4),
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "checked_problems": min(args.check, len(rows)),
                "max_abs_difference_from_direct": worst,
            }
        )
    )


if __name__ == "__main__":
    main()
