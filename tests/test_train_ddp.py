"""Data parallel: two CPU processes (gloo, through accelerate launch) follow the loss curve of one process.

Both with the same global batch. Only steps that saw the same tokens are compared: when the packed rows do not
fill the last global batch, accelerate's `even_batches` gives the idle process a repeat of an earlier row, so
the last step of two processes may train on one row more than the last step of one.
"""

from __future__ import annotations

import json

import pytest

from helpers import QUIET, micro_student, trace_conversations
from rdistill import base as base_stage
from rdistill.config import BaseOptions, LaunchOptions, SFTOptions, TrainOptions
from rdistill.data.io import write_jsonl
from rdistill.train import run


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    base = micro_student(tmp_path / "base")
    rows = [
        {"messages": m, "problem_id": str(i), "teacher": "t", "why": "test"}
        for i, m in enumerate(trace_conversations(24))
    ]
    sft = SFTOptions(epochs=1.0, packing=True, batch_tokens=1024, max_length=256, logging_steps=1, save_steps=100)
    curves = {}
    for processes in (1, 2):
        run_dir = tmp_path / f"p{processes}"
        write_jsonl(rows, run_dir / "sft.jsonl")
        base_stage.run(BaseOptions(student=str(base)), run_dir, QUIET)
        options = TrainOptions(sft=sft, launch=LaunchOptions(num_processes=processes))
        run(options, run_dir, QUIET)
        log = json.loads((run_dir / "student" / "training_log.json").read_text())
        assert (
            log["num_processes"] == processes and log["micro_batch_size"] * log["accumulation_steps"] * processes == 4
        )
        curves[processes] = [
            (entry["num_input_tokens_seen"], entry["loss"]) for entry in log["log_history"] if "loss" in entry
        ]
    assert len(curves[1]) == len(curves[2])
    same_tokens = [
        (single, parallel)
        for (tokens_single, single), (tokens_parallel, parallel) in zip(curves[1], curves[2], strict=True)
        if tokens_single == tokens_parallel
    ]
    assert len(same_tokens) >= 2, (curves[1], curves[2])
    for single, parallel in same_tokens:
        assert abs(single - parallel) < 1e-3 * single, (curves[1], curves[2])
