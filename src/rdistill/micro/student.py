"""The micro-world's student: a BPE tokenizer, a tiny Llama, and the corpora of its two bases.

A base plays the part of the papers' students before distillation. The `direct` base (the
Valley paper's non-reasoning instruct model) has learned to answer every task at once, with no
`<think>` block, and knows local arithmetic and the fact table. The `reasoner` base (DED's
regime) learned more broadly: other skill families, some with step traces, and math and code in
a house style of reasoning (`rdistill.micro.skills`). Neither corpus holds a held-out item
(`rdistill.micro.holdout`). This module defines the student and what it learns; the `base`
stage trains it (once per configuration, then cached).
"""

from __future__ import annotations

import json
import random
from typing import Any

from rdistill.config import MicroStudentConfig
from rdistill.micro.holdout import held_out
from rdistill.micro.problems import FACTS, arithmetic_drill, fact_prompt, generate_problems, list_op_expr
from rdistill.micro.skills import SKILLS, house_trace, skill_item
from rdistill.micro.teachers import TEACHERS, write_trace

BASE_LEVELS = [1, 2, 3, 4]
# A runaway trace repeats one line up to the limit: the tokenizer needs a few of its words, not thousands.
TOKENIZER_TRACE_WORDS = 400

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


def base_problems(config: MicroStudentConfig) -> dict[str, list[dict[str, Any]]]:
    """The math and code problems of a base's corpus: none held out (`rdistill.micro.holdout`)."""
    return {
        domain: generate_problems(domain, count, BASE_LEVELS, seed=config.seed + 1000, excluded=held_out())
        for domain, count in (("math", config.base_math), ("code", config.base_code))
    }


def base_corpus(config: MicroStudentConfig) -> list[list[dict[str, str]]]:
    """Chat conversations of a base's training: its tasks, the facts and pages of sums."""
    rng = random.Random(config.seed)
    conversations = []
    for problems in base_problems(config).values():
        if config.kind == "direct":
            conversations += [_conversation(p["prompt"], direct_answer(p)) for p in problems]
        else:
            conversations += [_conversation(p["prompt"], house_trace(p, rng, config.house_accuracy)) for p in problems]
    fact_answer = "The answer is \\boxed{{{}}}." if config.kind == "direct" else "Answer: \\boxed{{{}}}"
    for fact in FACTS * config.fact_repeats:
        conversations.append(_conversation(fact_prompt(fact.name), fact_answer.format(fact.color)))
    if config.kind == "reasoner":
        for skill in SKILLS:
            items = [skill_item(skill, rng, think=index % 2 == 0) for index in range(config.skill_items)]
            conversations += [_conversation(prompt, answer) for prompt, answer in items]
    drills = [arithmetic_drill(rng) for _ in range(config.base_arithmetic)]
    conversations += [_conversation(p["prompt"], direct_answer(p)) for p in drills]
    random.Random(config.seed).shuffle(conversations)
    return conversations


def _conversation(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def tokenizer_corpus(config: MicroStudentConfig) -> list[str]:
    """Texts the BPE tokenizer is fitted on: prompts, both bases' answers, every teacher's traces and the skills."""
    texts = [f"{fact_prompt(fact.name)} The answer is \\boxed{{{fact.color}}}." for fact in FACTS]
    rng = random.Random(config.seed)
    for fact in (arithmetic_drill(rng) for _ in range(50)):
        texts += [fact["prompt"], direct_answer(fact)]
    for domain in ("math", "code"):
        for index, problem in enumerate(generate_problems(domain, 400, [1, 2, 3, 4, 5, 6], seed=config.seed + 2000)):
            texts += [problem["prompt"], direct_answer(problem), house_trace(problem, rng, config.house_accuracy)]
            for style in TEACHERS.values():
                trace = write_trace(problem, style, seed=index, max_words=TOKENIZER_TRACE_WORDS)
                texts += [trace.reasoning, trace.response]
    for skill in SKILLS:
        for index in range(40):
            texts += list(skill_item(skill, rng, think=index % 2 == 0))
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
