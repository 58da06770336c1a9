"""Packing: examples packed into one row attend only to themselves, so the row's loss is their token-weighted mean."""

from __future__ import annotations

import pytest
import torch

from helpers import micro_student
from rdistill.config import SFTOptions
from rdistill.micro.problems import generate_problems
from rdistill.micro.teachers import TEACHERS, write_trace
from rdistill.training.sft import BatchPlan, batch_plan, prepare_run


def trace_conversations(count: int) -> list[list[dict[str, str]]]:
    """Micro-world traces of every difficulty, so that rows pack examples of different lengths."""
    problems = generate_problems("math", count, [1, 2, 3, 4], seed=7)
    styles = list(TEACHERS.values())
    conversations = []
    for index, problem in enumerate(problems):
        trace = write_trace(problem, styles[index % len(styles)], seed=index)
        reasoning, answer = trace.reasoning, trace.response
        conversations.append(
            [
                {"role": "user", "content": problem["prompt"]},
                {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n{answer}"},
            ]
        )
    return conversations


@pytest.mark.parametrize(
    "attention",
    ["sdpa", "eager", pytest.param("flex_attention", marks=pytest.mark.slow)],  # flex compiles for ~90 s
)
def test_packed_row_loss_is_the_token_weighted_mean_of_its_examples(tmp_path, attention):
    options = SFTOptions(packing=True, max_length=256, attn_implementation=attention)
    prepared = prepare_run(micro_student(tmp_path / "micro"), trace_conversations(24), tmp_path / "out", options)
    batch = next(iter(prepared.trainer.get_train_dataloader()))
    model = prepared.trainer.model.eval()
    assert "attention_mask" not in batch
    ids, positions, labels = batch["input_ids"], batch["position_ids"], batch["labels"]
    starts = (positions[0] == 0).nonzero().flatten().tolist()
    assert len(starts) >= 3, "the row should hold several examples"
    bounds = list(zip(starts, starts[1:] + [ids.shape[1]], strict=False))
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions, labels=labels)
        alone = torch.cat([model(input_ids=ids[:, a:b]).logits for a, b in bounds], dim=1)
        crossing = model(input_ids=ids).logits  # one long sequence: later examples see earlier ones
    targets = labels[0, 1:]
    per_token = torch.nn.functional.cross_entropy(alone[0, :-1], targets, ignore_index=-100, reduction="none")
    token_weighted = per_token.sum() / (targets != -100).sum()
    assert torch.allclose(packed.loss, token_weighted, rtol=1e-5), (packed.loss, token_weighted)
    later = slice(bounds[1][0], None)
    isolation_error = (packed.logits[0, later] - alone[0, later]).abs().max()
    contamination = (crossing[0, later] - alone[0, later]).abs().max()
    assert isolation_error < 1e-4 and contamination > 100 * isolation_error, (isolation_error, contamination)


def test_batch_plan_sizes_the_global_batch_in_examples_or_tokens():
    assert batch_plan(SFTOptions(packing=False, batch_size=32), 1, 60.0) == BatchPlan(32, 1, 1)
    assert batch_plan(SFTOptions(packing=False, batch_size=32, micro_batch_size=8), 2, 60.0) == BatchPlan(8, 2, 2)
    assert batch_plan(SFTOptions(packing=True, batch_size=32, max_length=512), 1, 64.0) == BatchPlan(1, 4, 1)
    assert batch_plan(SFTOptions(packing=True, batch_tokens=4096, max_length=512), 2, 64.0) == BatchPlan(1, 4, 2)
    assert batch_plan(SFTOptions(packing=False, batch_tokens=4096), 1, 64.0).rows_per_step == 64
