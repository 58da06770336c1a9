"""Training throughput: packed training against TRL's default collation (padding), in one run, on the same data.

Both go through the same `prepare_run` (TRL's SFTTrainer, assistant-only loss, same model, data,
global batch and seed); the baseline pads each batch to its longest example (TRL's default,
no packing), the other packs examples into rows with per-example position ids
(`train.sft.packing: true`, rdistill's default). Runs alternate, `--rounds` times each, and the
fastest of each counts (as timeit does): other work on a shared machine only ever adds time.
Throughput counts the examples' own tokens, never padding, from the end of the first
`--warmup-steps` optimiser steps to the end of the run (steady state); the whole-run figure
(from the start of training, as the training log counts it) is printed too.

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
from transformers import TrainerCallback

from rdistill.config import MicroStudentConfig, SFTOptions
from rdistill.micro.problems import generate_problems
from rdistill.micro.student import build_model, build_tokenizer
from rdistill.micro.teachers import TEACHERS, write_trace
from rdistill.training.sft import prepare_run

# Qwen2.5-0.5B's published configuration (config.json of Qwen/Qwen2.5-0.5B-Instruct).
QWEN2_5_0_5B = dict(
    vocab_size=151936,
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
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
            conversations.append(
                [
                    {"role": "user", "content": problem["prompt"]},
                    {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n{answer}"},
                ]
            )
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
        conversations.append(
            [{"role": "user", "content": "Solve every problem below."}, {"role": "assistant", "content": body}]
        )
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
    Qwen2ForCausalLM(
        Qwen2Config(**QWEN2_5_0_5B, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    ).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class StepClock(TrainerCallback):
    """Wall time and example tokens seen at the end of every optimiser step (a TrainerCallback).

    Throughput is taken between the end of the warm-up steps and the end of the run: the first
    steps pay for CUDA and cuBLAS start-up, memory-pool growth and, with flex attention, kernel
    compilation, which a run of a few dozen steps would otherwise count as training time.
    """

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self.marks = [(self._now(), 0)]

    def on_step_end(self, args, state, control, **kwargs) -> None:
        self.marks.append((self._now(), state.num_input_tokens_seen))

    def tokens_per_second(self, skip_steps: int) -> float:
        (start, tokens_before), (end, tokens_after) = self.marks[min(skip_steps, len(self.marks) - 2)], self.marks[-1]
        return (tokens_after - tokens_before) / (end - start)

    @staticmethod
    def _now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()


def measure(
    model_dir: Path, conversations, options: SFTOptions, workdir: Path, warmup_steps: int
) -> tuple[float, float]:
    """Tokens per second of one epoch with `options`: over the whole session (the trainer's own count),
    and after `warmup_steps`."""
    prepared = prepare_run(
        model_dir, conversations, workdir, options.model_copy(update={"epochs": 1.0, "save_steps": 10**6})
    )
    clock = StepClock()
    prepared.trainer.add_callback(clock)
    prepared.trainer.train()
    return prepared.throughput.tokens_per_second, clock.tokens_per_second(warmup_steps)


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
    """The packed run's attention on a GPU: flash-attention's varlen kernel where installed, else flex attention."""
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "flex_attention"


def settings(
    on_gpu: bool, use_liger: bool = True, checkpointing: bool = True, attention: str | None = None
) -> tuple[SFTOptions, SFTOptions]:
    """(TRL's default collation, packed training): same batch, schedule and precision."""
    if not on_gpu:
        common = dict(batch_size=32, max_length=512, logging_steps=10**6)
        return SFTOptions(**common, packing=False), SFTOptions(**common, packing=True)
    common = dict(
        batch_tokens=65536, max_length=8192, bf16=True, gradient_checkpointing=checkpointing, logging_steps=10**6
    )
    liger = use_liger and importlib.util.find_spec("liger_kernel") is not None
    baseline = SFTOptions(**common, packing=False, micro_batch_size=2)
    return baseline, SFTOptions(
        **common,
        packing=True,
        micro_batch_size=2,
        attn_implementation=attention or packed_attention(),
        liger_kernel=liger,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternating runs of each configuration")
    parser.add_argument("--examples", type=int, default=None, help="conversations (default: 192 on CPU, 256 on GPU)")
    parser.add_argument("--no-liger", action="store_true", help="leave Liger's kernels out of the packed configuration")
    parser.add_argument(
        "--no-checkpointing",
        action="store_true",
        help="GPU: keep activations instead of recomputing them (models that fit)",
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=2, help="optimiser steps left out of the steady-state throughput"
    )
    parser.add_argument(
        "--attention",
        default=None,
        help=(
            "GPU: the packed run's attn_implementation (default: flash_attention_2 where installed, else "
            "flex_attention)"
        ),
    )
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
        speeds: dict[str, list[tuple[float, float]]] = {"trl_default": [], "packed": []}
        for round_index in range(args.rounds):
            for name, options in (("trl_default", baseline), ("packed", packed)):
                whole, steady = measure(
                    model_dir, conversations, options, workdir / f"{name}-{round_index}", args.warmup_steps
                )
                speeds[name].append((whole, steady))
                print(
                    (
                        f"round {round_index + 1} {name}: {steady:,.0f} tokens/s after {args.warmup_steps} steps, "
                        f"{whole:,.0f} over the whole run"
                    ),
                    flush=True,
                )
        lengths = [
            len(ids)
            for ids in build_tokenizer(MicroStudentConfig()).apply_chat_template(
                conversations, tokenize=True, return_dict=True
            )["input_ids"]
        ]
        (trl_whole, trl_speed), (packed_whole, packed_speed) = (
            tuple(map(max, zip(*speeds[name], strict=False))) for name in ("trl_default", "packed")
        )
        print(f"device: {device}")
        print(f"examples: {len(conversations)}")
        print(f"example_tokens: min {min(lengths)}, mean {statistics.mean(lengths):.0f}, max {max(lengths)}")
        shown = (
            "packing",
            "attn_implementation",
            "liger_kernel",
            "gradient_checkpointing",
            "bf16",
            "micro_batch_size",
            "max_length",
        )
        print(f"packed_settings: {packed.model_dump(include=set(shown))}")
        print(
            f"whole-run tokens/s (from the start of training, warm-up steps included): TRL default "
            f"{trl_whole:.0f}, packed {packed_whole:.0f}, ratio {packed_whole / trl_whole:.2f}x"
        )
        print(f"trl_default_tokens_per_s: {trl_speed:.0f}")
        print(f"packed_tokens_per_s: {packed_speed:.0f}")
        print(f"packing_speedup: {packed_speed / trl_speed:.2f}x")
        if on_gpu:
            peak = next((value for key, value in PEAK_BF16.items() if key in device), None)
            per_token = flops_per_token(model_dir, lengths)
            for name, speed in (("trl_default", trl_speed), ("packed", packed_speed)):
                print(
                    f"{name}_mfu: {per_token * speed / peak:.1%}" if peak else f"{name}_mfu: unknown peak for {device}"
                )


if __name__ == "__main__":
    main()
