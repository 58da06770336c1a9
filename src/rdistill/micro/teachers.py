"""Procedural teachers: distributions over reasoning traces with the properties the papers vary.

A teacher is a handful of numbers and phrase sets: accuracy (the chance a trace has no slipped
step), operations per line (more is terser and harder to imitate), inverse self-checks,
digressions, sampling entropy (the chance, at each choice point, of another wording or another
valid route: merging additive steps, `a + a` for doubling, a loop for a comprehension), and the
flaws real traces have: a runaway loop cut at the token limit, a missing final answer. The trace
writers turn a problem's structure into a `<think>` block and an answer. Nothing here knows about
the student: which teacher teaches best is for the pipeline to find out.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from rdistill.micro.problems import FACTS, MathOp, apply_list_op, list_op_expr, list_op_loop, list_op_text


@dataclass(frozen=True)
class TeacherStyle:
    """How one procedural teacher writes (see the module's docstring for each property)."""

    name: str
    description: str
    accuracy: float
    math_lines: tuple[str, ...]
    starts: tuple[str, ...]
    finals: tuple[str, ...]
    ops_per_line: int = 1
    self_check: bool = False
    detours: float = 0.0
    entropy: float = 0.0
    runaway: float = 0.0
    no_answer: float = 0.0


PLAIN_LINE = "{p}: {a} {s} {b} = {c}"
TEACHERS: dict[str, TeacherStyle] = {
    style.name: style
    for style in (
        TeacherStyle(
            "stepwise",
            "one operation a line, one wording, one route",
            accuracy=0.9,
            math_lines=(PLAIN_LINE,),
            starts=("start with {v}",),
            finals=("So the result is \\boxed{{{a}}}.",),
            no_answer=0.02,
        ),
        TeacherStyle(
            "compact",
            "the most accurate, but three operations a line: the benchmark's best, hard to imitate step by step",
            accuracy=0.98,
            math_lines=(PLAIN_LINE,),
            starts=("{v}",),
            finals=("\\boxed{{{a}}}",),
            ops_per_line=3,
        ),
        TeacherStyle(
            "checker",
            "one operation a line, each followed by an inverse self-check",
            accuracy=0.85,
            math_lines=(PLAIN_LINE, "now {p}: {a} {s} {b} = {c}"),
            starts=("start with {v}", "the start is {v}"),
            finals=("Checked: the result is \\boxed{{{a}}}.",),
            self_check=True,
            entropy=0.2,
            no_answer=0.02,
        ),
        TeacherStyle(
            "varied",
            "one operation a line in many wordings and routes",
            accuracy=0.85,
            math_lines=(
                PLAIN_LINE,
                "{p}, so {a} {s} {b} = {c}",
                "then {p}: {a} {s} {b} = {c}",
                "{p} gives {a} {s} {b} = {c}",
                "next we {p}, which is {a} {s} {b} = {c}",
                "after '{p}' we have {a} {s} {b} = {c}",
            ),
            starts=("start with {v}", "we begin at {v}", "the first number is {v}"),
            finals=("The result is \\boxed{{{a}}}.", "That gives \\boxed{{{a}}}.", "Final result: \\boxed{{{a}}}."),
            entropy=0.6,
            runaway=0.02,
            no_answer=0.03,
        ),
        TeacherStyle(
            "rambler",
            "one operation a line with digressions, restarts and the odd runaway loop",
            accuracy=0.7,
            math_lines=(PLAIN_LINE, "so {p}, {a} {s} {b} = {c}"),
            starts=("start with {v}", "hmm, we start with {v}"),
            finals=("Okay, so it is \\boxed{{{a}}}.",),
            detours=0.5,
            entropy=0.3,
            runaway=0.06,
            no_answer=0.05,
        ),
    )
}

DETOURS = ("Hmm, let me look at this again.", "Wait, I should be careful here.", "Let me think about what comes next.",
           "Okay, going on.", "Let me start over from the beginning.")  # fmt: skip
MISSING_ANSWER = "That is the last step."
MISSING_CODE = "The steps above are the whole function."
INVERSE = {"+": "-", "-": "+", "*": "/", "/": "*"}
CODE_PLAN_LINES = ("{t}: {c}", "then {t}: {c}", "{t}, so {c}", "next, {t}: {c}")
FACT_RECALLS = ("I remember that the {n} is {c}.", "The {n} is {c}, as I recall.", "From what I know, the {n} is {c}.",
                "I recall the {n}: it is {c}.")  # fmt: skip


@dataclass(frozen=True)
class Trace:
    """A written trace: reasoning, answer, and whether it ended before the token limit."""

    reasoning: str
    response: str
    finished: bool = True


def _pick(options: tuple[str, ...], style: TeacherStyle, rng: random.Random) -> str:
    """The teacher's first choice, or with probability `entropy` any of its choices."""
    return options[rng.randrange(len(options))] if rng.random() < style.entropy else options[0]


def _slip_step(rng: random.Random, steps: int, style: TeacherStyle) -> int | None:
    """Which step goes wrong in this trace, or None for a correct trace."""
    return None if rng.random() < style.accuracy else rng.randrange(steps)


def _math_step_line(phrase: str, a: int, op: MathOp, c: int, style: TeacherStyle, rng: random.Random) -> str:
    """One step that names the instruction it carries out, then computes it (doubling or tripling maybe as a sum)."""
    if op.symbol == "*" and rng.random() < style.entropy:
        return f"{phrase}: {' + '.join([str(a)] * op.operand)} = {c}"
    return _pick(style.math_lines, style, rng).format(p=phrase, a=a, s=op.symbol, b=op.operand, c=c)


def _check_line(a: int, op: MathOp, c: int) -> str:
    return f"Check: {c} {INVERSE[op.symbol]} {op.operand} = {a}."


def _grouped_math_line(start: int, ops: list[MathOp], result: int) -> str:
    """Several operations in one expression, e.g. `(7 + 5) * 2 - 4 = 20`."""
    expression = str(start)
    for index, op in enumerate(ops):
        needs_parens = op.symbol in "*/" and index > 0 and ops[index - 1].symbol in "+-"
        expression = (
            f"({expression}) {op.symbol} {op.operand}" if needs_parens else f"{expression} {op.symbol} {op.operand}"
        )
    return f"{expression} = {result}"


def _math_groups(ops: list[MathOp], style: TeacherStyle, rng: random.Random) -> list[list[int]]:
    """Step indices written on each line: `ops_per_line` at a time, or consecutive additive steps merged (a route)."""
    if style.ops_per_line > 1:
        return [list(range(i, min(i + style.ops_per_line, len(ops)))) for i in range(0, len(ops), style.ops_per_line)]
    groups: list[list[int]] = []
    for index, op in enumerate(ops):
        previous = groups[-1] if groups else None
        mergeable = previous and len(previous) == 1 and ops[previous[0]].symbol in "+-" and op.symbol in "+-"
        if mergeable and rng.random() < style.entropy / 2:
            previous.append(index)
        else:
            groups.append([index])
    return groups


def _runaway(lines: list[str], phrase: str, max_words: int) -> None:
    """A loop that restates one step until the trace is past the token limit (the backend cuts it there)."""
    words = sum(len(line.split()) for line in lines)
    loop = f"Wait, let me check {phrase} again."
    while words <= max_words:
        lines.append(loop)
        words += len(loop.split())


def math_trace(meta: dict[str, Any], style: TeacherStyle, rng: random.Random, max_words: int) -> tuple[list[str], str]:
    """Reasoning lines and final answer for a math problem."""
    ops = [MathOp(symbol, operand) for symbol, operand in meta["ops"]]
    slip = _slip_step(rng, len(ops), style)
    values, value = [meta["start"]], meta["start"]
    for index, op in enumerate(ops):
        value = op.apply(value)
        if index == slip:
            value += rng.choice([-2, -1, 1, 2])
        values.append(value)
    lines = [_pick(style.starts, style, rng).format(v=meta["start"])]
    for group in _math_groups(ops, style, rng):
        first, end = group[0], group[-1] + 1
        if len(group) == 1:
            lines.append(_math_step_line(meta["phrases"][first], values[first], ops[first], values[end], style, rng))
        elif style.ops_per_line > 1:
            lines.append(_grouped_math_line(values[first], ops[first:end], values[end]))
        else:
            words = " and ".join(meta["phrases"][i] for i in group)
            lines.append(f"{words}: {_grouped_math_line(values[first], ops[first:end], values[end])}")
        if style.self_check and len(group) == 1:
            lines.append(_check_line(values[first], ops[first], values[end]))
        if rng.random() < style.detours:
            lines.append(rng.choice(DETOURS))
    if rng.random() < style.runaway:
        _runaway(lines, meta["phrases"][-1], max_words)
    final = MISSING_ANSWER if rng.random() < style.no_answer else _pick(style.finals, style, rng).format(a=values[-1])
    return lines, final


def _code_statements(ops: list[tuple[str, int]], style: TeacherStyle, rng: random.Random) -> list[str]:
    """The function body: grouped expressions (compact), or one statement per operation, some as loops (a route)."""
    if style.ops_per_line > 1:
        body = []
        for start in range(0, len(ops), style.ops_per_line):
            expression = "xs"
            for kind, k in ops[start : start + style.ops_per_line]:
                expression = list_op_expr(kind, k, expression)
            body.append(f"    xs = {expression}")
        return body
    body, index = [], 0
    while index < len(ops):
        kind, k = ops[index]
        following = ops[index + 1][0] if index + 1 < len(ops) else None
        if kind == "sort" and following == "reverse" and rng.random() < style.entropy:
            body.append("    xs = sorted(xs, reverse=True)")
            index += 2
            continue
        loop = list_op_loop(kind, k) if rng.random() < style.entropy else None
        body += loop or [f"    xs = {list_op_expr(kind, k, 'xs')}"]
        index += 1
    return body


def _slipped(ops: list[tuple[str, int]], slip: int | None, rng: random.Random) -> list[tuple[str, int]]:
    """The operations as a slipping teacher does them: one parameter off by one, or a wrong operation."""
    if slip is None:
        return ops
    ops = list(ops)
    kind, k = ops[slip]
    if kind in ("reverse", "sort", "sort_desc", "even", "odd", "dedup"):
        ops[slip] = ("reverse" if kind != "reverse" else "sort", 0)
    else:
        ops[slip] = (kind, max(1, k + rng.choice([-1, 1])))
    return ops


def code_trace(meta: dict[str, Any], style: TeacherStyle, rng: random.Random, max_words: int) -> tuple[list[str], str]:
    """Plan lines and a fenced Python solution for a list-function problem."""
    ops = _slipped([(kind, k) for kind, k in meta["ops"]], _slip_step(rng, len(meta["ops"]), style), rng)
    phrases = meta["phrases"]
    if style.ops_per_line > 1:
        lines = ["All steps at once: " + ", ".join(list_op_text(kind, k) for kind, k in ops) + "."]
    else:
        lines, example = [], [3, 1, 2, 3]
        for index, (kind, k) in enumerate(ops):
            template = CODE_PLAN_LINES[0] if index == 0 else _pick(CODE_PLAN_LINES, style, rng)
            lines.append(template.format(t=phrases[index], c=f"xs = {list_op_expr(kind, k, 'xs')}"))
            if style.self_check:
                example = apply_list_op(kind, k, example)
                lines.append(f"Check: [3, 1, 2, 3] becomes {example}.")
            if rng.random() < style.detours:
                lines.append(rng.choice(DETOURS))
    if rng.random() < style.runaway:
        _runaway(lines, phrases[-1], max_words)
    if rng.random() < style.no_answer:
        return lines, MISSING_CODE
    body = "\n".join([*_code_statements(ops, style, rng), "    return xs"])
    return lines, f"```python\ndef f(xs):\n{body}\n```"


def text_trace(meta: dict[str, Any], answer: str, style: TeacherStyle, rng: random.Random) -> tuple[list[str], str]:
    """A fact look-up: name what is asked, recall it (a slip recalls another colour), answer."""
    name = meta["name"]
    color = answer
    if rng.random() >= style.accuracy:
        color = rng.choice(sorted({fact.color for fact in FACTS} - {answer}))
    recall = _pick(FACT_RECALLS, style, rng).format(n=name, c=color)
    lines = [recall] if style.ops_per_line > 1 else [f"The question asks for the color of the {name}.", recall]
    if rng.random() < style.detours:
        lines.insert(1, rng.choice(DETOURS))
    final = MISSING_ANSWER if rng.random() < style.no_answer else _pick(style.finals, style, rng).format(a=color)
    return lines, final


def write_trace(problem: dict[str, Any], style: TeacherStyle, seed: int, max_words: int = 16384) -> Trace:
    """One sampled trace of `style` for a micro-world problem, cut at `max_words` words like a token limit."""
    rng = random.Random(seed)
    meta = json.loads(problem["meta"]) if isinstance(problem["meta"], str) else problem["meta"]
    if problem["domain"] == "math":
        lines, response = math_trace(meta, style, rng, max_words)
    elif problem["domain"] == "code":
        lines, response = code_trace(meta, style, rng, max_words)
    elif problem["domain"] == "text":
        lines, response = text_trace(meta, problem["answer"], style, rng)
    else:
        raise ValueError(f"micro teachers cannot solve domain {problem['domain']!r}")
    return _cut(lines, response, max_words)


def _cut(lines: list[str], response: str, max_words: int) -> Trace:
    """The trace, or its first `max_words` words of reasoning and no answer when it runs past the limit."""
    reasoning = "\n".join(lines)
    if len(reasoning.split()) + len(response.split()) <= max_words:
        return Trace(reasoning, response)
    kept, count = [], 0
    for line in lines:
        words = line.split()
        if count + len(words) > max_words:
            kept.append(" ".join(words[: max_words - count]))
            break
        kept.append(line)
        count += len(words)
    return Trace("\n".join(kept).strip(), "", finished=False)
