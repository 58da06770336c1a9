"""`hf` generation speed: rdistill's decoding loop against a bare `model.generate` loop, same prompts, same run.

The baseline is what a user would write: prompts in the order given, batches of `--batch-size`,
left padding, `model.generate` with the KV cache, greedy. rdistill's `hf` backend sorts prompts
by length, drops each row from the batch (and the cache) the step it ends and samples each row
from its own generator (`rdistill.backends.hf`). Both decode greedily with the same token limit,
so both write the same texts up to the float rounding of padded attention; the agreement is
printed. Throughput counts each completion's own tokens (up to and with its end token), never
padding or the steps a finished row idles through. Runs alternate, `--rounds` times each, and
the fastest of each counts (other work on a shared machine only ever adds time).

- The micro student: the trained micro base of recipes/micro.yaml (built once and cached, a
  minute or two), on the micro-world's evaluation problems: short answers of varied length.
- SmolLM2-135M-Instruct (when `--real` names its folder, as `make real-model` writes it), on
  MATH-500 problems from `--math500`: long, prose answers, many cut by the token limit.

Usage: python benchmarks/generate_hf.py [--rounds 2] [--real models/SmolLM2-135M-Instruct] [--micro-model DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from rdistill.backends.hf import by_prompt_length, end_token_ids, generate_batch, load_model, prompt_texts
from rdistill.backends.interface import Request
from rdistill.base import ensure_micro_base
from rdistill.config import SamplingParams, load_recipe
from rdistill.micro.holdout import eval_set

REPO = Path(__file__).resolve().parents[1]


def bare_generate(tokenizer, model, conversations, params: SamplingParams, batch_size: int) -> tuple[list[str], int]:
    """The baseline: `model.generate` over batches in the order given; texts and useful tokens."""
    ends = end_token_ids(tokenizer, model)
    texts, tokens = [], 0
    for start in range(0, len(conversations), batch_size):
        prompts = prompt_texts(tokenizer, conversations[start : start + batch_size])
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(
                **encoded, max_new_tokens=params.max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        for row in output[:, encoded["input_ids"].shape[1] :].tolist():
            end = next((i for i, token in enumerate(row) if token in ends), None)
            tokens += len(row) if end is None else end + 1
            texts.append(tokenizer.decode(row if end is None else row[:end], skip_special_tokens=False))
    return texts, tokens


def rdistill_generate(
    tokenizer, model, conversations, params: SamplingParams, batch_size: int
) -> tuple[list[str], int]:
    """The `hf` backend's path: prompts by length, shrinking batches; texts in the order given and useful tokens."""
    requests = [Request({"id": str(i)}, 0, seed=i, messages=messages) for i, messages in enumerate(conversations)]
    texts: dict[int, str] = {}
    tokens = 0
    ordered = by_prompt_length(tokenizer, requests)
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        outputs = generate_batch(tokenizer, model, [r.messages for r in batch], params, [r.seed for r in batch])
        for request, output in zip(batch, outputs, strict=True):
            texts[int(request.problem["id"])] = output["text"]
            tokens += output["completion_tokens"]
    return [texts[i] for i in range(len(conversations))], tokens


def race(name: str, model_dir: Path, conversations, params: SamplingParams, batch_size: int, rounds: int) -> dict:
    """Fastest of `rounds` alternating runs of each; tokens/s of both, their ratio and the texts' agreement."""
    tokenizer, model = load_model(model_dir)
    best = {"bare": float("inf"), "rdistill": float("inf")}
    results = {}
    for _ in range(rounds):
        for label, run in (("bare", bare_generate), ("rdistill", rdistill_generate)):
            started = time.perf_counter()
            results[label] = run(tokenizer, model, conversations, params, batch_size)
            best[label] = min(best[label], time.perf_counter() - started)
    speeds = {label: results[label][1] / best[label] for label in best}
    agreement = sum(a == b for a, b in zip(results["bare"][0], results["rdistill"][0], strict=True))
    print(
        f"{name}: {len(conversations)} prompts, batch {batch_size}, up to {params.max_tokens} tokens: "
        f"bare {speeds['bare']:.1f} tokens/s ({results['bare'][1]} tokens, {best['bare']:.1f} s), "
        f"rdistill {speeds['rdistill']:.1f} tokens/s ({results['rdistill'][1]} tokens, {best['rdistill']:.1f} s), "
        f"same text {agreement}/{len(conversations)}"
    )
    return {"ratio": speeds["rdistill"] / speeds["bare"], "tokens_per_s": speeds["rdistill"]}


def micro_conversations(count: int) -> list[list[dict[str, str]]]:
    """Evaluation problems of the micro-world, math and code alternating."""
    problems = [p for pair in zip(eval_set("math"), eval_set("code"), strict=False) for p in pair][:count]
    return [[{"role": "user", "content": problem["prompt"]}] for problem in problems]


def math500_conversations(path: Path, count: int) -> list[list[dict[str, str]]]:
    """The first `count` MATH-500 problems, asked with the usual instruction to box the answer."""
    rows = [json.loads(line) for line in path.read_text().splitlines()[:count]]
    suffix = "\nPlease reason step by step, and put your final answer within \\boxed{}."
    return [[{"role": "user", "content": row["problem"] + suffix}] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--micro-prompts", type=int, default=96)
    parser.add_argument("--micro-model", type=Path, help="a trained micro student folder (default: the demo's base)")
    parser.add_argument("--real", type=Path, default=REPO / "models" / "SmolLM2-135M-Instruct")
    parser.add_argument("--real-prompts", type=int, default=16)
    parser.add_argument("--real-max-tokens", type=int, default=128)
    parser.add_argument("--math500", type=Path, default=REPO.parent / "shared" / "data" / "math500" / "test.jsonl")
    args = parser.parse_args()
    micro_model = args.micro_model or ensure_micro_base(load_recipe(REPO / "recipes" / "micro.yaml").base.micro)
    micro = race(
        "micro student",
        micro_model,
        micro_conversations(args.micro_prompts),
        SamplingParams(temperature=0.0, max_tokens=256),
        batch_size=16,
        rounds=args.rounds,
    )
    headline = {"micro_ratio": micro["ratio"], "micro_tokens_per_s": micro["tokens_per_s"]}
    if (args.real / "config.json").exists():
        real = race(
            "SmolLM2-135M-Instruct",
            args.real,
            math500_conversations(args.math500, args.real_prompts),
            SamplingParams(temperature=0.0, max_tokens=args.real_max_tokens),
            batch_size=8,
            rounds=args.rounds,
        )
        headline |= {"smollm2_ratio": real["ratio"], "smollm2_tokens_per_s": real["tokens_per_s"]}
    else:
        print(f"SmolLM2-135M-Instruct: skipped, {args.real} has no model (run `make real-model`)")
    for name, value in headline.items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
