"""Full and LoRA fine-tuning of the tiny micro student and a two-stage schedule; recipe mistakes.

Each run saves a plain transformers checkpoint.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from helpers import micro_student, trace_conversations
from rdistill.config import LoRAOptions, SFTOptions, TrainOptions, TrainStageOptions
from rdistill.data.io import write_jsonl
from rdistill.errors import RecipeError
from rdistill.train import run, train_schedule
from rdistill.training.sft import check_gpu_options, fine_tune

QUICK = {"epochs": 3.0, "batch_size": 8, "learning_rate": 3e-3, "logging_steps": 1, "save_steps": 100}


def mean_loss(model_dir, conversations) -> float:
    """The model's assistant-token loss on the conversations (the micro template marks the assistant turn)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    total, count = 0.0, 0
    for messages in conversations:
        encoded = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids = torch.tensor([encoded["input_ids"]])
        labels = torch.where(torch.tensor([encoded["assistant_masks"]]) == 1, ids, -100)
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss
        n = int((labels[0, 1:] != -100).sum())
        total, count = total + float(loss) * n, count + n
    return total / count


def test_full_and_lora_runs_save_plain_checkpoints_that_learned(tmp_path):
    base = micro_student(tmp_path / "base")
    conversations = trace_conversations(24)
    before = mean_loss(base, conversations)
    full = fine_tune(base, conversations, tmp_path / "full", SFTOptions(**QUICK))
    lora_options = SFTOptions(
        **QUICK | {"learning_rate": 2e-2}, finetuning="lora", lora=LoRAOptions(rank=4, alpha=8, dropout=0.0)
    )
    lora = fine_tune(base, conversations, tmp_path / "lora", lora_options)

    assert full["trainable_parameters"] == full["parameters"]
    assert 0 < lora["trainable_parameters"] < full["parameters"] / 5
    assert not (tmp_path / "lora" / "adapter_config.json").exists(), "the adapters are merged into a plain checkpoint"
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "lora")
    original = AutoModelForCausalLM.from_pretrained(base)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert not torch.equal(
        merged.model.layers[0].self_attn.q_proj.weight, original.model.layers[0].self_attn.q_proj.weight
    )
    assert torch.equal(merged.model.embed_tokens.weight, original.model.embed_tokens.weight), (
        "LoRA leaves the embeddings alone"
    )
    assert mean_loss(tmp_path / "full", conversations) < before - 0.5
    assert mean_loss(tmp_path / "lora", conversations) < before - 0.1
    for summary in (full, lora):
        entries = [entry for entry in summary["log_history"] if "loss" in entry]
        assert entries and all({"learning_rate", "grad_norm", "tokens_per_second"} <= set(entry) for entry in entries)
    assert json.loads((tmp_path / "lora" / "training_log.json").read_text())["finetuning"] == "lora"


def test_second_stage_starts_from_the_first_stages_model(tmp_path):
    base = micro_student(tmp_path / "base")
    run_dir = tmp_path / "run"
    conversations = trace_conversations(30)
    for name, part in (("broad.jsonl", conversations[:20]), ("focus.jsonl", conversations[20:])):
        write_jsonl(
            [{"messages": m, "problem_id": str(i), "teacher": "t", "why": "test"} for i, m in enumerate(part)],
            run_dir / name,
        )
    schedule = [
        TrainStageOptions(name="broad", data="broad.jsonl", sft=SFTOptions(**QUICK | {"epochs": 1.0})),
        # A learning rate too small to move the weights: the student must equal the first stage's output.
        TrainStageOptions(
            name="focus", data="focus.jsonl", sft=SFTOptions(**QUICK | {"epochs": 1.0, "learning_rate": 1e-12})
        ),
    ]
    summary = train_schedule(base, schedule, run_dir)

    first = AutoModelForCausalLM.from_pretrained(run_dir / "student" / "stages" / "broad")
    final = AutoModelForCausalLM.from_pretrained(run_dir / "student")
    untouched = AutoModelForCausalLM.from_pretrained(base)
    for (_, a), (_, b), (_, _unchanged) in zip(
        final.named_parameters(), first.named_parameters(), untouched.named_parameters(), strict=False
    ):
        assert torch.allclose(a, b, atol=1e-6)
    assert any(
        not torch.equal(b, c)
        for (_, b), (_, c) in zip(first.named_parameters(), untouched.named_parameters(), strict=False)
    )
    assert [stage["name"] for stage in summary["stages"]] == ["broad", "focus"]
    assert summary["steps"] == sum(stage["steps"] for stage in summary["stages"])
    steps = [entry["step"] for entry in summary["log_history"] if "loss" in entry]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), "steps count on across stages"
    assert json.loads((run_dir / "student" / "training_log.json").read_text())["stages"][1]["name"] == "focus"


def test_recipe_mistakes_are_reported_before_any_training(tmp_path):
    same_names = TrainOptions(stages=[TrainStageOptions(name="a"), TrainStageOptions(name="a")])
    with pytest.raises(RecipeError, match="train.stages"):
        run(same_names, tmp_path)
    with pytest.raises(RecipeError, match="liger_kernel"):
        check_gpu_options(SFTOptions(liger_kernel=True), on_gpu=False)
    with pytest.raises(RecipeError, match="attn_implementation"):
        check_gpu_options(SFTOptions(attn_implementation="flash_attention_2"), on_gpu=False)
