"""The micro-world's student: a BPE tokenizer, a tiny Llama, and its non-reasoning base training.

The base plays the part of the papers' instruct models: it has learned to answer every task
*directly* (no `<think>` block), with pages of sums as its arithmetic knowledge, before any distillation. It is
built once per configuration and cached under `$RDISTILL_CACHE` (default
`~/.cache/rdistill`) in a folder named after its configuration hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class MicroStudentConfig(BaseModel):
    """Architecture and base training of the micro student (a Llama of about two million parameters)."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(1024, description="BPE vocabulary size, special tokens included.")
    hidden_size: int = Field(192, description="Width of the residual stream.")
    intermediate_size: int = Field(512, description="Width of the MLP.")
    num_layers: int = Field(4, description="Transformer blocks.")
    num_heads: int = Field(6, description="Attention heads.")
    max_positions: int = Field(512, description="Longest sequence the model accepts.")
    base_math: int = Field(2000, description="Math word problems answered directly in the base corpus.")
    base_code: int = Field(2000, description="List functions answered directly in the base corpus.")
    base_arithmetic: int = Field(1500, description="Pages of six sums or products (arithmetic knowledge) in the base corpus.")
    fact_repeats: int = Field(8, description="Times each out-of-domain fact occurs in the base corpus.")
    base_epochs: float = Field(2.0, description="Passes over the base corpus.")
    base_learning_rate: float = Field(3e-3, description="Peak learning rate of base training.")
    base_batch_size: int = Field(64, description="Examples per base training step.")
    seed: int = Field(0, description="Seed of the base corpus, initialisation and training.")

    def fingerprint(self) -> str:
        """Hash naming the cache folder: a change of configuration or of the micro-world's code builds a new base."""
        digest = hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode())
        for source in sorted(Path(__file__).parent.glob("*.py")):
            digest.update(source.read_bytes())
        return digest.hexdigest()[:12]


def cache_root() -> Path:
    """Where built micro students live; `RDISTILL_CACHE` overrides the default."""
    return Path(os.environ.get("RDISTILL_CACHE", Path.home() / ".cache" / "rdistill"))


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


def ensure_base(config: MicroStudentConfig, console=None) -> Path:
    """Path of the trained non-reasoning base for `config`, building and caching it if needed."""
    from rdistill.train import SFTOptions, fine_tune

    target = cache_root() / "micro-student" / config.fingerprint()
    if (target / "config.json").exists():
        return target
    staging = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    init_dir = staging / "init"
    tokenizer = build_tokenizer(config)
    model = build_model(config, tokenizer)
    model.save_pretrained(init_dir)
    tokenizer.save_pretrained(init_dir)
    options = SFTOptions(
        epochs=config.base_epochs,
        learning_rate=config.base_learning_rate,
        batch_size=config.base_batch_size,
        max_length=config.max_positions,
        seed=config.seed,
        # Padded batches, as the base was measured: trained on packed rows for the same epochs,
        # it ended at a higher loss and recalled none of its facts.
        packing=False,
    )
    fine_tune(init_dir, base_corpus(config), staging / "model", options, description="base student (direct answers)", console=console)
    staging.joinpath("model", "micro_student.json").write_text(json.dumps(config.model_dump(), indent=2))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # another process finished first; keep its copy
        shutil.rmtree(staging, ignore_errors=True)
        return target
    os.replace(staging / "model", target)
    shutil.rmtree(staging, ignore_errors=True)
    return target
