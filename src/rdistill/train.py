"""Stage `train`: supervised fine-tuning of the student on the curated traces with TRL.

The same code path trains a 7B student on a GPU and the micro student on a laptop CPU:
TRL's `SFTTrainer` on chat messages rendered by the student tokenizer's own chat template,
loss on the assistant turn only. A killed run resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rdistill.config import SFTOptions, TrainOptions
from rdistill.data import SFT_COLUMNS, read_records
from rdistill.data.manifest import run_stage
from rdistill.errors import DataError, RecipeError

OUTPUT = "student"


def _progress_callback(description: str, console):
    """A TrainerCallback that draws a rich progress bar with the running loss."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} steps"),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(description, total=state.max_steps, completed=state.global_step, loss="-")

        def on_step_end(self, args, state, control, **kwargs):
            self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.progress.update(self.task, loss=f"{logs['loss']:.3f}")

        def on_train_end(self, args, state, control, **kwargs):
            self.progress.stop()

    return RichProgress()


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder, or None."""
    if not checkpoint_dir.exists():
        return None
    candidates = [p for p in checkpoint_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(candidates, key=lambda p: int(p.name.split("-")[1]), default=None)


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
    same data order. Returns the training summary (steps, loss, tokens/s, seconds).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    dataset = Dataset.from_list([{"messages": messages} for messages in conversations])
    on_gpu = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(checkpoint_dir),
        num_train_epochs=options.epochs,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=options.warmup_ratio,  # a value below 1 is a share of all steps
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        weight_decay=options.weight_decay,
        max_length=options.max_length,
        assistant_only_loss=True,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=2,
        logging_steps=options.logging_steps,
        report_to="none",
        seed=options.seed,
        data_seed=options.seed,
        bf16=options.bf16 and on_gpu,
        use_cpu=not on_gpu,
        disable_tqdm=True,
        dataloader_num_workers=0,
        # TRL turns activation checkpointing on by default; a small model on a CPU only pays for it.
        activation_checkpointing=options.gradient_checkpointing,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[_progress_callback(description, console)],
    )
    trainer.remove_callback(PrinterCallback)
    resume_from = last_checkpoint(checkpoint_dir)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - started
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(output_dir)
    tokens = sum(len(row["input_ids"]) for row in trainer.train_dataset) * options.epochs
    summary = {
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "seconds": round(seconds, 2),
        "examples": len(conversations),
        "tokens_per_second": round(tokens / seconds, 1) if seconds and not resume_from else None,
        "resumed_from": resume_from.name if resume_from else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "log_history": trainer.state.log_history,
    }
    (output_dir / "training_log.json").write_text(json.dumps(summary, indent=2))
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return summary


def resolve_base(options: TrainOptions, console=None) -> Path:
    """The folder of the student to fine-tune: the cached micro base, or a local model folder."""
    if options.student == "micro":
        from rdistill.micro.student import ensure_base

        return ensure_base(options.micro_student, console=console)
    path = Path(options.student)
    if not (path / "config.json").exists():
        raise RecipeError(f"train.student: {path} is not a model folder (no config.json); use 'micro' or a local transformers checkpoint")
    return path


def run(options: TrainOptions, run_dir: Path, force: bool = False, log=print, console=None) -> dict[str, Any]:
    """Fine-tune the base student on `sft.jsonl` into `student/`."""
    run_dir = Path(run_dir)

    def work() -> dict[str, Any]:
        path = run_dir / "sft.jsonl"
        rows = read_records(path, SFT_COLUMNS)
        if not rows:
            raise DataError(f"{path}: no training examples; loosen the curation filters")
        base = resolve_base(options, console)
        summary = fine_tune(base, [row["messages"] for row in rows], run_dir / OUTPUT, options.sft, "distill student", console)
        return {key: summary[key] for key in ("examples", "steps", "train_loss", "tokens_per_second", "parameters")}

    return run_stage(run_dir, "train", options, inputs=["sft.jsonl"], outputs=[OUTPUT], work=work, force=force, partials=[OUTPUT], log=log)
