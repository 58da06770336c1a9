"""Stage `train`: supervised fine-tuning of the base student on the curated traces (`student/`).

The fine-tuning itself is the `rdistill.training` component (TRL's SFTTrainer). One stage by
default (`train.sft` on sft.jsonl); `train.stages` lists several, each on its own data with its
own schedule and starting from the previous stage's model (the Valley paper's two-stage design).
With `train.launch.num_processes > 1` the work runs under `accelerate launch`. A killed run
resumes from its last checkpoint; intermediate stages that finished are kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rdistill.config import TrainOptions, TrainStageOptions
from rdistill.data import BASE_FILE, read_base, read_jsonl_lines, sft_problems
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import DataError, RecipeError
from rdistill.train.launch import in_launched_process, launch
from rdistill.training import TRAINING_LOG, fine_tune

__all__ = ["check_stage_names", "run", "stage_data_problems", "train_schedule"]

OUTPUT = "student"
STAGES = "stages"


def stage_data_problems(run_dir: Path, stage: TrainStageOptions) -> tuple[list[list[dict[str, str]]], list[str]]:
    """(conversations, errors) of one training stage's data: every bad row named by its line and field."""
    path = run_dir / stage.data
    numbered = read_jsonl_lines(path)
    errors = []
    for number, row in numbered:
        errors += [f"{path}:{number}: {problem}" for problem in sft_problems(row)]
    if not numbered:
        errors.append(f"{path}: no training examples; loosen the curation filters")
    return [row["messages"] for _, row in numbered], errors


def _conversations(run_dir: Path, stage: TrainStageOptions) -> list[list[dict[str, str]]]:
    conversations, errors = stage_data_problems(run_dir, stage)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DataError(errors[0] + more)
    return conversations


def check_stage_names(schedule: list[TrainStageOptions]) -> None:
    names = [stage.name for stage in schedule]
    if len(set(names)) != len(names):
        raise RecipeError(f"train.stages: stage names must differ, got {names}")


def _combined_log(summaries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One training log for several stages: steps counted on from stage to stage, each entry labelled."""
    history, offset = [], 0
    for name, summary in summaries:
        history += [{**entry, "stage": name, "step": entry.get("step", 0) + offset} for entry in summary["log_history"]]
        offset += summary["steps"]
    last = summaries[-1][1]
    return {
        **{key: value for key, value in last.items() if key != "log_history"},
        "steps": offset,
        "seconds": round(sum(summary["seconds"] for _, summary in summaries), 2),
        "stages": [
            {"name": name, **{k: v for k, v in summary.items() if k != "log_history"}} for name, summary in summaries
        ],
        "log_history": history,
    }


def train_schedule(base: Path, schedule: list[TrainStageOptions], run_dir: Path, console=None) -> dict[str, Any]:
    """Run the stages in order, each from the previous one's model; the last one writes `student/`."""
    run_dir = Path(run_dir)
    model, summaries = base, []
    for index, stage in enumerate(schedule):
        last = index == len(schedule) - 1
        output = run_dir / OUTPUT if last else run_dir / OUTPUT / STAGES / stage.name
        finished = output / TRAINING_LOG
        if not last and finished.exists():
            summary = json.loads(finished.read_text())
        else:
            description = "distill student" if len(schedule) == 1 else f"distill student, stage {stage.name}"
            summary = fine_tune(model, _conversations(run_dir, stage), output, stage.sft, description, console)
        summaries.append((stage.name, summary))
        model = output
    if len(summaries) == 1:
        return summaries[0][1]
    combined = _combined_log(summaries)
    (run_dir / OUTPUT / TRAINING_LOG).write_text(json.dumps(combined, indent=2))
    return combined


def run(options: TrainOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Fine-tune the base student (`base.json`) on `sft.jsonl` (or the listed stages' data) into `student/`."""
    run_dir = Path(run_dir)
    schedule = options.schedule()
    check_stage_names(schedule)

    def work() -> dict[str, Any]:
        base = read_base(run_dir)
        if options.launch.num_processes > 1 and not in_launched_process():
            launch(options.launch, options, run_dir)
            summary = json.loads((run_dir / OUTPUT / TRAINING_LOG).read_text())
        else:
            summary = train_schedule(base, schedule, run_dir, ctx.console)
        wanted = ("examples", "steps", "train_loss", "seconds", "legs", "tokens_per_second", "parameters")
        return {key: summary[key] for key in wanted if key in summary}

    inputs = [BASE_FILE, *sorted({stage.data for stage in schedule})]
    return run_stage(run_dir, "train", options, inputs, [OUTPUT], work, ctx, partials=[OUTPUT])
