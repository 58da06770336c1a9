"""Procedural problems of the micro-world: math word problems, list functions, fact look-ups.

Each generator is seeded and labels difficulty by the number of composed operations, the knob
that decides whether answering at once is within a tiny model's reach. Problems carry their
solution *structure* in `meta` so that procedural teachers can write traces about them; the
student only ever sees `prompt`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from rdistill.data import stable_id

MAX_VALUE = 9
MAX_OPERAND = 4


@dataclass(frozen=True)
class MathOp:
    """One arithmetic step: `symbol` is +, - or *; `operand` is the other number."""

    symbol: str
    operand: int

    def apply(self, value: int) -> int:
        """The step's result on `value`."""
        if self.symbol == "+":
            return value + self.operand
        if self.symbol == "-":
            return value - self.operand
        return value * self.operand


def _math_op_phrase(op: MathOp, rng: random.Random) -> str:
    if op.symbol == "+":
        return rng.choice([f"add {op.operand}", f"gain {op.operand}"])
    if op.symbol == "-":
        return rng.choice([f"take away {op.operand}", f"lose {op.operand}"])
    return {2: "double it", 3: "triple it"}[op.operand]


def _next_math_op(value: int, rng: random.Random) -> MathOp:
    """A random step that keeps the running value within 0..MAX_VALUE."""
    choices = []
    if value + 1 <= MAX_VALUE:
        choices.append(MathOp("+", rng.randint(1, min(MAX_OPERAND, MAX_VALUE - value))))
    if value >= 1:
        choices.append(MathOp("-", rng.randint(1, min(MAX_OPERAND, value))))
    factors = [k for k in (2, 3) if value * k <= MAX_VALUE and value >= 2]
    if factors:
        choices.append(MathOp("*", rng.choice(factors)))
    return rng.choice(choices)


def math_problem(difficulty: int, rng: random.Random) -> dict[str, Any]:
    """A word problem of `difficulty` arithmetic steps with an integer answer."""
    start = rng.randint(1, MAX_VALUE)
    value, ops = start, []
    for _ in range(difficulty):
        op = _next_math_op(value, rng)
        ops.append(op)
        value = op.apply(value)
    phrases = [_math_op_phrase(op, rng) for op in ops]
    prompt = f"Start with {start}, {', then '.join(phrases)}. What is the result?"
    meta = {"start": start, "ops": [[op.symbol, op.operand] for op in ops], "phrases": phrases}
    return _record("math", prompt, answer=str(value), tests=None, difficulty=difficulty, meta=meta)


# A list operation: (kind, parameter). Each has a description, a statement form (one line) and
# an expression form (composable), so that teachers can write one step a line or all at once.
LIST_OPS = ("reverse", "sort", "add", "gt", "even", "take")


def list_op_text(kind: str, k: int) -> str:
    """The words a problem uses for one list operation."""
    return {
        "reverse": "reverse it",
        "sort": "sort it",
        "add": f"add {k} to each",
        "gt": f"keep those above {k}",
        "even": "keep the even ones",
        "take": f"keep the first {k}",
    }[kind]


def list_op_expr(kind: str, k: int, inner: str) -> str:
    """The Python expression applying one list operation to the expression `inner`."""
    return {
        "reverse": f"{inner}[::-1]",
        "sort": f"sorted({inner})",
        "add": f"[x + {k} for x in {inner}]",
        "gt": f"[x for x in {inner} if x > {k}]",
        "even": f"[x for x in {inner} if x % 2 == 0]",
        "take": f"{inner}[:{k}]",
    }[kind]


def apply_list_op(kind: str, k: int, xs: list[int]) -> list[int]:
    """Evaluate one list operation, the ground truth for tests."""
    return eval(list_op_expr(kind, k, "xs"), {}, {"xs": xs})  # noqa: S307 - our own fixed expressions


def _list_op_param(kind: str, rng: random.Random) -> int:
    return {"add": rng.randint(1, 3), "gt": rng.randint(2, 6), "take": rng.randint(2, 4)}.get(kind, 0)


def code_problem(difficulty: int, rng: random.Random) -> dict[str, Any]:
    """A list function of `difficulty` composed operations, checked by function tests."""
    ops: list[tuple[str, int]] = []
    while len(ops) < difficulty:
        kind = rng.choice(LIST_OPS)
        if ops and ops[-1][0] == kind:
            continue
        ops.append((kind, _list_op_param(kind, rng)))
    steps = [list_op_text(kind, k) for kind, k in ops]
    prompt = f"Write a Python function f(xs) for a list of integers: {', then '.join(steps)}."
    tests = []
    for _ in range(4):
        xs = [rng.randint(0, 9) for _ in range(rng.randint(3, 6))]
        expected = xs
        for kind, k in ops:
            expected = apply_list_op(kind, k, expected)
        tests.append({"input": None, "output": None, "entry_point": "f", "test": f"assert f({xs}) == {expected}"})
    meta = {"ops": [[kind, k] for kind, k in ops]}
    return _record("code", prompt, answer=None, tests=tests, difficulty=difficulty, meta=meta)


SYLLABLES = ("ba", "ko", "mi", "ru", "te", "zo", "pa", "li", "nu", "ve", "da", "si", "go", "fe", "wu", "ha")
COLORS = ("red", "blue", "green", "yellow", "black", "white", "pink", "brown")
FACT_COUNT = 80


def fact_table() -> list[tuple[str, str]]:
    """The fixed (creature, colour) facts the base student memorises before distillation.

    They do not depend on any seed: the out-of-domain set measures how much of this knowledge
    a distilled student keeps, so the base and every student must face the same facts.
    """
    rng = random.Random("micro-facts")
    names: list[str] = []
    while len(names) < FACT_COUNT:
        name = rng.choice(SYLLABLES) + rng.choice(SYLLABLES)
        if name not in names:
            names.append(name)
    return [(name, rng.choice(COLORS)) for name in names]


FACTS = fact_table()


def fact_prompt(name: str) -> str:
    """The question that looks up one fact, the same in the base corpus and the eval set."""
    return f"What color is the {name}?"


def text_problem(difficulty: int, rng: random.Random) -> dict[str, Any]:
    """A look-up of one memorised fact: general knowledge that distillation may make the student forget."""
    name, color = rng.choice(FACTS)
    return _record("text", fact_prompt(name), answer=color, tests=None, difficulty=1, meta={})


def arithmetic_drill(rng: random.Random, lines: int = 6) -> dict[str, Any]:
    """A page of unrelated sums, one a line: the base's arithmetic knowledge, never evaluated.

    Each result follows its own operands on the same line, as in the pretraining text of a
    real model, so that what the base knows is local arithmetic it can use anywhere, not a
    reply to one question format.
    """
    equations = []
    for _ in range(lines):
        value = rng.randint(0, MAX_VALUE)
        op = _next_math_op(value, rng)
        equations.append(f"{value} {op.symbol} {op.operand} = {op.apply(value)}")
    return _record("arith", "Write out some sums.", answer="\n".join(equations), tests=None, difficulty=1, meta={})


GENERATORS = {"math": math_problem, "code": code_problem, "text": text_problem}


def _record(
    domain: str, prompt: str, answer: str | None, tests: list | None, difficulty: int, meta: dict
) -> dict[str, Any]:
    return {
        "id": stable_id("micro", domain, prompt),
        "domain": domain,
        "prompt": prompt,
        "answer": answer,
        "tests": tests,
        "difficulty": float(difficulty),
        "source": "micro",
        "split": "train",
        "meta": json.dumps(meta),
    }


def generate_problems(
    domain: str, count: int, difficulties: list[int], seed: int, exclude: set[str] = frozenset()
) -> list[dict[str, Any]]:
    """`count` distinct problems of one domain, difficulties drawn uniformly from `difficulties`.

    Problems whose prompt is in `exclude` (another split's) are skipped, so eval stays held out.
    """
    rng = random.Random(f"{domain}-{seed}")
    generator = GENERATORS[domain]
    seen, problems = set(exclude), []
    attempts = 0
    while len(problems) < count:
        attempts += 1
        if attempts > count * 50:
            raise ValueError(f"cannot draw {count} distinct {domain} problems at difficulties {difficulties}")
        problem = generator(rng.choice(difficulties), rng)
        if problem["prompt"] in seen:
            continue
        seen.add(problem["prompt"])
        problems.append(problem)
    return problems
