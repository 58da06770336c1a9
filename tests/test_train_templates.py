"""Label masks: the trainer learns the assistant turn (think block, answer, end-of-turn token), never the prompt.

Checked on the labels TRL's SFTTrainer builds for the micro tokenizer and for tiny offline
tokenizers carrying the real Qwen2.5 and Llama-3.1 chat templates (which have no generation
markers: rdistill swaps in a training variant).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import micro_student
from rdistill.config import SFTOptions
from rdistill.errors import RecipeError
from rdistill.training.sft import prepare_run

TRL_TEMPLATES = Path(__import__("trl").__file__).parent / "chat_templates"
ASSISTANT = "<think>\nThree plus four is 7.\n</think>\nThe answer is \\boxed{7}."
CONVERSATION = [
    {"role": "system", "content": "You are careful."},
    {"role": "user", "content": "Tom has 3 apples and buys 4. How many?"},
    {"role": "assistant", "content": ASSISTANT},
]
FAMILIES = {
    "qwen2.5": {
        "template": "qwen2_5.jinja",
        "special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "eos": "<|im_end|>",
        "bos": None,
        # TRL's Qwen2.5 training variant marks the line break after the role too (the generation prompt supplies it).
        "trained": "\n" + ASSISTANT + "<|im_end|>\n",
    },
    "llama-3.1": {
        "template": "llama3_1.jinja",
        "special": [
            "<|begin_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|eom_id|>",
            "<|python_tag|>",
        ],
        "eos": "<|eot_id|>",
        "bos": "<|begin_of_text|>",
        "trained": ASSISTANT + "<|eot_id|>",
    },
}


def family_student(folder: Path, family: dict, chat_template: str) -> Path:
    """A tiny byte-level BPE and Llama with a real model family's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=family["special"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([ASSISTANT, CONVERSATION[1]["content"], "system user assistant"], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=family["eos"], bos_token=family["bos"], pad_token=family["special"][0]
    )
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    ).save_pretrained(folder)
    return folder


def trained_text(model_path: Path, tmp_path: Path) -> tuple[str, str]:
    """(text of the tokens with labels, text of the whole example) as TRL's trainer prepares them."""
    prepared = prepare_run(model_path, [CONVERSATION], tmp_path / "out", SFTOptions(packing=False))
    row = prepared.trainer.train_dataset[0]
    tokenizer = prepared.tokenizer
    labelled = [token for token, label in zip(row["input_ids"], row["labels"], strict=False) if label != -100]
    assert all(label in (-100, token) for token, label in zip(row["input_ids"], row["labels"], strict=False))
    return tokenizer.decode(labelled), tokenizer.decode(row["input_ids"])


def test_micro_template_trains_the_assistant_turn_only(tmp_path):
    trained, whole = trained_text(micro_student(tmp_path / "micro"), tmp_path)
    assert trained == ASSISTANT + "<|end|>"
    assert "Tom has 3 apples" in whole and "<|user|>" in whole


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_real_family_templates_are_patched_to_train_the_assistant_turn_only(tmp_path, name):
    family = FAMILIES[name]
    original = (TRL_TEMPLATES / family["template"]).read_text()
    assert "{% generation %}" not in original and "{%- generation %}" not in original
    trained, whole = trained_text(family_student(tmp_path / name, family, original), tmp_path)
    assert trained == family["trained"]
    assert "Tom has 3 apples" in whole and "You are careful." in whole


def test_student_keeps_its_released_template(tmp_path):
    family = FAMILIES["llama-3.1"]
    original = (TRL_TEMPLATES / family["template"]).read_text()
    prepared = prepare_run(
        family_student(tmp_path / "llama", family, original), [CONVERSATION], tmp_path / "out", SFTOptions()
    )
    assert prepared.chat_template == original and "generation" in prepared.tokenizer.chat_template


def test_unknown_template_without_markers_is_a_clear_error(tmp_path):
    family = FAMILIES["qwen2.5"]
    plain = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    path = family_student(tmp_path / "plain", family, plain)
    with pytest.raises(RecipeError, match="generation"):
        prepare_run(path, [CONVERSATION], tmp_path / "out", SFTOptions())
