"""One fine-tuning run: TRL's `SFTTrainer` on chat messages, loss on the assistant turn only.

The assistant turn is masked by TRL from the template's generation markers, or, for a template
without them, from the prompt/completion form the conversations are cut into (`chat_templates`).

The same code trains a 7B student on GPUs and the micro student on a laptop CPU. Packing, LoRA,
mixed precision, gradient checkpointing, Liger kernels and the trackers are TRL / transformers /
peft options; rdistill only chooses them from `SFTOptions` and sizes the batch.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdistill.config import SFTOptions
from rdistill.errors import RecipeError
from rdistill.training.chat_templates import (
    chat_template,
    check_marked_template,
    end_of_turn_tokens,
    has_markers,
    prompt_completion,
)

CHECKPOINTS = "checkpoints"
TRAINING_LOG = "training_log.json"
# Written into every checkpoint: training seconds and legs so far, so that a resumed run reports the whole run.
LEGS_FILE = "rdistill_legs.json"


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch is cut: rows per forward pass on a device, and passes summed per step."""

    micro_batch_size: int
    accumulation_steps: int
    num_processes: int

    @property
    def rows_per_step(self) -> int:
        """Rows (packed rows or examples) in one optimiser step over every device."""
        return self.micro_batch_size * self.accumulation_steps * self.num_processes


def batch_plan(options: SFTOptions, num_processes: int, mean_example_tokens: float) -> BatchPlan:
    """Cut the global batch (`batch_size` examples or `batch_tokens` tokens) into devices and accumulation.

    With packing a row holds `max_length` tokens, so a batch given in examples becomes the
    number of rows that hold about as many tokens as that many average examples.
    """
    target_tokens = options.batch_tokens or options.batch_size * mean_example_tokens
    if options.packing:
        rows = round(target_tokens / options.max_length)
    else:
        rows = options.batch_size if options.batch_tokens is None else round(target_tokens / mean_example_tokens)
    per_device = math.ceil(max(rows, num_processes) / num_processes)
    micro = min(options.micro_batch_size or (1 if options.packing else per_device), per_device)
    return BatchPlan(micro, math.ceil(per_device / micro), num_processes)


def _progress_callback(description: str, console):
    """A TrainerCallback that reports progress on the main process: a rich bar with the running loss on a
    terminal, periodic plain lines (steps, loss, tokens/s, ETA) in a log file."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    from rdistill.console import PlainProgress, is_terminal

    class RichProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.plain = None
            if not is_terminal(console):
                if state.is_world_process_zero:
                    self.plain = PlainProgress(
                        f"{description} steps", state.max_steps, state.global_step, console=console
                    )
                self.progress = Progress(disable=True)
            else:
                self.progress = Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    TextColumn("{task.completed}/{task.total} steps"),
                    TextColumn("loss {task.fields[loss]}"),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=False,
                    disable=not state.is_world_process_zero,
                )
            self.progress.start()
            self.task = self.progress.add_task(
                description, total=state.max_steps, completed=state.global_step, loss="-"
            )

        def on_step_end(self, args, state, control, **kwargs):
            self.progress.update(self.task, completed=state.global_step)
            if self.plain is not None:
                self.plain.update(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.progress.update(self.task, loss=f"{logs['loss']:.3f}")
                if self.plain is not None:
                    rate = logs.get("tokens_per_second")
                    fields = {"loss": f"{logs['loss']:.3f}"} | ({"tokens/s": f"{rate:,.0f}"} if rate else {})
                    self.plain.fields.update(fields)

        def on_train_end(self, args, state, control, **kwargs):
            self.progress.stop()

    return RichProgress()


class Throughput:
    """Counts this session's non-padding tokens per second, overall and between log entries.

    The trainer's own `train_tokens_per_second` is a running session average that it logs only
    with some settings; the training log wants the rate of each logged interval too.
    """

    def __init__(self):
        self.tokens = self.seconds = 0.0

    def callback(self):
        """A TrainerCallback that adds `tokens_per_second` to every log entry, trackers included."""
        from transformers import TrainerCallback

        throughput = self

        class ThroughputCallback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                self.start_tokens, self.start_time = state.num_input_tokens_seen, time.perf_counter()
                self.mark_tokens, self.mark_time = self.start_tokens, self.start_time

            def on_log(self, args, state, control, logs=None, **kwargs):
                now, tokens = time.perf_counter(), state.num_input_tokens_seen
                if logs is not None and "loss" in logs and now > self.mark_time:
                    logs["tokens_per_second"] = round((tokens - self.mark_tokens) / (now - self.mark_time), 1)
                    state.log_history[-1]["tokens_per_second"] = logs["tokens_per_second"]
                self.mark_tokens, self.mark_time = tokens, now
                throughput.tokens, throughput.seconds = tokens - self.start_tokens, now - self.start_time

        return ThroughputCallback()

    @property
    def tokens_per_second(self) -> float | None:
        """Non-padding tokens per second over the whole session."""
        return round(self.tokens / self.seconds, 1) if self.seconds else None


class Legs:
    """The legs of one training run (a first one, then one per resume) and the seconds spent in them.

    A killed run resumes from its last checkpoint; the trainer then counts time and loss of the
    new leg only. Each checkpoint records the seconds trained up to it, so a resume starts from
    them (the work after the last checkpoint is redone, and counted once).
    """

    def __init__(self, resume_from: Path | None):
        record = {}
        if resume_from is not None and (resume_from / LEGS_FILE).exists():
            record = json.loads((resume_from / LEGS_FILE).read_text())
        self.prior_seconds = float(record.get("seconds", 0.0))
        self.count = int(record.get("legs", 0)) + 1
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Seconds trained over every leg so far."""
        return self.prior_seconds + time.perf_counter() - self.started

    def callback(self):
        """A TrainerCallback that writes the legs' record into each checkpoint as it is saved."""
        from transformers import TrainerCallback

        legs = self

        class LegsCallback(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if state.is_world_process_zero and folder.exists():
                    (folder / LEGS_FILE).write_text(json.dumps({"seconds": legs.seconds(), "legs": legs.count}))

        return LegsCallback()


def whole_run_loss(log_history: list[dict[str, Any]], resumed_at: int, leg_loss: float, steps: int) -> float:
    """Mean training loss over every step of the run, from the logged losses before the resume and this leg's mean.

    The trainer's `training_loss` of a resumed leg averages that leg's steps only; the logged
    losses up to the resume (each the mean since the previous log) cover the steps before it.
    """
    if not resumed_at or not steps:
        return leg_loss
    earlier, previous_step = 0.0, 0
    for entry in log_history:
        if "loss" in entry and entry.get("step", 0) <= resumed_at:
            earlier += entry["loss"] * (entry["step"] - previous_step)
            previous_step = entry["step"]
    return (earlier + leg_loss * (steps - resumed_at)) / steps


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder, or None."""
    if not checkpoint_dir.exists():
        return None
    candidates = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(candidates, key=lambda p: int(p.name.split("-")[1]), default=None)


def check_gpu_options(options: SFTOptions, on_gpu: bool) -> None:
    """Fail before loading anything when a GPU-only option cannot work here."""
    if options.liger_kernel and not on_gpu:
        raise RecipeError("train.sft.liger_kernel: Liger's kernels are Triton GPU kernels; no GPU is available here")
    if options.liger_kernel and importlib.util.find_spec("liger_kernel") is None:
        raise RecipeError(
            "train.sft.liger_kernel: the liger-kernel package is not installed (pip install 'rdistill[gpu]')"
        )
    if options.attn_implementation.startswith("flash") and not on_gpu:
        raise RecipeError(
            f"train.sft.attn_implementation: {options.attn_implementation} needs a GPU; use 'sdpa' on a CPU"
        )


def _trackers(options: SFTOptions, output_dir: Path) -> tuple[list[str], list[Any]]:
    """`report_to` names for TRL, and callbacks for the trackers whose files belong in the run directory."""
    names = [name for name in options.report_to if name != "tensorboard"]
    callbacks = []
    if "tensorboard" in options.report_to:
        # The stock callback writes under the checkpoints folder, which is removed after training.
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(output_dir / "tensorboard"))))
    return names or ["none"], callbacks


def _lora_config(options: SFTOptions):
    """peft's adapter config, or None for full fine-tuning."""
    if options.finetuning != "lora":
        return None
    from peft import LoraConfig

    lora = options.lora
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def sft_config(
    options: SFTOptions,
    checkpoint_dir: Path,
    plan: BatchPlan,
    on_gpu: bool,
    report_to: list[str],
    marked: bool = True,
    end_of_turn: str | None = None,
):
    """TRL's `SFTConfig` for these options: assistant-only loss, packing, the batch plan, checkpoints to resume from.

    `marked`: the examples are chat messages whose template marks the assistant turn; otherwise
    they are prompt/completion pairs, the loss is on the completion, and `end_of_turn` the token
    that ends each completion (TRL's eos for them).
    """
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(checkpoint_dir),
        num_train_epochs=options.epochs,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=options.warmup_ratio,  # a value below 1 is a share of all steps
        per_device_train_batch_size=plan.micro_batch_size,
        gradient_accumulation_steps=plan.accumulation_steps,
        weight_decay=options.weight_decay,
        max_length=options.max_length,
        # Best-fit decreasing keeps examples whole; TRL then trains padding-free with per-example position ids.
        packing=options.packing,
        packing_strategy="bfd",
        assistant_only_loss=marked,
        completion_only_loss=not marked,
        eos_token=end_of_turn,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=2,
        logging_steps=options.logging_steps,
        include_num_input_tokens_seen="non_padding",
        report_to=report_to,
        seed=options.seed,
        data_seed=options.seed,
        bf16=options.bf16 and on_gpu,
        use_cpu=not on_gpu,
        use_liger_kernel=options.liger_kernel,
        disable_tqdm=True,
        dataloader_num_workers=0,
        # TRL turns activation checkpointing on by default; a small model on a CPU only pays for it.
        activation_checkpointing=options.gradient_checkpointing,
    )


def _save_student(trainer, tokenizer, output_dir: Path, lora: bool) -> None:
    """Write a plain transformers checkpoint: LoRA adapters merged in, the tokenizer with its own template."""
    if lora:
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        if trainer.accelerator.is_main_process:
            merged.save_pretrained(output_dir)
    else:
        trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)


def training_dataset(tokenizer, template: str, conversations: list[list[dict[str, str]]], model_path: Path):
    """(dataset, marked, end of turn): chat messages for a template with generation markers, else
    prompt/completion pairs and the token their completions end with.

    TRL appends the tokenizer's eos to a completion that does not end with it; told the
    end-of-turn token instead (a ChatML base model's eos is <|endoftext|>, its turns end with
    <|im_end|>), it trains on the token that really ends the turn and stops generation there.
    """
    from datasets import Dataset

    if has_markers(template):
        check_marked_template(tokenizer, template, model_path)
        return Dataset.from_list([{"messages": messages} for messages in conversations]), True, None
    pairs = [prompt_completion(tokenizer, messages, model_path) for messages in conversations]
    end = next(stop for stop in end_of_turn_tokens(tokenizer) if pairs[0]["completion"].endswith(stop))
    return Dataset.from_list(pairs), False, end


@dataclass
class PreparedRun:
    """A trainer ready to run, with what the training log reports about it."""

    trainer: Any
    tokenizer: Any
    chat_template: str
    marked: bool
    plan: BatchPlan
    parameters: int
    trainable_parameters: int
    throughput: Throughput


def prepare_run(
    model_path: Path,
    conversations: list[list[dict[str, str]]],
    output_dir: Path,
    options: SFTOptions,
    description: str = "train",
    console=None,
) -> PreparedRun:
    """Load the model and tokenizer and build TRL's trainer; the dataset is tokenized, masked and packed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTTrainer

    on_gpu = torch.cuda.is_available()
    check_gpu_options(options, on_gpu)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    template = chat_template(tokenizer, model_path)
    dataset, marked, end_of_turn = training_dataset(tokenizer, template, conversations, model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, attn_implementation=options.attn_implementation)
    parameters = sum(p.numel() for p in model.parameters())
    lengths = [
        len(ids) for ids in tokenizer.apply_chat_template(conversations, tokenize=True, return_dict=True)["input_ids"]
    ]
    plan = batch_plan(options, int(os.environ.get("WORLD_SIZE", "1")), sum(lengths) / len(lengths))
    report_to, tracker_callbacks = _trackers(options, output_dir)
    trainer = SFTTrainer(
        model=model,
        args=sft_config(options, output_dir / CHECKPOINTS, plan, on_gpu, report_to, marked, end_of_turn),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_lora_config(options),
        callbacks=[_progress_callback(description, console), *tracker_callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    throughput = Throughput()
    # First in line, so that the trackers' callbacks see the added rate as well.
    trainer.callback_handler.callbacks.insert(0, throughput.callback())
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return PreparedRun(trainer, tokenizer, template, marked, plan, parameters, trainable, throughput)


def fine_tune(
    model_path: Path,
    conversations: list[list[dict[str, str]]],
    output_dir: Path,
    options: SFTOptions,
    description: str = "train",
    console=None,
) -> dict[str, Any]:
    """Fine-tune the model at `model_path` on chat conversations; save it to `output_dir`.

    Checkpoints go to `output_dir/checkpoints`; if one exists the run resumes from it with the
    same data order. Returns the training summary, also written to `output_dir/training_log.json`.
    """
    output_dir = Path(output_dir)
    prepared = prepare_run(model_path, conversations, output_dir, options, description, console)
    trainer, plan = prepared.trainer, prepared.plan
    resume_from = last_checkpoint(output_dir / CHECKPOINTS)
    legs = Legs(resume_from)
    trainer.add_callback(legs.callback())
    resumed_at = int(resume_from.name.split("-")[1]) if resume_from else 0
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = legs.seconds()
    _save_student(trainer, prepared.tokenizer, output_dir, options.finetuning == "lora")
    summary = {
        "steps": result.global_step,
        "train_loss": whole_run_loss(trainer.state.log_history, resumed_at, result.training_loss, result.global_step),
        "seconds": round(seconds, 2),
        "legs": legs.count,
        "last_leg": {
            "steps": result.global_step - resumed_at,
            "train_loss": result.training_loss,
            "seconds": round(time.perf_counter() - legs.started, 2),
        },
        "examples": len(conversations),
        "tokens_per_second": prepared.throughput.tokens_per_second,
        "resumed_from": resume_from.name if resume_from else None,
        "parameters": prepared.parameters,
        "trainable_parameters": prepared.trainable_parameters,
        "finetuning": options.finetuning,
        "packing": options.packing,
        "micro_batch_size": plan.micro_batch_size,
        "accumulation_steps": plan.accumulation_steps,
        "num_processes": plan.num_processes,
        "log_history": trainer.state.log_history,
    }
    if trainer.accelerator.is_main_process:
        (output_dir / TRAINING_LOG).write_text(json.dumps(summary, indent=2))
        shutil.rmtree(output_dir / CHECKPOINTS, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return summary
