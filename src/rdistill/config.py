"""Recipes: one YAML file configures every stage, validated by pydantic before anything runs.

Each stage has its own options model (defined here so that a recipe can be validated without
importing torch); every field has a default that works and a description that documents it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rdistill.errors import RecipeError
from rdistill.micro.student import MicroStudentConfig


class Options(BaseModel):
    """Base of every options model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SamplingParams(Options):
    """Sampling settings shared by every backend (temperature 0 means greedy decoding)."""

    temperature: float = Field(0.6, ge=0, description="Sampling temperature; 0 decodes greedily.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, gt=0, description="Most new tokens per completion; a completion cut here has finish_reason 'length'.")
    seed: int = Field(0, description="Base seed; each (problem, sample) derives its own from it.")


class SFTOptions(Options):
    """Optimisation settings of one fine-tuning run (defaults suit the micro student on a CPU)."""

    epochs: float = Field(6.0, description="Passes over the training set.")
    learning_rate: float = Field(2e-3, description="Peak learning rate (cosine decay after warm-up).")
    warmup_ratio: float = Field(0.05, description="Share of steps spent warming the learning rate up.")
    batch_size: int = Field(32, description="Examples per optimiser step on each device.")
    gradient_accumulation_steps: int = Field(1, description="Micro-batches summed into one optimiser step.")
    max_length: int = Field(512, description="Longest tokenised conversation; longer ones are truncated.")
    weight_decay: float = Field(0.0, description="AdamW weight decay.")
    save_steps: int = Field(50, description="Steps between checkpoints, the points a killed run resumes from.")
    logging_steps: int = Field(10, description="Steps between logged losses.")
    seed: int = Field(0, description="Seed of data order and initialisation of new weights.")
    bf16: bool = Field(False, description="Train in bfloat16 mixed precision (GPUs that support it).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory on long traces.")


class MicroWorldOptions(Options):
    """Sizes of the micro-world's problem pool and held-out evaluation sets."""

    math: int = Field(400, ge=0, description="Math word problems in the training pool.")
    code: int = Field(400, ge=0, description="List-function problems in the training pool.")
    text: int = Field(0, ge=0, description="Out-of-domain fact look-ups in the training pool (for domain quotas).")
    eval_per_domain: int = Field(60, ge=1, description="Held-out evaluation problems per domain (math, code, text).")
    difficulties: list[int] = Field([1, 2, 3, 4], description="Numbers of composed operations to draw problems from.")
    seed: int = Field(0, description="Seed of the problem generators.")


class ProblemsOptions(Options):
    """Where the problem pool and the evaluation sets come from."""

    source: Literal["micro"] = Field("micro", description="'micro' generates the micro-world's problems.")
    micro: MicroWorldOptions = Field(default_factory=MicroWorldOptions, description="Micro-world pool sizes.")


class TeacherSpec(Options):
    """One teacher to sample traces from."""

    name: str = Field(description="Label of the teacher in every output file.")
    backend: Literal["micro"] = Field("micro", description="'micro': a procedural micro-world teacher named `name`.")


def _default_teachers() -> list[TeacherSpec]:
    return [TeacherSpec(name=name) for name in ("stepwise", "compact", "checker", "varied", "rambler")]


class GenerateOptions(Options):
    """Teacher rollouts: which teachers, how many samples per problem."""

    teachers: list[TeacherSpec] = Field(default_factory=_default_teachers, description="Teachers to sample from.")
    samples_per_problem: int = Field(2, ge=1, description="Rollouts per (problem, teacher).")
    seed: int = Field(0, description="Base seed; each rollout derives its own from (problem, teacher, sample).")


class VerifyOptions(Options):
    """How rollouts are checked."""

    code_timeout_s: float = Field(
        5.0, gt=0, description="Wall-clock limit for each test of a code solution (CPU: one second more); a whole solution gets its tests' sum plus 5 s."
    )
    workers: int = Field(2, ge=1, description="Processes grading answers and code in parallel, each with its own warm sandbox.")


class TeachersOptions(Options):
    """How the teacher is chosen."""

    choose: Literal["accuracy", "all"] = Field("all", description="'accuracy': keep the most accurate teacher's traces; 'all': keep every teacher's.")
    teacher: str | None = Field(None, description="Force this teacher, whatever the scores say.")


class CurateOptions(Options):
    """Filtering and selection of the training set."""

    correctness: Literal["correct", "all", "incorrect"] = Field("correct", description="Which traces to keep by verdict.")
    budget: int = Field(2000, ge=1, description="Training examples to select (fewer if fewer pass the filters).")
    seed: int = Field(0, description="Seed of the random selection.")


class TrainOptions(Options):
    """The student and how it is fine-tuned."""

    student: str = Field("micro", description="'micro' for the micro-world's base student, or a local model folder.")
    micro_student: MicroStudentConfig = Field(default_factory=MicroStudentConfig, description="Size and base training of the micro student.")
    sft: SFTOptions = Field(default_factory=SFTOptions, description="Fine-tuning settings.")


class EvaluateOptions(Options):
    """Evaluation of the base and the distilled student on held-out problems."""

    sampling: SamplingParams = Field(
        default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=200),
        description="Decoding settings for the students' answers.",
    )
    samples_per_problem: int = Field(1, ge=1, description="Samples per problem (k of avg@k).")
    batch_size: int = Field(64, ge=1, description="Prompts generated together.")


class ReportOptions(Options):
    """The final report."""

    title: str = Field("rdistill report", description="Heading of the report.")


class Recipe(Options):
    """A whole distillation run: one section per stage."""

    name: str = Field("run", description="Name of the run; the default run directory is runs/NAME.")
    run_dir: Path | None = Field(None, description="Run directory (default runs/NAME, relative to the working directory).")
    problems: ProblemsOptions = Field(default_factory=ProblemsOptions)
    generate: GenerateOptions = Field(default_factory=GenerateOptions)
    verify: VerifyOptions = Field(default_factory=VerifyOptions)
    teachers: TeachersOptions = Field(default_factory=TeachersOptions)
    curate: CurateOptions = Field(default_factory=CurateOptions)
    train: TrainOptions = Field(default_factory=TrainOptions)
    evaluate: EvaluateOptions = Field(default_factory=EvaluateOptions)
    report: ReportOptions = Field(default_factory=ReportOptions)

    def resolved_run_dir(self) -> Path:
        """The run directory this recipe writes to."""
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name


def _describe(error: dict) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    return f"{path}: {error['msg']} (got {error.get('input')!r})"


def load_recipe(path: Path) -> Recipe:
    """Parse and validate a recipe file; every problem is reported with its key path."""
    path = Path(path)
    if not path.exists():
        raise RecipeError(f"{path}: recipe file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of stage sections at the top level, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  {_describe(error)}" for error in exc.errors())
        raise RecipeError(f"{path}: invalid recipe\n{problems}") from exc


def _option_rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _option_rows(annotation, f"{prefix}{name}.")
            continue
        default = field.get_default(call_default_factory=True)
        if isinstance(default, list) and default and isinstance(default[0], BaseModel):
            default = [item.model_dump(exclude_defaults=True) for item in default]
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name}` | `{default!r}` | {description} |")
    return rows


def options_markdown() -> str:
    """Every recipe option with its default and description, generated from the models above."""
    lines = [
        "# Recipe options",
        "",
        "Generated from `rdistill.config` (`python -m rdistill.config > docs/recipes.md`); every option",
        "has a default that works, so an empty recipe is valid.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    return "\n".join(lines + _option_rows(Recipe, "")) + "\n"


if __name__ == "__main__":
    print(options_markdown(), end="")
