"""Procedural teachers: distributions over reasoning traces with the properties the papers vary.

A teacher is a handful of numbers (accuracy, operations per line, self-checks, detours,
phrasing variety) and the trace writers below turn a problem's solution structure into a
`<think>` block and an answer. Nothing here knows about the student: which teacher teaches
best is for the pipeline to find out.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from rdistill.micro.problems import COLORS, MathOp, apply_list_op, list_op_expr, list_op_text


@dataclass(frozen=True)
class TeacherStyle:
    """How one procedural teacher writes.

    `accuracy` is the chance a trace has no slipped step; `ops_per_line` how many operations
    one line of reasoning performs (more is terser and harder to imitate); `self_check` adds an
    inverse check after each step; `detours` is the chance of a digression line per step;
    `variety` the number of phrasings it draws from (1 = always the same words).
    """

    name: str
    description: str
    accuracy: float
    ops_per_line: int = 1
    self_check: bool = False
    detours: float = 0.0
    variety: int = 1


TEACHERS: dict[str, TeacherStyle] = {
    style.name: style
    for style in (
        TeacherStyle("stepwise", "one operation a line, plain and consistent", accuracy=0.9),
        TeacherStyle(
            "compact",
            "always right, but computes the whole problem in one line: the benchmark's best, hard to imitate",
            accuracy=1.0,
            ops_per_line=4,
        ),
        TeacherStyle(
            "checker", "one operation a line, each followed by an inverse self-check", accuracy=0.85, self_check=True
        ),
        TeacherStyle("varied", "one operation a line in many phrasings", accuracy=0.85, variety=4),
        TeacherStyle(
            "rambler", "one operation a line with digressions and restarts", accuracy=0.7, detours=0.5, variety=2
        ),
    )
}

DETOURS = (
    "Hmm, let me look at this again.",
    "Wait, I should be careful here.",
    "Let me think about what comes next.",
    "Okay, going on.",
)
MATH_PHRASES = (
    "{p}: {a} {s} {b} = {c}",
    "{p}, so {a} {s} {b} = {c}",
    "then {p}: {a} {s} {b} = {c}",
    "{p} gives {a} {s} {b} = {c}",
)
INVERSE = {"+": "-", "-": "+"}


def _slip_step(rng: random.Random, steps: int, style: TeacherStyle) -> int | None:
    """Which step goes wrong in this trace, or None for a correct trace."""
    return None if rng.random() < style.accuracy else rng.randrange(steps)


def _math_line(phrase: str, a: int, op: MathOp, c: int, style: TeacherStyle, rng: random.Random) -> str:
    """One step that names the instruction it carries out, then computes it."""
    template = MATH_PHRASES[rng.randrange(style.variety)]
    return template.format(p=phrase, a=a, s=op.symbol, b=op.operand, c=c)


def _check_line(a: int, op: MathOp, c: int) -> str:
    if op.symbol == "*":
        return f"Check: {c} / {op.operand} = {a}."
    return f"Check: {c} {INVERSE[op.symbol]} {op.operand} = {a}."


def _grouped_math_line(start: int, ops: list[MathOp], result: int) -> str:
    """Several operations in one expression, e.g. `(7 + 5) * 2 - 4 = 20`."""
    expression = str(start)
    for index, op in enumerate(ops):
        needs_parens = op.symbol == "*" and index > 0 and ops[index - 1].symbol != "*"
        expression = (
            f"({expression}) {op.symbol} {op.operand}" if needs_parens else f"{expression} {op.symbol} {op.operand}"
        )
    return f"{expression} = {result}"


def math_trace(meta: dict[str, Any], style: TeacherStyle, rng: random.Random) -> tuple[str, str]:
    """Reasoning lines and final answer for a math problem."""
    ops = [MathOp(symbol, operand) for symbol, operand in meta["ops"]]
    slip = _slip_step(rng, len(ops), style)
    values, value = [meta["start"]], meta["start"]
    for index, op in enumerate(ops):
        value = op.apply(value)
        if index == slip:
            value += rng.choice([-2, -1, 1, 2])
        values.append(value)
    lines: list[str] = [f"start with {meta['start']}"]
    for first in range(0, len(ops), style.ops_per_line):
        group = ops[first : first + style.ops_per_line]
        end = first + len(group)
        if len(group) == 1:
            lines.append(_math_line(meta["phrases"][first], values[first], group[0], values[end], style, rng))
        else:
            lines.append(_grouped_math_line(values[first], group, values[end]))
        if style.self_check and len(group) == 1:
            lines.append(_check_line(values[first], group[0], values[end]))
        if rng.random() < style.detours:
            lines.append(rng.choice(DETOURS))
    return "\n".join(lines), f"The answer is \\boxed{{{values[-1]}}}."


CODE_STEP_PHRASES = ("{t}: {c}", "then {t}: {c}", "{t}, so {c}", "next, {t}: {c}")


def _slipped_param(kind: str, k: int, rng: random.Random) -> int:
    if kind in ("reverse", "sort", "even"):
        return k
    return max(1, k + rng.choice([-1, 1]))


def code_trace(meta: dict[str, Any], style: TeacherStyle, rng: random.Random) -> tuple[str, str]:
    """Plan lines and a fenced Python solution for a list-function problem."""
    ops = [(kind, k) for kind, k in meta["ops"]]
    slip = _slip_step(rng, len(ops), style)
    if slip is not None:
        kind, k = ops[slip]
        new_k = _slipped_param(kind, k, rng)
        ops[slip] = (kind, new_k) if new_k != k else ("reverse" if kind != "reverse" else "sort", 0)
    if style.ops_per_line > 1:
        plan = "All steps at once: " + ", ".join(list_op_text(kind, k) for kind, k in ops) + "."
        expression = "xs"
        for kind, k in ops:
            expression = list_op_expr(kind, k, expression)
        body = f"    return {expression}"
        return plan, f"```python\ndef f(xs):\n{body}\n```"
    lines: list[str] = []
    example = [3, 1, 2]
    for index, (kind, k) in enumerate(ops, start=1):
        phrase = CODE_STEP_PHRASES[0 if index == 1 else rng.randrange(style.variety)]
        lines.append(phrase.format(t=list_op_text(kind, k), c=f"xs = {list_op_expr(kind, k, 'xs')}"))
        if style.self_check:
            example = apply_list_op(kind, k, example)
            lines.append(f"Check: [3, 1, 2] becomes {example}.")
        if rng.random() < style.detours:
            lines.append(rng.choice(DETOURS))
    body = "\n".join(f"    xs = {list_op_expr(kind, k, 'xs')}" for kind, k in ops)
    return "\n".join(lines), f"```python\ndef f(xs):\n{body}\n    return xs\n```"


FACT_PHRASES = (
    "I remember that the {n} is {c}.",
    "The {n} is {c}, as I recall.",
    "From what I know, the {n} is {c}.",
    "I recall the {n}: it is {c}.",
)


def text_trace(problem: dict[str, Any], style: TeacherStyle, rng: random.Random) -> tuple[str, str]:
    """A fact look-up: name what is asked, recall it (a slip recalls another colour), answer."""
    name = problem["prompt"].rsplit(" ", 1)[1].rstrip("?")
    color = problem["answer"]
    if rng.random() >= style.accuracy:
        color = rng.choice([other for other in COLORS if other != color])
    recall = FACT_PHRASES[rng.randrange(style.variety)].format(n=name, c=color)
    lines = [recall] if style.ops_per_line > 1 else [f"The question asks for the color of the {name}.", recall]
    if rng.random() < style.detours:
        lines.insert(1, rng.choice(DETOURS))
    return "\n".join(lines), f"The answer is \\boxed{{{color}}}."


def write_trace(problem: dict[str, Any], style: TeacherStyle, seed: int) -> tuple[str, str]:
    """(reasoning, answer) of one sampled trace of `style` for a micro-world problem."""
    rng = random.Random(seed)
    meta = json.loads(problem["meta"]) if isinstance(problem["meta"], str) else problem["meta"]
    if problem["domain"] == "math":
        return math_trace(meta, style, rng)
    if problem["domain"] == "code":
        return code_trace(meta, style, rng)
    if problem["domain"] == "text":
        return text_trace(problem, style, rng)
    raise ValueError(f"micro teachers cannot solve domain {problem['domain']!r}")
