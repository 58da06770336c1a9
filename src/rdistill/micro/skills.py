"""The reasoner base's broader pretraining: skill families beyond the pool's, and its own house style of reasoning.

DED's students already reason before they are distilled. The `reasoner` base models that with
five procedural skill families no pool holds (comparing numbers, reversing and counting letters,
continuing sequences, describing the creatures of the fact table), some answered directly and
some with step traces, and with math and code answered in the same house style: `Step N: ...`
lines and an `Answer:` line that no teacher writes. The house style slips now and then
(`accuracy`), so that the reasoner is a weak one with room to learn.
"""

from __future__ import annotations

import json
import random
from typing import Any

from rdistill.micro.problems import FACTS, SYLLABLES, MathOp, list_op_expr

SKILLS = ("compare", "reverse", "count", "sequence", "describe")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def _step_lines(steps: list[str]) -> str:
    return "\n".join(f"Step {index}: {step}" for index, step in enumerate(steps, start=1))


def house_answer(answer: str) -> str:
    """The reasoner's final line, unlike any teacher's or the direct base's."""
    return f"Answer: \\boxed{{{answer}}}"


def house_math(meta: dict[str, Any], rng: random.Random, accuracy: float) -> tuple[str, str]:
    """(reasoning, answer) of a math problem in the house style: `Step 1: 5 + 3 -> 8`."""
    ops = [MathOp(symbol, operand) for symbol, operand in meta["ops"]]
    slip = None if rng.random() < accuracy else rng.randrange(len(ops))
    value, steps = meta["start"], []
    for index, op in enumerate(ops):
        result = op.apply(value) + (rng.choice([-1, 1]) if index == slip else 0)
        steps.append(f"{value} {op.symbol} {op.operand} -> {result}")
        value = result
    return _step_lines(steps), house_answer(str(value))


def house_code(meta: dict[str, Any], rng: random.Random, accuracy: float) -> tuple[str, str]:
    """(reasoning, answer) of a list function in the house style: a plan, then a copy `ys` worked on line by line."""
    ops = [(kind, k) for kind, k in meta["ops"]]
    if rng.random() >= accuracy:
        index = rng.randrange(len(ops))
        ops[index] = ("reverse", 0) if ops[index][0] != "reverse" else ("sort", 0)
    plan = _step_lines([f"apply {phrase}" for phrase in meta["phrases"]])
    body = "\n".join(
        ["    ys = list(xs)", *(f"    ys = {list_op_expr(kind, k, 'ys')}" for kind, k in ops), "    return ys"]
    )
    return plan, f"Answer:\n```python\ndef f(xs):\n{body}\n```"


def skill_item(skill: str, rng: random.Random, think: bool) -> tuple[str, str]:
    """(prompt, assistant turn) of one item of a skill family, with a house-style think block or without."""
    if skill == "describe":
        fact = rng.choice(FACTS)
        return (
            f"Tell me about the {fact.name}.",
            f"The {fact.name} is a {fact.color} creature that lives in the {fact.place}.",
        )
    prompt, steps, answer = _skill_parts(skill, rng)
    if not think:
        return prompt, house_answer(answer)
    return prompt, f"<think>\n{_step_lines(steps)}\n</think>\n{house_answer(answer)}"


def _skill_parts(skill: str, rng: random.Random) -> tuple[str, list[str], str]:
    if skill == "compare":
        a, b = rng.sample(range(10), 2)
        larger = max(a, b)
        return f"Which is larger, {a} or {b}?", [f"{larger} > {min(a, b)}"], str(larger)
    if skill in ("reverse", "count"):
        word = _word(rng)
        spelled = " ".join(word)
        if skill == "reverse":
            return f"Reverse the letters of {word}.", [spelled, " ".join(reversed(word))], word[::-1]
        return f"How many letters are in {word}?", [spelled, f"{len(word)} letters"], str(len(word))
    step = rng.randint(1, 3)
    start = rng.randint(0, 9 - 3 * step)
    terms = [start + step * i for i in range(3)]
    prompt = f"What comes next: {', '.join(map(str, terms))}?"
    return prompt, [f"each term adds {step}", f"{terms[-1]} + {step} -> {terms[-1] + step}"], str(terms[-1] + step)


def house_trace(problem: dict[str, Any], rng: random.Random, accuracy: float) -> str:
    """The reasoner's assistant turn for a math or code problem: its think block, then its answer."""
    meta = json.loads(problem["meta"])
    reasoning, answer = (house_math if problem["domain"] == "math" else house_code)(meta, rng, accuracy)
    return f"<think>\n{reasoning}\n</think>\n{answer}"
