"""Stage `base`: the student distillation starts from, resolved or built, recorded in `base.json`.

With `base.student: micro` it trains the micro-world's non-reasoning base (once per
configuration and code version, cached under `$RDISTILL_CACHE`, default `~/.cache/rdistill`);
otherwise it checks a local transformers folder, or converts a local `.gguf` file once into a
cached folder (`rdistill.models`). `base.json` names the model folder and a
fingerprint of it, so that `teachers`, `train` and `evaluate` take the base as an input file
like any other and rerun when it changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from rdistill.config import BaseOptions, MicroStudentConfig, SFTOptions
from rdistill.data import BASE_FILE, write_json
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, run_stage
from rdistill.errors import RecipeError
from rdistill.models import cache_root, cached_conversion, gguf_fingerprint, is_gguf

OUTPUT = BASE_FILE
# Files read whole into a local model's fingerprint; weights count by name and size only, so
# that a 60 GB checkpoint is fingerprinted in milliseconds.
SMALL_FILE_BYTES = 1 << 20
# The code a micro base is a product of: a change to any of it builds a new base.
MICRO_SOURCES = ("micro", "training")


def micro_fingerprint(config: MicroStudentConfig) -> str:
    """Hash naming a micro base's cache folder: its configuration and the code that builds it."""
    digest = hashlib.sha256(json.dumps(config.model_dump(), sort_keys=True).encode())
    package = Path(__file__).parent
    for folder in MICRO_SOURCES:
        for source in sorted((package / folder).rglob("*")):
            if source.is_file() and source.suffix in (".py", ".jinja"):
                digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def local_fingerprint(model_dir: Path) -> str:
    """Hash of a model folder: small files (config, tokenizer) by content, large ones by name and size."""
    digest = hashlib.sha256()
    for file in sorted(path for path in model_dir.rglob("*") if path.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(model_dir)}:{size}".encode())
        if size <= SMALL_FILE_BYTES:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def ensure_micro_base(config: MicroStudentConfig, console=None) -> Path:
    """Path of the trained non-reasoning micro base for `config`, building and caching it if needed."""
    from rdistill.micro.student import base_corpus, build_model, build_tokenizer
    from rdistill.training import fine_tune

    target = cache_root() / "micro-student" / micro_fingerprint(config)
    if (target / "config.json").exists():
        return target
    staging = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    init_dir = staging / "init"
    tokenizer = build_tokenizer(config)
    build_model(config, tokenizer).save_pretrained(init_dir)
    tokenizer.save_pretrained(init_dir)
    options = SFTOptions(
        epochs=config.base_epochs,
        learning_rate=config.base_learning_rate,
        batch_size=config.base_batch_size,
        max_length=config.max_positions,
        seed=config.seed,
        # Padded batches, as the base was measured: trained on packed rows for the same epochs,
        # it ended at a higher loss and recalled none of its facts.
        packing=False,
    )
    fine_tune(
        init_dir,
        base_corpus(config),
        staging / "model",
        options,
        description=f"{config.kind} base student",
        console=console,
    )
    staging.joinpath("model", "micro_student.json").write_text(json.dumps(config.model_dump(), indent=2))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # another process finished first; keep its copy
        shutil.rmtree(staging, ignore_errors=True)
        return target
    os.replace(staging / "model", target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def local_model(options: BaseOptions) -> Path:
    """The local model folder or GGUF file `base.student` names, checked to be a transformers checkpoint or a file."""
    path = Path(options.student)
    if is_gguf(path):
        if not path.is_file():
            raise RecipeError(f"base.student: {path} not found (a .gguf student must be a local file)")
        return path.resolve()
    if not (path / "config.json").exists():
        raise RecipeError(
            f"base.student: {path} is not a model folder (no config.json); use 'micro' or a local "
            f"transformers checkpoint"
        )
    return path.resolve()


def expected_fingerprint(options: BaseOptions) -> str:
    """The fingerprint the base must have now (cheap: no model is built or loaded)."""
    if options.student == "micro":
        return micro_fingerprint(options.micro)
    path = local_model(options)
    return gguf_fingerprint(path) if is_gguf(path) else local_fingerprint(path)


def resolve(options: BaseOptions, console=None) -> dict[str, Any]:
    """The content of `base.json`: the model folder, where it came from, and its fingerprint."""
    if options.student == "micro":
        model = ensure_micro_base(options.micro, console)
        return {"model": str(model), "source": "micro", "fingerprint": micro_fingerprint(options.micro)}
    path = local_model(options)
    if is_gguf(path):
        announce = console.print if console is not None else print
        model = cached_conversion(path, announce)
        return {"model": str(model), "source": "gguf", "gguf": str(path), "fingerprint": expected_fingerprint(options)}
    return {"model": str(path), "source": "local", "fingerprint": expected_fingerprint(options)}


def _record_is_stale(run_dir: Path, options: BaseOptions) -> bool:
    """Whether `base.json` names a model that is gone or no longer the one the recipe means (edited, rebuilt)."""
    path = Path(run_dir) / OUTPUT
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    return (
        record.get("fingerprint") != expected_fingerprint(options)
        or not (Path(record["model"]) / "config.json").exists()
    )


def run(options: BaseOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `base.json` for the recipe's base student, building the micro base if it is not cached."""
    run_dir = Path(run_dir)
    if _record_is_stale(run_dir, options):
        # The manifest would skip the stage (same options), but the model behind them changed or went.
        ctx = replace(ctx, force=True)

    def work() -> dict[str, Any]:
        record = resolve(options, ctx.console)
        write_json(record, run_dir / OUTPUT)
        return {"source": record["source"]}

    return run_stage(run_dir, "base", options, [], [OUTPUT], work, ctx)
