"""The micro-world: problems are right, teachers have their stated properties, the chat template masks right."""

from __future__ import annotations

import json

import pytest

from rdistill.grading import grade
from rdistill.micro.problems import MathOp, apply_list_op, generate_problems
from rdistill.micro.student import MicroStudentConfig, build_tokenizer, direct_answer
from rdistill.micro.teachers import TEACHERS, write_trace


def test_generators_are_seeded_and_distinct():
    first = generate_problems("math", 50, [1, 2, 3], seed=3)
    assert first == generate_problems("math", 50, [1, 2, 3], seed=3)
    assert first != generate_problems("math", 50, [1, 2, 3], seed=4)
    assert len({p["prompt"] for p in first}) == 50


def test_eval_exclusion_keeps_prompts_held_out():
    train = generate_problems("code", 40, [1, 2], seed=0)
    held_out = generate_problems("code", 40, [1, 2], seed=1, exclude={p["prompt"] for p in train})
    assert not {p["prompt"] for p in train} & {p["prompt"] for p in held_out}


@pytest.mark.parametrize("difficulty", [1, 2, 3, 4])
def test_math_answer_follows_the_operations(difficulty):
    for problem in generate_problems("math", 20, [difficulty], seed=difficulty):
        meta = json.loads(problem["meta"])
        value = meta["start"]
        for symbol, operand in meta["ops"]:
            value = MathOp(symbol, operand).apply(value)
        assert len(meta["ops"]) == difficulty == problem["difficulty"]
        assert str(value) == problem["answer"]
        assert 0 <= value <= 9


@pytest.mark.parametrize("difficulty", [1, 3])
def test_code_tests_pass_for_the_straight_line_solution(difficulty):
    for problem in generate_problems("code", 5, [difficulty], seed=difficulty):
        ops = json.loads(problem["meta"])["ops"]
        assert len(ops) == difficulty
        reasoning, answer = write_trace(problem, TEACHERS["compact"], seed=0)
        assert grade(problem, answer)["correct"] is True
        assert grade(problem, direct_answer(problem))["correct"] is True


def test_apply_list_op_matches_python_semantics():
    assert apply_list_op("gt", 3, [1, 5, 3, 7]) == [5, 7]
    assert apply_list_op("take", 2, [1, 2, 3]) == [1, 2]
    assert apply_list_op("sort", 0, [3, 1, 2]) == [1, 2, 3]


def test_teacher_accuracy_and_style_are_what_they_claim():
    problems = generate_problems("math", 200, [3], seed=11)
    for style in TEACHERS.values():
        correct = sum(grade(p, write_trace(p, style, seed=i)[1])["correct"] for i, p in enumerate(problems))
        assert abs(correct / len(problems) - style.accuracy) < 0.1, style.name
    reasoning, _ = write_trace(problems[0], TEACHERS["compact"], seed=0)
    assert reasoning.count("\n") == 1, "the compact teacher computes all three steps in one line after the start"
    reasoning, _ = write_trace(problems[0], TEACHERS["stepwise"], seed=0)
    assert reasoning.count("\n") == 3, "the stepwise teacher writes one operation a line"


def test_varied_teacher_varies_between_samples_and_stepwise_does_not():
    problem = generate_problems("math", 1, [4], seed=5)[0]
    varied = {write_trace(problem, TEACHERS["varied"], seed=s)[0] for s in range(20)}
    plain = {
        write_trace(problem, TEACHERS["stepwise"], seed=s)[0]
        for s in range(20)
        if write_trace(problem, TEACHERS["stepwise"], seed=s)[1].endswith(f"{{{problem['answer']}}}.")
    }
    assert len(varied) > 5
    assert len(plain) == 1


def test_chat_template_masks_the_assistant_turn_and_its_end_token():
    tokenizer = build_tokenizer(MicroStudentConfig(vocab_size=600))
    messages = [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "<think>\n2 + 3 = 5\n</think>\nThe answer is \\boxed{5}."},
    ]
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    trained = tokenizer.decode([t for t, m in zip(ids, mask, strict=False) if m])
    untrained = tokenizer.decode([t for t, m in zip(ids, mask, strict=False) if not m])
    assert trained == messages[1]["content"] + "<|end|>"
    assert "What is 2 + 3?" in untrained and "<think>" not in untrained
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert tokenizer.apply_chat_template(messages, tokenize=False).startswith(prompt)


def test_numbers_are_spelled_digit_by_digit():
    tokenizer = build_tokenizer(MicroStudentConfig(vocab_size=600))
    digits = [t for t in tokenizer.tokenize("Ann has 17 apples") if any(c.isdigit() for c in t)]
    assert digits == ["1", "7"]


def test_fact_traces_recall_the_fact_and_slip_to_another_colour():
    problems = generate_problems("text", 20, [1], seed=2)
    for style in TEACHERS.values():
        verdicts = [grade(p, write_trace(p, style, seed=i)[1])["correct"] for i, p in enumerate(problems * 10)]
        assert abs(sum(verdicts) / len(verdicts) - style.accuracy) < 0.1, style.name
    reasoning, answer = write_trace(problems[0], TEACHERS["stepwise"], seed=0)
    name = problems[0]["prompt"].rsplit(" ", 1)[1].rstrip("?")
    assert name in reasoning and problems[0]["answer"] in answer
