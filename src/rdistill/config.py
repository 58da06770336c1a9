"""Recipes: one YAML file configures every stage, validated by pydantic before anything runs.

Each stage has its own options model (defined here so that a recipe can be validated without
importing torch); every field has a default that works and a description that documents it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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

    code_timeout_s: float = Field(5.0, gt=0, description="Wall-clock limit for one solution's whole test run.")
    workers: int = Field(2, ge=1, description="Processes checking code solutions in parallel.")


class TeachersOptions(Options):
    """How the teacher is chosen."""

    choose: Literal["accuracy", "all"] = Field("all", description="'accuracy': keep the most accurate teacher's traces; 'all': keep every teacher's.")
    teacher: str | None = Field(None, description="Force this teacher, whatever the scores say.")


class DecontaminateOptions(Options):
    """Removing pool problems that overlap an evaluation set (the run's eval split and extra files)."""

    enabled: bool = Field(True, description="Drop pool problems that match an evaluation item.")
    ngram: int = Field(13, ge=1, description="Word n-gram length of the overlap test that follows the normalised exact match; items with fewer content words match only exactly.")
    boilerplate_items: int = Field(3, ge=2, description="An n-gram found in this many benchmark items or more is template text (AIME's 'where m and n are relatively prime positive integers find'), not evidence of copying, and is ignored.")
    template_share: float = Field(0.5, gt=0, le=1, description="Words found in at least this share of one benchmark's items (its template: 'write a python function', 'what is the') are left out of the n-grams.")
    extra_files: list[Path] = Field([], description="More benchmark files (JSON Lines or Parquet) to decontaminate against, for instance MATH-500 and AIME.")
    text_fields: list[str] = Field(
        ["problem", "prompt", "question", "question_content"],
        description="Fields of an extra file's records holding the problem text; the first one present is used.",
    )


class DedupOptions(Options):
    """Near-duplicate removal of pool problems with MinHash LSH."""

    enabled: bool = Field(True, description="Keep one representative per cluster of near-duplicate problems.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity of word shingles above which two problems are near-duplicates.")
    shingle: int = Field(3, ge=1, description="Words per shingle.")
    num_perm: int = Field(64, ge=16, description="MinHash permutations; candidates are confirmed by their exact Jaccard similarity, so more only cost time.")


class FilterOptions(Options):
    """Per-trace quality filters, applied after correctness."""

    drop_truncated: bool = Field(True, description="Drop traces whose finish_reason is not 'stop' (cut at the token limit or failed).")
    require_think: bool = Field(True, description="Drop traces with no reasoning, or with a think tag left inside the reasoning or the answer (unbalanced tags).")
    require_answer: bool = Field(True, description="Drop traces from which verification extracted no answer or code.")
    min_tokens: int = Field(0, ge=0, description="Fewest tokens of the assistant turn, counted with the student's tokenizer (0: no lower bound).")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens of the assistant turn in the student's tokenizer (null: no upper bound).")
    tokenizer: str = Field("micro", description="Tokenizer for the token bounds: 'micro' (the default micro student's) or a local tokenizer folder; loaded only when a bound is set.")
    max_repetition: float = Field(0.5, ge=0, le=1, description="Highest share of repeated word 4-grams in a trace; above it the trace is a loop, dropped (1: no filter).")


class DifficultyOptions(Options):
    """How each problem's difficulty level is found."""

    source: Literal["pass_rate", "label"] = Field("pass_rate", description="'pass_rate': the share of the teachers' verified samples that are correct; 'label': the problem's own difficulty (MATH level, LiveCodeBench easy/medium/hard, micro-world steps).")
    levels: int = Field(3, ge=1, description="Number of levels the difficulty is binned into; level 0 is the easiest.")


class TrajectoryOptions(Options):
    """How many traces of one problem may enter the training set, chosen for diversity."""

    per_problem: int | None = Field(None, ge=1, description="Most traces per problem (null: no limit); the most different traces are kept first.")
    per_level: list[int] = Field([], description="Most traces per problem for each difficulty level, easiest first (overrides per_problem; one entry per level).")


class DiversityOptions(Options):
    """Embeddings of problems for the diversity strategies."""

    embedding_model: Path | None = Field(None, description="Local transformers model folder whose mean-pooled hidden states embed problems; null uses TF-IDF vectors.")
    batch_size: int = Field(32, ge=1, description="Problems embedded together by the embedding model.")


class CurateOptions(Options):
    """Decontamination, dedup, filters, difficulty, per-problem trajectories and selection to a budget."""

    correctness: Literal["correct", "all", "incorrect"] = Field("correct", description="Which traces to keep by verdict.")
    budget: int = Field(2000, ge=1, description="Training examples to select (fewer if fewer pass the filters).")
    strategy: Literal["random", "easy_first", "hard_first", "stratified", "diversity", "s1"] = Field(
        "random",
        description="Order in which problems enter the budget: random; easiest or hardest first; equal shares per difficulty level; k-center diversity; s1 (quality, then difficulty, then diversity across topics).",
    )
    quotas: dict[str, float] = Field({}, description="Share of the budget per domain (for instance math 0.45, code 0.45, text 0.1), DED-style; empty: no quotas.")
    seed: int = Field(0, description="Seed of every random choice of the stage.")
    decontaminate: DecontaminateOptions = Field(default_factory=DecontaminateOptions, description="Decontamination against evaluation sets.")
    dedup: DedupOptions = Field(default_factory=DedupOptions, description="Near-duplicate removal.")
    filters: FilterOptions = Field(default_factory=FilterOptions, description="Per-trace filters.")
    difficulty: DifficultyOptions = Field(default_factory=DifficultyOptions, description="Difficulty levels.")
    trajectories: TrajectoryOptions = Field(default_factory=TrajectoryOptions, description="Traces per problem.")
    diversity: DiversityOptions = Field(default_factory=DiversityOptions, description="Problem embeddings.")

    @model_validator(mode="after")
    def _consistent(self) -> CurateOptions:
        total = sum(self.quotas.values())
        if self.quotas and (min(self.quotas.values()) < 0 or abs(total - 1) > 1e-6):
            raise ValueError(f"quotas must be non-negative shares summing to 1 (they sum to {total:g})")
        if self.trajectories.per_level and len(self.trajectories.per_level) != self.difficulty.levels:
            raise ValueError(f"trajectories.per_level needs one entry per difficulty level ({self.difficulty.levels}), got {len(self.trajectories.per_level)}")
        return self


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


class SweepOptions(Options):
    """A grid of curate + train + evaluate cells, each in its own sub-run directory (empty: no sweep)."""

    variants: dict[str, dict[str, Any]] = Field({}, description="Named sets of overrides, each a mapping of dotted recipe keys (curate.*, train.*, evaluate.*) to values.")
    grid: dict[str, list[Any]] = Field({}, description="Dotted recipe keys mapped to the values to try; every combination is a cell (crossed with variants and seeds).")
    seeds: list[int] = Field([], description="Seeds of each cell; a seed sets both curate.seed and train.sft.seed.")


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
    sweep: SweepOptions = Field(default_factory=SweepOptions)

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
