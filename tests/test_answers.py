"""Answer extraction, rule by rule (the rules are listed in rdistill.grading.answers' docstring)."""

from __future__ import annotations

import json

import pytest

from rdistill.grading import grade
from rdistill.grading.answers import extract_answer, extract_choice, last_boxed


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        # 1. the last well-formed box
        (r"first \boxed{1} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"The answer is \boxed{7}.", "7"),
        # empty boxes and boxes of punctuation alone are skipped
        ("The answer is 196.\n\nSo: \\boxed{}", "196"),
        (r"\boxed{3}, and finally \boxed{ }", "3"),
        (r"\boxed{3} and \boxed{.}", "3"),
        (r"\boxed{12} but the last box is cut \boxed{1", "12"),
        # 2. answer phrases, the last well-formed one
        ("so the answer is 42.", "42"),
        ("The answer is 5. Wait, no: the answer is 6.", "6"),
        ("Final answer: \\frac{3}{4}", r"\frac{3}{4}"),
        ("Answer: 12", "12"),
        ("The answer is **17**.", "17"),
        ("The final answer is $42$. I hope it is correct.", "42"),
        ("The answer is 196. Let me check it once more.", "196"),
        # the phrase ends its line: the display math or the line after it
        ("The answer is:\n$$ w = 5 $$", "w = 5"),
        ("The answer is:\n\\[ \\frac{1}{2} \\]\nDone.", r"\frac{1}{2}"),
        ("The answer is:\n\n42", "42"),
        # punctuation-only captures are rejected
        ("answer is: .", None),
        ("The answer is:", None),
        # 3. nothing else: no last-number fallback
        ("I do not know, maybe 12", None),
    ],
)
def test_math_answer_extraction(response, answer):
    assert extract_answer(response) == answer


def test_last_boxed_still_reports_the_last_box_empty_or_not():
    assert last_boxed(r"\boxed{1} \boxed{}") == ""
    assert last_boxed("no box here") is None


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        # 1. boxes that read as a letter
        (r"\boxed{B}", "B"),
        (r"\boxed{(b)}", "B"),
        (r"\boxed{\text{C}}", "C"),
        (r"\boxed{B) Paris}", "B"),
        (r"\boxed{A} at first, then \boxed{D}", "D"),
        ("\\boxed{}\nThe answer is B", "B"),
        # 2. answer phrases: "Answer: X", "(X)", "X) text"
        ("The answer is (B).", "B"),
        ("Answer: C", "C"),
        ("answer: c", "C"),
        ("Answer: $\\boxed{D}$", "D"),
        ("The correct option is **D) Paris**", "D"),
        ("The answer is C) Paris, the capital.", "C"),
        ("so the answer is (B)", "B"),
        ("Answer: **B**", "B"),
        ("**Answer: B**", "B"),
        ("The final answer is B.", "B"),
        ("Paris is the capital.\n\nAnswer: A", "A"),
        # 3. a leading letter
        ("B", "B"),
        ("C) Paris is the capital of France.", "C"),
        ("(D) because the others are wrong", "D"),
        ("**B**\nParis is the capital.", "B"),
        ("A. Paris", "A"),
        ("**B**", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("  D:\nbecause the others are wrong", "D"),
        # 4. the last "(X)" anywhere
        ("Option (A) is wrong, and (B) too, so (C)", "C"),
        # not a choice: words, letters beyond the choices, lower case before a word
        ("A bird flies south.", None),
        ("the answer is a bit unclear", None),
        ("A.I. is here", None),
        ("The answer is (F).", None),
        ("I do not know.", None),
    ],
)
def test_choice_extraction(response, letter):
    assert extract_choice(response, "ABCD") == letter


def test_mcq_grading_reads_the_letter_and_reports_no_answer_apart_from_a_wrong_one():
    problem = {"id": "q", "domain": "mcq", "answer": "C", "meta": json.dumps({"choices": 4})}
    assert grade(problem, "C) Paris")["correct"] is True
    assert grade(problem, "Answer: B")["verify_error"] == "wrong_answer"
    assert grade(problem, "(E) is not a choice here")["verify_error"] == "no_answer"


def test_math_grading_an_empty_box_does_not_hide_the_answer_given_before_it():
    verdict = grade({"id": "m", "domain": "math", "answer": "196"}, "The answer is 196.\n\\boxed{}")
    assert (verdict["extracted"], verdict["correct"]) == ("196", True)
