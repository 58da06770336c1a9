"""Training throughput: packed training against TRL's default collation (padding), in one run, on the same data.

Both go through the same `prepare_run` (TRL's SFTTrainer, assistant-only loss, same model, data,
global batch and seed); the baseline pads each batch to its longest example (TRL's default,
no packing, also rdistill's default), the other packs examples into rows with per-example
position ids (`train.sft.packing: true`). Runs alternate,
`--rounds` times each, and the fastest of each counts (as timeit does): other work on a shared
machine only ever adds time. Throughput counts the examples' own tokens, never padding.

- CPU: the micro student (its default size, random initialisation: speed does not depend on
  the weights) on micro-world traces of every difficulty and teacher.
- GPU: a model of the Qwen2.5-0.5B configuration at random initialisation, bf16, on
  conversations of 256 to 8192 tokens (log-uniform, as long reasoning traces vary); the packed
  run adds flash-attention's variable-length kernel where installed (else torch's flex attention
  with a block-sparse mask per packed row) and Liger's kernels when they are installed.
  Prints model FLOPs utilisation (MFU) against the GPU's dense bf16 peak.

Usage: python benchmarks/train.py [--rounds 3] [--examples 320]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rdistill.config import SFTOptions
from rdistill.micro.problems import generate_problems
from rdistill.micro.student import MicroStudentConfig, build_model, build_tokenizer
from rdistill.micro.teachers import TEACHERS, write_trace
from rdistill.train.sft import prepare_run

# Qwen2.5-0.5B's published configuration (config.json of Qwen/Qwen2.5-0.5B-Instruct).
QWEN2_5_0_5B = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
    num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)
# Dense bf16 peak FLOP/s by GPU name.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


def micro_traces(count: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """Micro-world conversations as curate writes them: every teacher, difficulties 1-4, math and code."""
    styles = list(TEACHERS.values())
    conversations = []
    for domain in ("math", "code"):
        for index, problem in enumerate(generate_problems(domain, count // 2, [1, 2, 3, 4], seed=seed)):
            reasoning, answer = write_trace(problem, styles[index % len(styles)], seed=index)
            conversations.append([{"role": "user", "content": problem["prompt"]},
                                  {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n{answer}"}])
    random.Random(seed).shuffle(conversations)
    return conversations


def long_traces(count: int, tokenizer, seed: int = 0) -> list[list[dict[str, str]]]:
    """Conversations whose think blocks are micro traces strung together to 256-8192 tokens."""
    rng = random.Random(seed)
    pool = [messages[1]["content"] for messages in micro_traces(400, seed)]
    tokens_per_trace = statistics.mean(len(tokenizer(text)["input_ids"]) for text in pool[:50])
    conversations = []
    for _ in range(count):
        target = math.exp(rng.uniform(math.log(256), math.log(8000)))
        body = "\n".join(rng.choice(pool) for _ in range(max(1, int(target / tokens_per_trace))))
        conversations.append([{"role": "user", "content": "Solve every problem below."}, {"role": "assistant", "content": body}])
    return conversations


def micro_student(folder: Path) -> Path:
    """The demo's micro student at random initialisation."""
    config = MicroStudentConfig()
    tokenizer = build_tokenizer(config)
    build_model(config, tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def qwen_student(folder: Path) -> Path:
    """A Qwen2.5-0.5B-shaped model at random initialisation; the micro tokenizer supplies text and template."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(MicroStudentConfig())
    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(**QWEN2_5_0_5B, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure(model_dir: Path, conversations, options: SFTOptions, workdir: Path) -> tuple[float, int]:
    """Tokens per second of one epoch with `options`, and the number of example tokens trained on."""
    prepared = prepare_run(model_dir, conversations, workdir, options.model_copy(update={"epochs": 1.0, "save_steps": 10**6}))
    dataset = prepared.trainer.train_dataset
    tokens = sum(len(ids) for ids in dataset["input_ids"])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    prepared.trainer.train()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - started), tokens


def flops_per_token(model_dir: Path, conversations_tokens: list[int]) -> float:
    """Training FLOPs a token: 6 N for the weights plus causal attention over the token's own example."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        parameters = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    mean_context = sum(n * n for n in conversations_tokens) / sum(conversations_tokens)
    return 6 * parameters + 6 * config.num_hidden_layers * config.hidden_size * mean_context


def packed_attention() -> str:
    """The packed run's attention on a GPU: flash-attention's variable-length kernel where installed, else flex attention."""
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "flex_attention"


def settings(on_gpu: bool, use_liger: bool = True, checkpointing: bool = True, attention: str | None = None) -> tuple[SFTOptions, SFTOptions]:
    """(TRL's default collation, packed training): same batch, schedule and precision."""
    if not on_gpu:
        common = dict(batch_size=32, max_length=512, logging_steps=10**6)
        return SFTOptions(**common, packing=False), SFTOptions(**common, packing=True)
    common = dict(batch_tokens=65536, max_length=8192, bf16=True, gradient_checkpointing=checkpointing, logging_steps=10**6)
    liger = use_liger and importlib.util.find_spec("liger_kernel") is not None
    baseline = SFTOptions(**common, packing=False, micro_batch_size=2)
    return baseline, SFTOptions(**common, packing=True, micro_batch_size=2, attn_implementation=attention or packed_attention(), liger_kernel=liger)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternating runs of each configuration")
    parser.add_argument("--examples", type=int, default=None, help="conversations (default: 192 on CPU, 256 on GPU)")
    parser.add_argument("--no-liger", action="store_true", help="leave Liger's kernels out of the packed configuration")
    parser.add_argument("--no-checkpointing", action="store_true", help="GPU: keep activations instead of recomputing them (models that fit)")
    parser.add_argument("--attention", default=None, help="GPU: the packed run's attn_implementation (default: flash_attention_2 where installed, else flex_attention)")
    args = parser.parse_args()
    on_gpu = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if on_gpu:
            model_dir = qwen_student(workdir / "student")
            from transformers import AutoTokenizer

            conversations = long_traces(args.examples or 256, AutoTokenizer.from_pretrained(model_dir))
            device = torch.cuda.get_device_name()
        else:
            model_dir = micro_student(workdir / "student")
            conversations = micro_traces(args.examples or 192)
            device = f"cpu ({torch.get_num_threads()} threads)"
        baseline, packed = settings(on_gpu, not args.no_liger, not args.no_checkpointing, args.attention)
        speeds: dict[str, list[float]] = {"trl_default": [], "packed": []}
        for round_index in range(args.rounds):
            for name, options in (("trl_default", baseline), ("packed", packed)):
                speed, tokens = measure(model_dir, conversations, options, workdir / f"{name}-{round_index}")
                speeds[name].append(speed)
                print(f"round {round_index + 1} {name}: {speed:,.0f} tokens/s", flush=True)
        lengths = [len(ids) for ids in build_tokenizer(MicroStudentConfig()).apply_chat_template(conversations, tokenize=True, return_dict=True)["input_ids"]]
        trl_speed, packed_speed = max(speeds["trl_default"]), max(speeds["packed"])
        print(f"device: {device}")
        print(f"examples: {len(conversations)}")
        print(f"example_tokens: min {min(lengths)}, mean {statistics.mean(lengths):.0f}, max {max(lengths)}")
        print(f"packed_settings: {packed.model_dump(exclude_defaults=True)}")
        print(f"trl_default_tokens_per_s: {trl_speed:.0f}")
        print(f"packed_tokens_per_s: {packed_speed:.0f}")
        print(f"packing_speedup: {packed_speed / trl_speed:.2f}x")
        if on_gpu:
            peak = next((value for key, value in PEAK_BF16.items() if key in device), None)
            per_token = flops_per_token(model_dir, lengths)
            for name, speed in (("trl_default", trl_speed), ("packed", packed_speed)):
                print(f"{name}_mfu: {per_token * speed / peak:.1%}" if peak else f"{name}_mfu: unknown peak for {device}")


if __name__ == "__main__":
    main()
