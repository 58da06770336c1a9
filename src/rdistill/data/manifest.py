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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rdistill.data.io import file_hash, write_json
from rdistill.errors import StageInputError

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StageContext:
    """What every stage's `run(options, run_dir, ctx)` receives besides its options and run directory.

    `force` reruns a stage whose inputs and config are unchanged; `console` is the rich console
    progress bars and messages go to (None: plain prints); `base_answers_from` is a run whose
    base student was evaluated the same way (a sweep's earlier cell), whose graded base answers
    `evaluate` links instead of answering again.
    """

    force: bool = False
    console: Any = None
    base_answers_from: Path | None = None

    def log(self, message: str) -> None:
        """Print one line (rich markup allowed) to the console, or to stdout without one."""
        if self.console is not None:
            self.console.print(message)
        else:
            from rich import print as rich_print

            rich_print(message)


# The context of a stage run from Python without one: plain prints, no forcing.
DEFAULT_CONTEXT = StageContext()


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
    ctx: StageContext = DEFAULT_CONTEXT,
    partials: list[str] | None = None,
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
    if same and previous["status"] == "done" and outputs_present and not ctx.force:
        ctx.log(f"[dim]skip {stage}: inputs and config unchanged since {previous['finished_at']}[/dim]")
        return previous
    if same and previous["status"] == "running" and not ctx.force:
        ctx.log(f"resume {stage}: picking up the work of an interrupted run")
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
    return datetime.now(UTC).isoformat(timespec="seconds")
