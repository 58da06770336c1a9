"""Student signals on a hand-made model: NLL, rank–surprisal ratio and local naturalness, computed by hand.

The model is a fixed bigram table wrapped as a transformers causal LM would be called
(`model(input_ids=..., attention_mask=...).logits`): the logits at a position depend only on its
token, so every probability below can be read off the table. The tokenizer is a real
transformers tokenizer, word-level over a vocabulary of eight words, with a chat template.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from rdistill.config import LocalOptions, SignalOptions
from rdistill.signals import (
    TokenScores,
    local_nll,
    pooled_rsr,
    rank_surprisal_ratio,
    score_traces,
    step_spans,
    teacher_signals,
    token_scores,
)

VOCAB = ["<pad>", "user:", "assistant:", "q", "<think>", "</think>", "a", "b"]
ID = {word: index for index, word in enumerate(VOCAB)}
LN2, LN8, LN14 = math.log(2), math.log(8), math.log(14)


class BigramModel(torch.nn.Module):
    """Logits of the next token given only the current one: uniform, except that after `a` comes `b`,
    after `b` comes `a` and after `</think>` comes `a`, each with probability 1/2 (logit ln 7 against
    seven zeros); every other token there has 1/14."""

    def __init__(self) -> None:
        super().__init__()
        table = torch.zeros(len(VOCAB), len(VOCAB))
        for before, after in (("a", "b"), ("b", "a"), ("</think>", "a")):
            table[ID[before], ID[after]] = math.log(7)
        self.table = table

    device = torch.device("cpu")

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.table[input_ids])


def word_tokenizer():
    """A word-level transformers tokenizer whose chat template writes `role: content` lines."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(ID, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", chat_template=template)


# Its assistant turn is "<think>\na b\nb a\n</think>\na": steps (lines) "a b", "b a" and "a".
ROLLOUT = {"messages": [{"role": "user", "content": "q"}], "reasoning": "a b\nb a", "response": "a"}


def test_token_nll_and_rank_are_read_off_the_table_and_padding_changes_nothing():
    model = BigramModel()
    sequences = [([ID["a"], ID["b"], ID["b"], ID["a"]], 1), ([ID["q"], ID["a"]], 1)]
    together = token_scores(model, sequences, batch_size=2, rank_clip=100, pad_id=0)
    # b|a has 1/2 and is the top choice; b|b has 1/14 behind a (rank 2); a|b has 1/2; a|q is uniform (rank 1, ties).
    assert together[0].nll == pytest.approx([LN2, LN14, LN2])
    assert together[0].rank == [1, 2, 1]
    assert together[1].nll == pytest.approx([LN8]) and together[1].rank == [1]
    alone = token_scores(model, sequences[:1], batch_size=1, rank_clip=100, pad_id=0)
    assert alone[0].nll == pytest.approx(together[0].nll)


def test_rank_surprisal_ratio_is_mean_clipped_rank_over_mean_nll_and_pools_as_a_ratio_of_means():
    scores = TokenScores(nll=[LN2, LN14, LN2], rank=[1, 2, 1])
    assert rank_surprisal_ratio(scores) == pytest.approx(4 / (2 * LN2 + LN14))
    clipped = token_scores(BigramModel(), [([ID["a"], ID["b"], ID["b"], ID["a"]], 1)], 1, rank_clip=1, pad_id=0)
    assert clipped[0].rank == [1, 1, 1]
    # Two traces with mean ranks 1 and 3 and mean NLLs 1 and 2: (1 + 3) / 2 over (1 + 2) / 2, not the mean of 1 and 1.5.
    assert pooled_rsr([1.0, 3.0], [1.0, 2.0]) == pytest.approx(4 / 3)


def test_steps_are_sentences_or_lines_without_the_think_tags():
    text = "<think>\nAdd 2 to 3.5. Then double it!\n</think>\nDone"
    sentences = [text[start:end] for start, end in step_spans(text, "sentence")]
    assert sentences == ["Add 2 to 3.5.", "Then double it!", "Done"]
    assert [text[s:e] for s, e in step_spans(text, "line")] == ["Add 2 to 3.5. Then double it!", "Done"]
    assert local_nll([TokenScores([1.0, 3.0], [1, 1]), TokenScores([4.0], [1])]) == pytest.approx(3.0)
    assert local_nll([]) is None


def test_a_trace_scored_whole_and_step_by_step_in_its_local_window():
    options = SignalOptions(batch_size=3, local=LocalOptions(split="line", window=1))
    [row], seconds = score_traces(BigramModel(), word_tokenizer(), [ROLLOUT], options)
    # Whole turn after "user: q assistant:": <think> a b b a </think> a, predicted from the token before each:
    # <think>|assistant: 1/8, a|<think> 1/8, b|a 1/2, b|b 1/14 (rank 2), a|b 1/2, </think>|a 1/14 (rank 2),
    # a|</think> 1/2.
    whole_nll = 2 * LN8 + 3 * LN2 + 2 * LN14
    assert row["tokens"] == 7 and row["student_nll"] == pytest.approx(whole_nll / 7)
    assert row["mean_rank"] == pytest.approx(9 / 7) and row["rsr"] == pytest.approx(9 / whole_nll)
    # Window 1: "a b" after "<think>" (a: 1/8, b|a: 1/2); "b a" after "a b" (b|b: 1/14, a|b: 1/2);
    # "a" after "b a </think>" (a|</think>: 1/2). The mean of the three steps' mean NLLs:
    assert row["steps"] == 3
    assert row["local_nll"] == pytest.approx(((LN8 + LN2) / 2 + (LN14 + LN2) / 2 + LN2) / 3)
    assert set(seconds) == {"whole", "local"}


def test_without_a_window_each_step_follows_the_problem_alone():
    options = SignalOptions(local=LocalOptions(split="line", window=0))
    [row], _ = score_traces(BigramModel(), word_tokenizer(), [ROLLOUT], options)
    # Every step's first word now follows "assistant:" (1/8): "a b" 2 ln 2, "b a" 2 ln 2, "a" 3 ln 2.
    assert row["local_nll"] == pytest.approx(7 * LN2 / 3)


def test_a_teacher_pools_its_traces_nll_by_tokens_and_rsr_as_a_ratio_of_means():
    rows = [
        {"student_nll": 1.0, "mean_rank": 2.0, "rsr": 2.0, "local_nll": 0.5, "tokens": 10, "steps": 2},
        {"student_nll": 2.0, "mean_rank": 4.0, "rsr": 2.0, "local_nll": None, "tokens": 30, "steps": 0},
    ]
    assert teacher_signals(rows) == pytest.approx(
        {"student_nll": (10 + 60) / 40, "mean_rank": 3.0, "rsr": 3.0 / 1.5, "local_nll": 0.5}
    )


@pytest.mark.slow
def test_any_transformers_causal_lm_a_batch_gives_its_own_loss_per_trace(tmp_path):
    """A tiny Qwen2 (another architecture than the micro student's Llama) with the micro tokenizer:
    each trace's NLL, scored in one padded batch, is the model's own loss on its assistant turn."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from helpers import micro_student, trace_conversations
    from rdistill.signals import load_student

    tokenizer = AutoTokenizer.from_pretrained(micro_student(tmp_path / "micro"))
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "qwen")
    tokenizer.save_pretrained(tmp_path / "qwen")
    rollouts = []
    for conversation in trace_conversations(3):
        reasoning, response = conversation[1]["content"].removeprefix("<think>\n").split("\n</think>\n")
        rollouts.append({"messages": conversation[:1], "reasoning": reasoning, "response": response})
    model, tokenizer = load_student(tmp_path / "qwen")
    rows, _ = score_traces(model, tokenizer, rollouts, SignalOptions(batch_size=3))
    for rollout, row in zip(rollouts, rows, strict=True):
        messages = [*rollout["messages"], {"role": "assistant", "content": conversation_content(rollout)}]
        prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
        start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        labels = torch.tensor([[-100] * start + ids[start:]])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=labels).loss.item()
        assert row["tokens"] == len(ids) - start and row["student_nll"] == pytest.approx(loss, rel=1e-4)
        assert row["steps"] > 1 and row["rsr"] == pytest.approx(row["mean_rank"] / row["student_nll"])


def conversation_content(rollout: dict) -> str:
    """The assistant turn as the SFT data writes it."""
    from rdistill.data import assistant_content

    return assistant_content(rollout["reasoning"], rollout["response"])
