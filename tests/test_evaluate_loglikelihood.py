"""Multiple choice by log-likelihood: lm-evaluation-harness's prompt, pair split, acc and acc_norm, and the stage.

The batched scores (deduplicated inputs, left padding, last logits only) are checked against
one unpadded forward pass per choice on a tiny random Llama with a byte-level tokenizer; the
definitions against lm-eval's (lm_eval/api/task.py `process_results`, api/model.py `_encode_pair`,
tasks/mmlu/default/_default_template_yaml, 0.4.13).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import QUIET
from rdistill.backends.hf import encode_pair, load_model, loglikelihoods
from rdistill.config import BenchmarkSpec, EvaluateOptions
from rdistill.data import read_parquet
from rdistill.data.benchmarks import load_benchmark
from rdistill.evaluate import run
from rdistill.evaluate.loglikelihood import best, choice_row
from test_train_templates import FAMILIES, TEMPLATES, family_student

ROWS = [
    {
        "id": "q1",
        "question": " Which gas do plants take in? ",
        "subject": "high_school_biology",
        "choices": ["Oxygen", "Carbon dioxide", "Helium", "Neon"],
        "answer": "B",
    },
    {"id": "q2", "question": "What is 2 + 2?", "choices": ["3", "4", "5"], "answer": 1},
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    family = FAMILIES["qwen2.5"]
    return family_student(folder, family, (TEMPLATES / family["template"]).read_text())


def benchmark_file(tmp_path: Path) -> Path:
    path = tmp_path / "mcq.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def test_prompt_is_lm_eval_mmlu_zero_shot(tmp_path):
    spec = BenchmarkSpec(name="m", format="mcq", path=str(benchmark_file(tmp_path)), scoring="loglikelihood")
    benchmark = load_benchmark(spec, EvaluateOptions(), tmp_path, "b")
    context, continuations, choices = benchmark.choice_requests(benchmark.problems[0])
    assert context == (
        "The following are multiple choice questions (with answers) about high school biology.\n\n"
        "Which gas do plants take in?\nA. Oxygen\nB. Carbon dioxide\nC. Helium\nD. Neon\nAnswer:"
    )
    assert continuations == [" A", " B", " C", " D"] and choices == ["A", "B", "C", "D"]
    assert benchmark.samples == 1 and benchmark.sampling.temperature == 0.0
    context, continuations, _ = benchmark.choice_requests(benchmark.problems[1])
    assert context.startswith("The following are multiple choice questions (with answers).\n\nWhat is 2 + 2?")
    assert continuations == [" A", " B", " C"]


def test_text_continuations_use_the_arc_prompt(tmp_path):
    spec = BenchmarkSpec(
        name="m", format="mcq", path=str(benchmark_file(tmp_path)), scoring="loglikelihood", continuation="text"
    )
    benchmark = load_benchmark(spec, EvaluateOptions(), tmp_path, "b")
    context, continuations, choices = benchmark.choice_requests(benchmark.problems[0])
    assert context == "Question: Which gas do plants take in?\nAnswer:"
    assert continuations == [" Oxygen", " Carbon dioxide", " Helium", " Neon"] and choices == ROWS[0]["choices"]


def test_loglikelihood_scoring_is_only_for_multiple_choice():
    with pytest.raises(ValueError, match="format 'mcq'"):
        BenchmarkSpec(name="m", format="math500", path="x", scoring="loglikelihood")


def test_acc_takes_the_sum_and_acc_norm_divides_by_the_choice_length():
    # lm-eval: pred = argmax(lls), pred_norm = argmax(lls / len(choice)); the first of equal values wins.
    row = choice_row("q", [(-4.0, False), (-6.0, False), (-4.0, True)], ["ab", "abcdef", "abcd"])
    assert row["text"] == "A" and row["choice_norm"] == "B"
    assert best([-1.0, -1.0]) == 0


def test_pair_split_moves_the_context_space_into_the_continuation(tiny_model):
    tokenizer, _ = load_model(tiny_model)
    context_ids, continuation_ids = encode_pair(tokenizer, "Answer: ", "B")
    assert tokenizer.decode(context_ids) == "Answer:" and tokenizer.decode(continuation_ids) == " B"


def direct(model, tokenizer, context: str, continuation: str) -> float:
    import torch

    context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context_ids + continuation_ids])).logits[0]
    log_probs = torch.log_softmax(logits, dim=-1)
    return sum(float(log_probs[len(context_ids) - 1 + i, t]) for i, t in enumerate(continuation_ids))


def test_batched_scores_equal_one_plain_forward_pass_per_choice(tiny_model):
    tokenizer, model = load_model(tiny_model)
    pairs = [
        ("Tom has 3 apples and buys 4. How many?", " 7 apples"),
        ("Tom has 3 apples and buys 4. How many?", " seven"),
        ("Answer:", " B"),
        ("Answer:", " C"),
        ("The answer is", " \\boxed{7}."),
        # A short input in a batch narrower than the longest continuation of all.
        ("Tom", " has 3 apples and buys 4 more apples, so he has seven apples now"),
        ("A", " 7"),
    ]
    scored = loglikelihoods(tokenizer, model, pairs, batch_size=2)
    expected = [direct(model, tokenizer, context, continuation) for context, continuation in pairs]
    assert [ll for ll, _ in scored] == pytest.approx(expected, abs=1e-4)
    assert all(isinstance(greedy, bool) for _, greedy in scored)


def test_evaluate_stage_scores_by_loglikelihood_with_acc_norm(tmp_path, tiny_model):
    options = EvaluateOptions(
        base=False,
        distilled=False,
        students=[{"name": "tiny", "backend": "hf", "model": str(tiny_model), "batch_size": 1}],
        benchmarks=[
            {"name": "mcq", "format": "mcq", "path": str(benchmark_file(tmp_path)), "scoring": "loglikelihood"}
        ],
        bootstrap_samples=100,
    )
    run(options, tmp_path, QUIET)
    rows = read_parquet(tmp_path / "eval" / "mcq.parquet")
    assert [row["problem_id"] for row in rows] == ["q1", "q2"]
    for row, gold in zip(rows, ["B", "B"], strict=True):
        lls = row["loglikelihoods"]
        assert row["correct"] == ("ABCD"[lls.index(max(lls))] == gold) == (row["extracted"] == gold)
        assert row["correct_norm"] == row["correct"], "one-letter choices: acc_norm picks what acc picks"
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    scores = summary["students"]["tiny"]["mcq"]
    assert scores["accuracy_norm"] == scores["accuracy"] == sum(row["correct"] for row in rows) / 2
    assert summary["benchmarks"]["mcq"]["scoring"] == "loglikelihood"


def test_loglikelihood_needs_an_hf_student(tmp_path):
    from rdistill.errors import RecipeError

    options = EvaluateOptions(
        base=False,
        distilled=False,
        students=[{"name": "api", "backend": "openai", "base_urls": ["http://127.0.0.1:9/v1"]}],
        benchmarks=[
            {"name": "mcq", "format": "mcq", "path": str(benchmark_file(tmp_path)), "scoring": "loglikelihood"}
        ],
    )
    with pytest.raises(RecipeError, match=r"benchmarks\[0\].scoring: 'loglikelihood' needs local 'hf' students"):
        run(options, tmp_path, QUIET)
