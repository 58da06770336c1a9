"""The run manifest: which stages ran, on what inputs and config, and whether they finished.

`run_stage` is the one place that decides to skip, resume or restart a stage:
- done before with the same config hash and input hashes, outputs present: skip;
- started before with the same config and inputs but not finished: run again, and the stage
  picks up the partial work it left (append-only rollouts, training checkpoints, eval parts);
- done before but an output changed since (a torn last line, an edited file): run again, resuming;
- anything else (new config, changed inputs, `force`): start clean, the finished outputs set
  aside (not deleted) until the rerun finishes, and put back if it fails.
A failure records status `failed` and its error; `stage_states` tells which finished stages are
stale (an input changed since they ran).
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
from rdistill.errors import StageInputError, Terminated

MANIFEST = "manifest.json"
# Finished outputs set aside while their stage reruns (run_dir/.previous/STAGE/).
PREVIOUS = ".previous"
ASIDE_ENTRY = "manifest-entry.json"


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


def stage_state(run_dir: Path, entry: dict[str, Any]) -> str:
    """`done`, `stale` (done, but an input changed or went since: its results describe other inputs), `failed`
    (its error in the entry; with `restored`, the earlier finished outputs are still in place) or `running`."""
    status = entry.get("status", "running")
    if status != "done":
        return status
    for name, recorded in entry.get("input_hashes", {}).items():
        path = Path(run_dir) / name
        if not path.exists() or file_hash(path) != recorded:
            return "stale"
    return "done"


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
    for name in paths:
        _remove(Path(run_dir) / name)


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _aside(run_dir: Path, stage: str) -> Path:
    return Path(run_dir) / PREVIOUS / stage


def _set_aside(run_dir: Path, stage: str, paths: list[str], entry: dict[str, Any]) -> None:
    """Move a finished stage's outputs out of the way (a rename, nothing copied or deleted) before a clean rerun.

    They come back, with their manifest entry, if the rerun fails, and are removed only once it
    has finished. A set-aside left by a killed rerun is kept as it is: it, not the killed rerun's
    partial work, is the last finished output.
    """
    aside = _aside(run_dir, stage)
    if aside.exists():
        _clear(run_dir, paths)
        return
    aside.mkdir(parents=True)
    for name in paths:
        if (Path(run_dir) / name).exists() or (Path(run_dir) / name).is_symlink():
            target = aside / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (Path(run_dir) / name).rename(target)
    write_json(entry, aside / ASIDE_ENTRY)


def _restore(run_dir: Path, stage: str, paths: list[str]) -> dict[str, Any]:
    """Put set-aside outputs back in place of a failed rerun's partial ones; their manifest entry."""
    aside = _aside(run_dir, stage)
    for name in paths:
        _remove(Path(run_dir) / name)
        if (aside / name).exists() or (aside / name).is_symlink():
            (aside / name).rename(Path(run_dir) / name)
    entry = json.loads((aside / ASIDE_ENTRY).read_text())
    _remove(aside)
    return entry


def _drop_empty_files(run_dir: Path, paths: list[str]) -> None:
    """Remove empty files a failed stage left (a rollout file opened before the first answer came)."""
    for name in paths:
        path = Path(run_dir) / name
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            if file.stat().st_size == 0:
                file.unlink()


def _roots(paths: list[str]) -> list[str]:
    """The paths not inside another of them (eval/summary.json goes with eval/), each once, in order."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(p != other and Path(p).is_relative_to(other) for other in unique)]


def _outputs_intact(run_dir: Path, entry: dict[str, Any], outputs: list[str]) -> bool:
    """Whether a finished stage's outputs are present and hash as they did when it finished (none torn or edited)."""
    recorded = entry.get("outputs", {})
    return all(
        (run_dir / name).exists() and recorded.get(name) in (None, file_hash(run_dir / name)) for name in outputs
    )


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
    resumable partial work, removed when the stage must start clean. A finished stage's outputs
    are never removed before their replacement is complete: a clean rerun sets them aside and
    puts them back if it fails. A failure (an error, Ctrl-C) is recorded as status `failed` with
    its message. Returns the stage's entry.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(run_dir)["stages"].get(stage)
    fingerprint = {"config_hash": config_hash(config), "input_hashes": _input_hashes(run_dir, inputs)}
    same = previous is not None and all(previous.get(key) == value for key, value in fingerprint.items())
    # A failed rerun whose finished outputs were put back (`restored`) still has them on disk.
    finished = previous is not None and (previous["status"] == "done" or bool(previous.get("restored")))
    intact = finished and _outputs_intact(run_dir, previous, outputs)
    if same and intact and not ctx.force:
        ctx.log(f"[dim]skip {stage}: inputs and config unchanged since {previous['finished_at']}[/dim]")
        if previous["status"] != "done":
            previous = _finished_entry(previous)
            _record(run_dir, stage, previous)
        return previous
    owned = _roots([*outputs, *(partials or [])])
    if same and finished and not ctx.force:
        ctx.log(f"rerun {stage}: its outputs changed since it finished (a torn or edited file)")
    elif same and previous["status"] in ("running", "failed") and not previous.get("restored") and not ctx.force:
        ctx.log(f"resume {stage}: picking up the work of an interrupted run")
    elif finished:
        _set_aside(run_dir, stage, owned, _finished_entry(previous))
    else:
        _clear(run_dir, partials or [])
    _record(run_dir, stage, {"status": "running", **fingerprint, "started_at": _now()})
    started = time.perf_counter()
    try:
        counts = work()
    except BaseException as error:
        _record_failure(run_dir, stage, fingerprint, error, owned)
        raise
    entry = {
        "status": "done",
        **fingerprint,
        "outputs": {name: file_hash(run_dir / name) for name in outputs},
        "counts": counts,
        "seconds": round(time.perf_counter() - started, 2),
        "finished_at": _now(),
    }
    _record(run_dir, stage, entry)
    _remove(_aside(run_dir, stage))
    return entry


def _record_failure(
    run_dir: Path, stage: str, fingerprint: dict[str, Any], error: BaseException, owned: list[str]
) -> None:
    """Mark the stage failed with its error; put finished outputs back, or keep resumable partial work.

    With outputs restored, the entry keeps the finished run's fingerprint, outputs and counts
    (`restored`: they are the outputs on disk), so that downstream stages stay consistent with them.
    """
    if isinstance(error, KeyboardInterrupt):
        message = "terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted (Ctrl-C)"
    else:
        message = f"{type(error).__name__}: {error}"
    failure = {"status": "failed", "error": message[:2000], "failed_at": _now()}
    if _aside(run_dir, stage).exists():
        _record(run_dir, stage, {**_restore(run_dir, stage, owned), **failure, "restored": True})
        return
    _drop_empty_files(run_dir, owned)
    _record(run_dir, stage, {**fingerprint, **failure, "started_at": _now()})


def _finished_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A restored entry back to `done`: its outputs are the finished ones, for the same inputs and config."""
    return {key: value for key, value in entry.items() if key not in ("error", "failed_at", "restored")} | {
        "status": "done"
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
