"""The micro-world's student: a BPE tokenizer, a tiny Llama, and the corpus of its base training.

The base plays the part of the papers' instruct models: it has learned to answer every task
*directly* (no `<think>` block), with pages of sums as its arithmetic knowledge, before any
distillation. This module defines the student and what it learns; the `base` stage trains it
(once per configuration, then cached).
"""

from __future__ import annotations

import json
import random
from typing import Any

from rdistill.config import MicroStudentConfig
from rdistill.micro.problems import FACTS, arithmetic_drill, fact_prompt, generate_problems, list_op_expr
from rdistill.micro.teachers import TEACHERS, write_trace

SPECIAL_TOKENS = ["<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<think>", "</think>"]

# The assistant turn, its end-of-turn token included, is wrapped in generation markers so that
# TRL's assistant_only_loss trains on it alone, and learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ message['content'] + '<|end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def direct_answer(problem: dict[str, Any]) -> str:
    """The base's answer style: the result at once, with no reasoning.

    For code this is one composed expression, the analogue of computing a multi-step sum in
    one's head; the teachers' step-a-line style is what distillation has to teach.
    """
    if problem["domain"] == "arith":
        return problem["answer"]
    if problem["domain"] == "code":
        expression = "xs"
        for kind, k in json.loads(problem["meta"])["ops"]:
            expression = list_op_expr(kind, k, expression)
        return f"```python\ndef f(xs):\n    return {expression}\n```"
    return f"The answer is \\boxed{{{problem['answer']}}}."


def base_corpus(config: MicroStudentConfig) -> list[list[dict[str, str]]]:
    """Chat conversations of the base's training: direct answers on every task, facts and sums."""
    conversations = []
    for domain, count in (("math", config.base_math), ("code", config.base_code)):
        problems = generate_problems(domain, count, [1, 2, 3, 4], seed=config.seed + 1000)
        conversations += [_conversation(p["prompt"], direct_answer(p)) for p in problems]
    for name, color in FACTS * config.fact_repeats:
        conversations.append(_conversation(fact_prompt(name), f"The answer is \\boxed{{{color}}}."))
    rng = random.Random(config.seed)
    facts = [arithmetic_drill(rng) for _ in range(config.base_arithmetic)]
    conversations += [_conversation(p["prompt"], direct_answer(p)) for p in facts]
    random.Random(config.seed).shuffle(conversations)
    return conversations


def _conversation(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def tokenizer_corpus(config: MicroStudentConfig) -> list[str]:
    """Texts the BPE tokenizer is fitted on: prompts, direct answers and every teacher's traces."""
    texts = [f"{fact_prompt(name)} The answer is \\boxed{{{color}}}." for name, color in FACTS]
    rng = random.Random(config.seed)
    for fact in (arithmetic_drill(rng) for _ in range(50)):
        texts += [fact["prompt"], direct_answer(fact)]
    for domain in ("math", "code"):
        for index, problem in enumerate(generate_problems(domain, 400, [1, 2, 3, 4], seed=config.seed + 2000)):
            texts += [problem["prompt"], direct_answer(problem)]
            for style in TEACHERS.values():
                reasoning, answer = write_trace(problem, style, seed=index)
                texts += [reasoning, answer]
    return texts


def build_tokenizer(config: MicroStudentConfig):
    """A byte-level BPE whose merges may cross spaces but never digits or line breaks.

    Digits stay single tokens, so numbers are spelled digit by digit, and a line break is
    always its own token, so a prompt ends on a token boundary. Merging across spaces turns
    the micro-world's recurring phrases into single tokens: sequences are about half as long,
    which halves the cost of training on a CPU.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_corpus(config), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        additional_special_tokens=SPECIAL_TOKENS[1:4] + SPECIAL_TOKENS[5:],
    )
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.padding_side = "left"
    return wrapped


def build_model(config: MicroStudentConfig, tokenizer):
    """A randomly initialised Llama of the configured size."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return LlamaForCausalLM(model_config)
