"""Label masks: the trainer learns the assistant turn (think block, answer, end-of-turn token), never the prompt.

Checked on the labels TRL's SFTTrainer builds for the micro tokenizer (its template marks the
assistant turn) and for tiny offline tokenizers carrying the real SmolLM2, Qwen2.5 and Llama-3.1
chat templates (tests/fixtures/chat_templates: SmolLM2's as its GGUF file ships it, the others as
TRL ships them), which have no generation markers: the conversations become prompt/completion
pairs rendered with the student's own template.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import micro_student
from rdistill.config import SFTOptions
from rdistill.errors import RecipeError
from rdistill.training.sft import prepare_run

TEMPLATES = Path(__file__).parent / "fixtures" / "chat_templates"
CHATML_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ASSISTANT = "<think>\nThree plus four is 7.\n</think>\nThe answer is \\boxed{7}."
CONVERSATION = [
    {"role": "system", "content": "You are careful."},
    {"role": "user", "content": "Tom has 3 apples and buys 4. How many?"},
    {"role": "assistant", "content": ASSISTANT},
]
FAMILIES = {
    "smollm2": {
        "template": "smollm2.jinja",
        "special": CHATML_SPECIAL,
        "eos": "<|im_end|>",
        "bos": None,
        "trained": ASSISTANT + "<|im_end|>",
    },
    "qwen2.5": {
        "template": "qwen2_5.jinja",
        "special": CHATML_SPECIAL,
        "eos": "<|im_end|>",
        "bos": None,
        "trained": ASSISTANT + "<|im_end|>",
    },
    # A ChatML base model: its eos is <|endoftext|>, its turns still end with <|im_end|>.
    "qwen2.5-base": {
        "template": "qwen2_5.jinja",
        "special": CHATML_SPECIAL,
        "eos": "<|endoftext|>",
        "bos": None,
        "trained": ASSISTANT + "<|im_end|>",
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


def trained_text(model_path: Path, tmp_path: Path, conversation=CONVERSATION) -> tuple[str, str]:
    """(text of the tokens with labels, text of the whole example) as TRL's trainer prepares them."""
    prepared = prepare_run(model_path, [conversation], tmp_path / "out", SFTOptions(packing=False))
    row = prepared.trainer.train_dataset[0]
    tokenizer = prepared.tokenizer
    labelled = [token for token, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    assert all(label in (-100, token) for token, label in zip(row["input_ids"], row["labels"], strict=True))
    return tokenizer.decode(labelled), tokenizer.decode(row["input_ids"])


def test_micro_template_trains_the_assistant_turn_only(tmp_path):
    trained, whole = trained_text(micro_student(tmp_path / "micro"), tmp_path)
    assert trained == ASSISTANT + "<|end|>"
    assert "Tom has 3 apples" in whole and "<|user|>" in whole


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_real_family_templates_train_the_assistant_turn_and_its_end_only(tmp_path, name):
    family = FAMILIES[name]
    original = (TEMPLATES / family["template"]).read_text()
    assert "generation %}" not in original
    trained, whole = trained_text(family_student(tmp_path / name, family, original), tmp_path)
    assert trained == family["trained"]
    assert "Tom has 3 apples" in whole and "You are careful." in whole
    assert whole.endswith(family["trained"]), "nothing after the end-of-turn token is trained on or kept"


def test_smollm2_default_system_prompt_is_context_not_answer(tmp_path):
    family = FAMILIES["smollm2"]
    path = family_student(tmp_path / "smol", family, (TEMPLATES / "smollm2.jinja").read_text())
    trained, whole = trained_text(path, tmp_path, CONVERSATION[1:])
    assert trained == ASSISTANT + "<|im_end|>"
    assert "You are a helpful AI assistant named SmolLM" in whole


def test_only_the_last_assistant_turn_is_trained(tmp_path):
    family = FAMILIES["llama-3.1"]
    path = family_student(tmp_path / "llama", family, (TEMPLATES / "llama3_1.jinja").read_text())
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]
    trained, whole = trained_text(path, tmp_path, earlier + CONVERSATION[1:])
    assert trained == ASSISTANT + "<|eot_id|>"
    assert "Hello there." in whole and whole.count("<|begin_of_text|>") == 1


def test_packed_rows_keep_the_completion_mask(tmp_path):
    family = FAMILIES["qwen2.5"]
    path = family_student(tmp_path / "qwen", family, (TEMPLATES / "qwen2_5.jinja").read_text())
    answers = [f"<think>\nStep {n}.\n</think>\nThe answer is \\boxed{{{n}}}." for n in range(4)]
    conversations = [[CONVERSATION[1], {"role": "assistant", "content": answer}] for answer in answers]
    prepared = prepare_run(path, conversations, tmp_path / "out", SFTOptions(packing=True, max_length=1024))
    rows = list(prepared.trainer.train_dataset)
    assert len(rows) == 1, "the four examples fit one packed row"
    row = rows[0]
    tokenizer = prepared.tokenizer
    runs, current = [], []
    for token, label in zip(row["input_ids"], row["labels"], strict=True):
        if label != -100:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    runs += [tokenizer.decode(current)] if current else []
    assert sorted(runs) == sorted(answer + "<|im_end|>" for answer in answers)


def test_student_keeps_its_released_template(tmp_path):
    family = FAMILIES["llama-3.1"]
    original = (TEMPLATES / family["template"]).read_text()
    prepared = prepare_run(
        family_student(tmp_path / "llama", family, original), [CONVERSATION], tmp_path / "out", SFTOptions()
    )
    assert prepared.chat_template == original == prepared.tokenizer.chat_template
    assert not prepared.marked


def test_template_without_an_end_of_turn_token_is_a_clear_error(tmp_path):
    family = FAMILIES["qwen2.5"]
    plain = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    path = family_student(tmp_path / "plain", family, plain)
    with pytest.raises(RecipeError, match="end-of-turn"):
        prepare_run(path, [CONVERSATION], tmp_path / "out", SFTOptions())


def test_template_that_renders_the_prompt_differently_is_a_clear_error(tmp_path):
    family = FAMILIES["qwen2.5"]
    # The generation prompt says "bot" where the rendered conversation says "assistant".
    odd = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>bot\n{% endif %}"
    )
    path = family_student(tmp_path / "odd", family, odd)
    with pytest.raises(RecipeError, match="generation prompt"):
        prepare_run(path, [CONVERSATION], tmp_path / "out", SFTOptions())
