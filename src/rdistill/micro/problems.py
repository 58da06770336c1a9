"""Procedural problems of the micro-world: math word problems, list functions, fact look-ups.

A problem is a *structure* (what is computed: a start value and arithmetic steps, or a chain of
list operations) rendered in one *wording*. The structure's key identifies the problem whatever
its words, so that held-out sets, duplicates and paraphrases are defined on it. Difficulty is
the number of composed steps, the knob that decides whether answering at once is within a tiny
model's reach. Problems carry their structure in `meta` so that procedural teachers can write
traces about them; the student only ever sees `prompt`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from rdistill.data import stable_id

MAX_VALUE = 9

# Math


@dataclass(frozen=True)
class MathOp:
    """One arithmetic step: `symbol` is +, -, * or / (halving); `operand` is the other number."""

    symbol: str
    operand: int

    def apply(self, value: int) -> int:
        """The step's result on `value`."""
        if self.symbol == "+":
            return value + self.operand
        if self.symbol == "-":
            return value - self.operand
        if self.symbol == "*":
            return value * self.operand
        return value // self.operand


def math_ops_at(value: int) -> list[MathOp]:
    """Every step that keeps the running value within 0..MAX_VALUE (halving only even values)."""
    ops = [MathOp("+", k) for k in range(1, MAX_VALUE - value + 1)]
    ops += [MathOp("-", k) for k in range(1, value + 1)]
    ops += [MathOp("*", k) for k in (2, 3) if value >= 2 and value * k <= MAX_VALUE]
    if value >= 2 and value % 2 == 0:
        ops.append(MathOp("/", 2))
    return ops


CHAIN_PHRASES = {
    "+": ("add {k}", "gain {k}", "increase it by {k}"),
    "-": ("take away {k}", "lose {k}", "subtract {k}"),
    "*2": ("double it", "multiply it by 2"),
    "*3": ("triple it", "multiply it by 3"),
    "/2": ("halve it", "divide it by 2"),
}
STORY_PHRASES = {
    "+": ("gets {k} more", "finds {k} more"),
    "-": ("gives away {k}", "loses {k}"),
    "*2": ("doubles them",),
    "*3": ("triples them",),
    "/2": ("gives away half of them",),
}
NAMES = ("Mia", "Omar", "Lena", "Ravi", "Yuki", "Tom", "Ana", "Kofi", "Ines", "Lars")
OBJECTS = ("shells", "stamps", "coins", "marbles", "cards", "beads", "pebbles", "tickets")


def _op_key(op: MathOp) -> str:
    return op.symbol if op.symbol in "+-" else f"{op.symbol}{op.operand}"


def math_phrase(op: MathOp, phrases: dict[str, tuple[str, ...]], choice: int) -> str:
    """The words of one step in a wording's vocabulary (`choice` picks among its synonyms)."""
    options = phrases[_op_key(op)]
    return options[choice % len(options)].format(k=op.operand)


def math_structure(difficulty: int, rng: random.Random) -> tuple[int, tuple[MathOp, ...]]:
    """A random start value and `difficulty` steps, every value within 0..9."""
    start = rng.randint(1, MAX_VALUE)
    value, ops = start, []
    for _ in range(difficulty):
        op = rng.choice(math_ops_at(value))
        ops.append(op)
        value = op.apply(value)
    return start, tuple(ops)


def math_strategies(ops: tuple[MathOp, ...]) -> int:
    """Solution routes a trace may take: each pair of consecutive additive steps may be merged,
    each doubling written as `a + a`, each tripling as `a + a + a` (one route, plus one per choice)."""
    merges = sum(a.symbol in "+-" and b.symbol in "+-" for a, b in zip(ops, ops[1:], strict=False))
    rewrites = sum(op.symbol == "*" for op in ops)
    return 1 + merges + rewrites


def render_math(start: int, ops: tuple[MathOp, ...], rng: random.Random) -> tuple[str, list[str], str]:
    """(prompt, the words of each step as the prompt says them, wording name) of a math structure."""
    if start < 2 or rng.random() < 0.5:  # a story needs things to count ("1 shells" would not do)
        phrases = [math_phrase(op, CHAIN_PHRASES, rng.randrange(3)) for op in ops]
        return f"Start with {start}, {', then '.join(phrases)}. What is the result?", phrases, "chain"
    name, things = rng.choice(NAMES), rng.choice(OBJECTS)
    phrases = [math_phrase(op, STORY_PHRASES, rng.randrange(2)) for op in ops]
    prompt = f"{name} has {start} {things}. {name} {', then '.join(phrases)}. How many {things} does {name} have now?"
    return prompt, phrases, "story"


def math_problem(structure: tuple[int, tuple[MathOp, ...]], rng: random.Random) -> dict[str, Any]:
    """A math problem record for a structure, in a random wording."""
    start, ops = structure
    value = start
    for op in ops:
        value = op.apply(value)
    prompt, phrases, wording = render_math(start, ops, rng)
    meta = {
        "start": start,
        "ops": [[op.symbol, op.operand] for op in ops],
        "phrases": phrases,
        "wording": wording,
        "strategies": math_strategies(ops),
    }
    return _record("math", prompt, str(value), None, len(ops), meta)


# Code: list operations (kind, parameter). Each has words, an expression form (composable) and,
# for element-wise maps and filters, a loop form, so that teachers can take different routes.

LIST_OPS: dict[str, tuple[int, ...]] = {
    "reverse": (0,),
    "sort": (0,),
    "sort_desc": (0,),
    "add": tuple(range(1, 10)),
    "sub": tuple(range(1, 6)),
    "mul": (2, 3, 4),
    "gt": tuple(range(0, 10)),
    "lt": tuple(range(1, 11)),
    "even": (0,),
    "odd": (0,),
    "take": tuple(range(1, 7)),
    "last": tuple(range(1, 7)),
    "drop": tuple(range(1, 7)),
    "remove": tuple(range(0, 10)),
    "dedup": (0,),
}
LIST_OP_WORDS = {
    "reverse": ("reverse it", "reverse the order"),
    "sort": ("sort it", "sort it in increasing order"),
    "sort_desc": ("sort it from largest to smallest", "sort it in decreasing order"),
    "add": ("add {k} to each", "increase each by {k}"),
    "sub": ("subtract {k} from each", "decrease each by {k}"),
    "mul": ("multiply each by {k}", "scale each by {k}"),
    "gt": ("keep those above {k}", "keep the numbers greater than {k}"),
    "lt": ("keep those below {k}", "keep the numbers less than {k}"),
    "even": ("keep the even ones", "keep only even numbers"),
    "odd": ("keep the odd ones", "keep only odd numbers"),
    "take": ("keep the first {k}", "take the first {k}"),
    "last": ("keep the last {k}", "take the last {k}"),
    "drop": ("drop the first {k}", "skip the first {k}"),
    "remove": ("remove every {k}", "delete each {k}"),
    "dedup": ("remove repeats", "drop duplicates, keeping the first of each"),
}
CODE_OPENINGS = (
    "Write a Python function f(xs) for a list of integers: {steps}.",
    "Define f(xs) that takes a list of integers and does this: {steps}.",
    "Implement f(xs) in Python. Given a list of integers, {steps}.",
)
ELEMENTWISE = {"add": "x + {k}", "sub": "x - {k}", "mul": "x * {k}"}
FILTERS = {"gt": "x > {k}", "lt": "x < {k}", "even": "x % 2 == 0", "odd": "x % 2 == 1", "remove": "x != {k}"}


def list_op_text(kind: str, k: int, choice: int = 0) -> str:
    """The words a problem uses for one list operation (`choice` picks a synonym)."""
    words = LIST_OP_WORDS[kind]
    return words[choice % len(words)].format(k=k)


def list_op_expr(kind: str, k: int, inner: str) -> str:
    """The Python expression applying one list operation to the expression `inner`."""
    if kind in ELEMENTWISE:
        return f"[{ELEMENTWISE[kind].format(k=k)} for x in {inner}]"
    if kind in FILTERS:
        return f"[x for x in {inner} if {FILTERS[kind].format(k=k)}]"
    return {
        "reverse": f"{inner}[::-1]",
        "sort": f"sorted({inner})",
        "sort_desc": f"sorted({inner}, reverse=True)",
        "take": f"{inner}[:{k}]",
        "last": f"{inner}[-{k}:]",
        "drop": f"{inner}[{k}:]",
        "dedup": f"list(dict.fromkeys({inner}))",
    }[kind]


def list_op_loop(kind: str, k: int, indent: str = "    ") -> list[str] | None:
    """The same operation as a loop over xs into ys, for maps and filters; None for the others."""
    if kind in ELEMENTWISE:
        body = [f"{indent}    ys.append({ELEMENTWISE[kind].format(k=k)})"]
    elif kind in FILTERS:
        body = [f"{indent}    if {FILTERS[kind].format(k=k)}:", f"{indent}        ys.append(x)"]
    else:
        return None
    return [f"{indent}ys = []", f"{indent}for x in xs:", *body, f"{indent}xs = ys"]


def apply_list_op(kind: str, k: int, xs: list[int]) -> list[int]:
    """Evaluate one list operation, the ground truth for tests."""
    return eval(list_op_expr(kind, k, "xs"), {}, {"xs": xs})  # noqa: S307 - our own fixed expressions


def code_structure(difficulty: int, rng: random.Random) -> tuple[tuple[str, int], ...]:
    """A chain of `difficulty` list operations, no operation twice in a row."""
    ops: list[tuple[str, int]] = []
    while len(ops) < difficulty:
        kind = rng.choice(list(LIST_OPS))
        if ops and ops[-1][0] == kind:
            continue
        ops.append((kind, rng.choice(LIST_OPS[kind])))
    return tuple(ops)


def code_strategies(ops: tuple[tuple[str, int], ...]) -> int:
    """Solution routes: each map or filter as a comprehension or a loop, a sort then reverse as one sort down."""
    loops = sum(kind in ELEMENTWISE or kind in FILTERS for kind, _ in ops)
    merges = sum(a[0] == "sort" and b[0] == "reverse" for a, b in zip(ops, ops[1:], strict=False))
    return 1 + loops + merges


def code_problem(structure: tuple[tuple[str, int], ...], rng: random.Random) -> dict[str, Any]:
    """A list-function problem for a structure, in a random wording, checked by four function tests."""
    steps = [list_op_text(kind, k, rng.randrange(2)) for kind, k in structure]
    opening = rng.randrange(len(CODE_OPENINGS))
    prompt = CODE_OPENINGS[opening].format(steps=", then ".join(steps))
    tests = []
    for _ in range(4):
        xs = [rng.randint(0, 9) for _ in range(rng.randint(4, 7))]
        expected = xs
        for kind, k in structure:
            expected = apply_list_op(kind, k, expected)
        tests.append({"input": None, "output": None, "entry_point": "f", "test": f"assert f({xs}) == {expected}"})
    meta = {
        "ops": [[kind, k] for kind, k in structure],
        "phrases": steps,
        "wording": f"opening-{opening}",
        "strategies": code_strategies(structure),
    }
    return _record("code", prompt, None, tests, len(structure), meta)


# Facts: the base's out-of-domain knowledge.

SYLLABLES = ("ba", "ko", "mi", "ru", "te", "zo", "pa", "li", "nu", "ve", "da", "si", "go", "fe", "wu", "ha")
COLORS = ("red", "blue", "green", "yellow", "black", "white", "pink", "brown")
PLACES = ("hills", "river", "forest", "desert", "caves", "marsh", "coast", "valley")
FACT_COUNT = 80
EVAL_FACTS = 60  # the first 60 facts are the out-of-domain evaluation set; the other 20 may be rehearsed
FACT_WORDINGS = ("What color is the {n}?", "Which color does the {n} have?")


@dataclass(frozen=True)
class Fact:
    """One memorised fact about a made-up creature: its colour (asked) and its home (general text)."""

    name: str
    color: str
    place: str


def fact_table() -> list[Fact]:
    """The fixed facts the bases memorise before distillation, independent of any seed.

    The out-of-domain set measures how much of this knowledge a distilled student keeps, so the
    bases and every student must face the same facts.
    """
    rng = random.Random("micro-facts")
    names: list[str] = []
    while len(names) < FACT_COUNT:
        name = rng.choice(SYLLABLES) + rng.choice(SYLLABLES)
        if name not in names:
            names.append(name)
    colors = [rng.choice(COLORS) for _ in names]
    places = [rng.choice(PLACES) for _ in names]
    return [Fact(name, color, place) for name, color, place in zip(names, colors, places, strict=True)]


FACTS = fact_table()


def fact_prompt(name: str, wording: int = 0) -> str:
    """The question that looks up one fact (wording 0 is the base corpus's and the eval set's)."""
    return FACT_WORDINGS[wording].format(n=name)


def text_problem(fact: Fact, wording: int) -> dict[str, Any]:
    """A look-up of one memorised fact: general knowledge that distillation may make the student forget."""
    meta = {"name": fact.name, "wording": f"fact-{wording}", "strategies": 1}
    return _record("text", fact_prompt(fact.name, wording), fact.color, None, 1, meta)


def arithmetic_drill(rng: random.Random, lines: int = 6) -> dict[str, Any]:
    """A page of unrelated sums, one a line: the bases' arithmetic knowledge, never evaluated.

    Each result follows its own operands on the same line, as in the pretraining text of a
    real model, so that what a base knows is local arithmetic it can use anywhere, not a reply
    to one question format.
    """
    equations = []
    for _ in range(lines):
        value = rng.randint(0, MAX_VALUE)
        op = rng.choice(math_ops_at(value))
        equations.append(f"{value} {op.symbol} {op.operand} = {op.apply(value)}")
    return _record("arith", "Write out some sums.", "\n".join(equations), None, 1, {})


# Records and drawing

STRUCTURES: dict[str, Callable[[int, random.Random], Any]] = {"math": math_structure, "code": code_structure}
RENDERERS: dict[str, Callable[[Any, random.Random], dict[str, Any]]] = {"math": math_problem, "code": code_problem}


def structure_key(problem: dict[str, Any]) -> str:
    """What a problem computes, whatever its words: equal keys are the same problem."""
    meta = json.loads(problem["meta"]) if isinstance(problem["meta"], str) else problem["meta"]
    if problem["domain"] == "math":
        return json.dumps(["math", meta["start"], meta["ops"]])
    if problem["domain"] == "code":
        return json.dumps(["code", meta["ops"]])
    return json.dumps([problem["domain"], meta.get("name"), problem["answer"]])


def structure_of(problem: dict[str, Any]) -> Any:
    """The structure a problem renders (to word it again)."""
    meta = json.loads(problem["meta"]) if isinstance(problem["meta"], str) else problem["meta"]
    if problem["domain"] == "math":
        return meta["start"], tuple(MathOp(symbol, operand) for symbol, operand in meta["ops"])
    return tuple((kind, k) for kind, k in meta["ops"])


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


class Exclusion(Protocol):
    """Problems a draw must leave out (the held-out sets): structures by key, prompts by a near-duplicate test."""

    structures: set[str]

    def overlaps(self, problems: list[dict[str, Any]]) -> list[bool]:
        """Per problem, whether it is excluded."""


def generate_problems(
    domain: str, count: int, difficulties: list[int], seed: int | str, excluded: Exclusion | None = None
) -> list[dict[str, Any]]:
    """`count` problems of distinct structures, difficulties drawn uniformly from `difficulties`.

    Structures in `excluded` cost a set lookup; new ones are tested for near-duplicate prompts in
    batches. A level that runs out of structures leaves its share to the others; ValueError when
    all of them together cannot supply `count`.
    """
    rng = random.Random(f"{domain}-{seed}")
    seen = set(excluded.structures) if excluded else set()
    problems: list[dict[str, Any]] = []
    misses = 0
    while len(problems) < count:
        fresh = []
        while len(fresh) < count - len(problems):
            if misses > 50 * count + 1000:
                raise ValueError(f"cannot draw {count} distinct {domain} problems at difficulties {difficulties}")
            problem = RENDERERS[domain](STRUCTURES[domain](rng.choice(difficulties), rng), rng)
            key = structure_key(problem)
            if key in seen:
                misses += 1
                continue
            seen.add(key)
            fresh.append(problem)
        near = excluded.overlaps(fresh) if excluded else [False] * len(fresh)
        problems += [problem for problem, hit in zip(fresh, near, strict=True) if not hit]
    return problems
