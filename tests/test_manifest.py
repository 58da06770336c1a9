"""Skip, resume and restart decisions of the run manifest."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from helpers import QUIET
from rdistill.data.manifest import read_manifest, run_stage
from rdistill.errors import StageInputError


def write_stage(run_dir, config, calls, force=False, fail=False):
    def work():
        calls.append(config)
        partial = run_dir / "part.txt"
        previous = partial.read_text() if partial.exists() else ""
        partial.write_text(previous + "x")
        if fail:
            raise KeyboardInterrupt
        (run_dir / "out.txt").write_text(partial.read_text())
        return {"length": len(partial.read_text())}

    return run_stage(
        run_dir,
        "demo",
        config,
        inputs=["in.txt"],
        outputs=["out.txt"],
        work=work,
        ctx=replace(QUIET, force=force),
        partials=["part.txt"],
    )


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "in.txt").write_text("input")
    return tmp_path


def test_unchanged_stage_is_skipped_and_force_reruns(run_dir):
    calls = []
    first = write_stage(run_dir, {"a": 1}, calls)
    second = write_stage(run_dir, {"a": 1}, calls)
    assert len(calls) == 1 and first == second
    write_stage(run_dir, {"a": 1}, calls, force=True)
    assert len(calls) == 2


def test_changed_config_or_input_reruns_from_scratch(run_dir):
    calls = []
    write_stage(run_dir, {"a": 1}, calls)
    write_stage(run_dir, {"a": 2}, calls)
    assert (run_dir / "out.txt").read_text() == "x", "partial work of another config must be cleared"
    (run_dir / "in.txt").write_text("changed")
    write_stage(run_dir, {"a": 2}, calls)
    assert len(calls) == 3


def test_interrupted_stage_resumes_its_partial_work(run_dir):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        write_stage(run_dir, {"a": 1}, calls, fail=True)
    assert read_manifest(run_dir)["stages"]["demo"]["status"] == "failed"
    entry = write_stage(run_dir, {"a": 1}, calls)
    assert entry["counts"] == {"length": 2}, "the second run continues from the first run's partial file"
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["demo"]["status"] == "done"


def test_missing_input_names_the_file(run_dir):
    (run_dir / "in.txt").unlink()
    with pytest.raises(StageInputError, match="in.txt"):
        write_stage(run_dir, {"a": 1}, [])


def test_sigterm_marks_the_stage_failed_and_keeps_its_partial_work(run_dir):
    import os
    import signal

    from rdistill.errors import Terminated, raise_on_sigterm

    previous = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()

    def work():
        (run_dir / "part.txt").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)
        return {}

    try:
        with pytest.raises(Terminated):
            run_stage(run_dir, "demo", {"a": 1}, ["in.txt"], ["out.txt"], work, QUIET, partials=["part.txt"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    entry = read_manifest(run_dir)["stages"]["demo"]
    assert entry["status"] == "failed" and entry["error"] == "terminated (SIGTERM)"
    assert (run_dir / "part.txt").read_text() == "half", "the resumable work stays"
