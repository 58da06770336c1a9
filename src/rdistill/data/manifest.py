"""The run manifest: which stages ran, on what inputs and config, and whether they finished.

`run_stage` is the one place that decides to skip, resume or restart a stage:
- done before with the same config hash and input hashes, outputs present: skip;
- started before with the same config and inputs but not finished: run again, and the stage
  picks up the partial work it left (append-only rollouts, training checkpoints, eval parts);
- anything else (new config, changed inputs, `force`): clear the partial work and start clean.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rdistill.data.io import file_hash, write_json
from rdistill.errors import StageInputError

MANIFEST = "manifest.json"


def config_hash(config: BaseModel | dict[str, Any]) -> str:
    """Hash of a stage's resolved options."""
    payload = config.model_dump(mode="json") if isinstance(config, BaseModel) else config
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run directory (empty when the run has not started)."""
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"stages": {}}


def _record(run_dir: Path, stage: str, entry: dict[str, Any]) -> None:
    manifest = read_manifest(run_dir)
    manifest["stages"][stage] = entry
    write_json(manifest, Path(run_dir) / MANIFEST)


def _input_hashes(run_dir: Path, inputs: list[str]) -> dict[str, str]:
    hashes = {}
    for name in inputs:
        path = Path(run_dir) / name
        if not path.exists():
            raise StageInputError(f"{path}: missing; run the stage that writes it first")
        hashes[name] = file_hash(path)
    return hashes


def _clear(run_dir: Path, paths: list[str]) -> None:
    import shutil

    for name in paths:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def run_stage(
    run_dir: Path,
    stage: str,
    config: BaseModel | dict[str, Any],
    inputs: list[str],
    outputs: list[str],
    work: Callable[[], dict[str, Any]],
    force: bool = False,
    partials: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run `work` for `stage` unless the manifest shows it done on the same inputs and config.

    `inputs` and `outputs` are paths relative to `run_dir`; `partials` are the paths holding
    resumable partial work, removed when the stage must start clean. Returns the stage's entry.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(run_dir)["stages"].get(stage)
    fingerprint = {"config_hash": config_hash(config), "input_hashes": _input_hashes(run_dir, inputs)}
    same = previous is not None and all(previous.get(key) == value for key, value in fingerprint.items())
    outputs_present = all((run_dir / name).exists() for name in outputs)
    if same and previous["status"] == "done" and outputs_present and not force:
        log(f"[dim]skip {stage}: inputs and config unchanged since {previous['finished_at']}[/dim]")
        return previous
    if same and previous["status"] == "running" and not force:
        log(f"resume {stage}: picking up the work of an interrupted run")
    else:
        _clear(run_dir, partials or [])
    _record(run_dir, stage, {"status": "running", **fingerprint, "started_at": _now()})
    started = time.perf_counter()
    counts = work()
    entry = {
        "status": "done",
        **fingerprint,
        "outputs": {name: file_hash(run_dir / name) for name in outputs},
        "counts": counts,
        "seconds": round(time.perf_counter() - started, 2),
        "finished_at": _now(),
    }
    _record(run_dir, stage, entry)
    return entry


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
