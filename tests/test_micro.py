"""The micro-world: held-out sets nothing trains on, pools shaped like real ones, teachers with their stated properties.

The properties here are the world's design (docs/micro-world.md), checked directly on what the
generators, teachers and corpora produce; no model is trained.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter

import pytest

from rdistill.config import DedupOptions, MicroStudentConfig
from rdistill.grading import grade
from rdistill.grading.answers import extract_answer
from rdistill.micro.holdout import EVAL_LEVELS, GENERALISATION_LEVELS, eval_set, generalisation_set, held_out
from rdistill.micro.pools import draw_pool
from rdistill.micro.problems import (
    EVAL_FACTS,
    FACTS,
    MathOp,
    apply_list_op,
    generate_problems,
    structure_key,
    text_problem,
)
from rdistill.micro.skills import house_trace
from rdistill.micro.student import base_corpus, base_problems, build_tokenizer, direct_answer
from rdistill.micro.teachers import DETOURS, MISSING_ANSWER, MISSING_CODE, TEACHERS, write_trace
from rdistill.similarity import jaccard, near_duplicates, shingle_hashes

SMALL_BASE = {"base_math": 300, "base_code": 300, "base_arithmetic": 10, "fact_repeats": 1, "skill_items": 20}


def pool(domain: str, count: int = 300, share: float = 0.1, seed: int = 0) -> list[dict]:
    return draw_pool(domain, count, [1, 2, 3, 4], [0.35, 0.3, 0.2, 0.15], share, seed, held_out())


def meta(problem: dict) -> dict:
    return json.loads(problem["meta"])


def assert_clear_of_held_out(problems: list[dict]) -> None:
    """No problem shares a held-out structure, and no prompt is near a held-out prompt (exact Jaccard, all pairs)."""
    held = [item for domain in ("math", "code") for item in (*eval_set(domain), *generalisation_set(domain))]
    assert not {structure_key(p) for p in problems} & {structure_key(item) for item in held}
    threshold = DedupOptions().threshold
    candidates = shingle_hashes([p["prompt"] for p in problems], 3)
    references = shingle_hashes([item["prompt"] for item in held], 3)
    closest = max(jaccard(c, r) for c in candidates for r in references)
    assert closest < threshold, f"a prompt is a near-duplicate of a held-out one (Jaccard {closest:.2f})"


@pytest.mark.parametrize("domain", ["math", "code"])
def test_held_out_sets_are_fixed_stratified_and_longer_for_generalisation(domain):
    items = eval_set(domain)
    assert len(items) == 80 and Counter(p["difficulty"] for p in items) == {float(level): 20 for level in EVAL_LEVELS}
    first = Counter(p["difficulty"] for p in items[:8])
    assert first == {float(level): 2 for level in EVAL_LEVELS}, "any first N items are stratified by level"
    assert all(p["split"] == "eval" for p in items) and len({structure_key(p) for p in items}) == 80
    longer = generalisation_set(domain)
    assert {p["difficulty"] for p in longer} == {float(level) for level in GENERALISATION_LEVELS}
    assert all(p["split"] == "generalisation" for p in longer)
    assert [p["prompt"] for p in eval_set(domain)] == [p["prompt"] for p in items], "the same in every call"


@pytest.mark.parametrize("domain", ["math", "code"])
def test_pools_hold_no_held_out_item(domain):
    assert_clear_of_held_out(pool(domain) + pool(domain, seed=1))


@pytest.mark.parametrize("kind", ["direct", "reasoner"])
def test_base_corpora_hold_no_held_out_item(kind):
    problems = base_problems(MicroStudentConfig(kind=kind, **SMALL_BASE))
    assert_clear_of_held_out(problems["math"] + problems["code"])


def test_the_out_of_domain_facts_are_never_rehearsed():
    evaluated = {p["prompt"] for p in eval_set("text")}
    assert len(evaluated) == EVAL_FACTS
    rehearsal = [text_problem(fact, wording) for fact in FACTS[EVAL_FACTS:] for wording in (0, 1)]
    assert not {meta(p)["name"] for p in rehearsal} & {meta(p)["name"] for p in eval_set("text")}


@pytest.mark.parametrize("domain", ["math", "code"])
def test_pools_have_the_configured_copies_an_easy_tail_and_several_routes(domain):
    problems = pool(domain, count=400, share=0.1)
    copies = Counter(meta(p).get("copy") for p in problems)
    assert copies["near_duplicate"] == 20 and copies["paraphrase"] == 20, copies
    assert len({p["prompt"] for p in problems}) == 400, "every problem has its own prompt"
    levels = Counter(p["difficulty"] for p in problems)
    assert levels[1.0] > levels[2.0] > levels[3.0] > levels[4.0], "most problems are easy"
    assert sum(meta(p)["strategies"] > 1 for p in problems) > 100, "many problems have more than one route"
    by_id = {p["id"]: p for p in problems}
    near = [p for p in problems if meta(p).get("copy") == "near_duplicate"]
    paraphrases = [p for p in problems if meta(p).get("copy") == "paraphrase"]
    pairs = near + paraphrases
    sources = list(dict.fromkeys(meta(p)["copy_of"] for p in pairs))
    found = near_duplicates(
        sources + [f"copy{i}" for i in range(len(pairs))],
        [by_id[source]["prompt"] for source in sources] + [p["prompt"] for p in pairs],
        DedupOptions(),
    )
    caught = {int(key[4:]) for key in found if key.startswith("copy")}
    assert set(range(len(near))) <= caught, "curation's MinHash catches every near-duplicate"
    assert len(caught - set(range(len(near)))) < len(paraphrases), "and misses paraphrases, as in real data"
    assert all(structure_key(p) == structure_key(by_id[meta(p)["copy_of"]]) for p in pairs)


@pytest.mark.parametrize("difficulty", [1, 2, 3, 4, 5, 6])
def test_math_answers_follow_the_steps_within_0_to_9(difficulty):
    for problem in generate_problems("math", 20, [difficulty], seed=difficulty):
        steps = meta(problem)
        value = steps["start"]
        for symbol, operand in steps["ops"]:
            value = MathOp(symbol, operand).apply(value)
            assert 0 <= value <= 9
        assert len(steps["ops"]) == difficulty == problem["difficulty"] and str(value) == problem["answer"]


@pytest.mark.parametrize("difficulty", [1, 3, 6])
def test_code_tests_pass_for_the_direct_and_the_teachers_right_solutions(difficulty):
    for index, problem in enumerate(generate_problems("code", 6, [difficulty], seed=difficulty)):
        assert grade(problem, direct_answer(problem))["correct"] is True
        for style in TEACHERS.values():
            trace = write_trace(problem, style, seed=index)
            verdict = grade(problem, trace.response)
            if verdict["correct"] is not True:
                unfinished = not trace.finished or trace.response == MISSING_CODE
                assert unfinished or verdict["verify_error"] == "wrong_answer", style.name


def test_apply_list_op_matches_python_semantics():
    assert apply_list_op("gt", 3, [1, 5, 3, 7]) == [5, 7]
    assert apply_list_op("last", 2, [1, 2, 3]) == [2, 3]
    assert apply_list_op("dedup", 0, [3, 1, 3, 2, 1]) == [3, 1, 2]
    assert apply_list_op("remove", 3, [3, 1, 3]) == [1]


def traces(domain: str, style_name: str, count: int = 200, max_words: int = 300) -> list[tuple[dict, object]]:
    problems = generate_problems(domain, count, [1, 2, 3, 4], seed=11)
    return [(p, write_trace(p, TEACHERS[style_name], seed=i, max_words=max_words)) for i, p in enumerate(problems)]


def test_teachers_are_as_accurate_as_they_claim_and_compact_is_the_most_accurate():
    accuracy = {}
    for name in TEACHERS:
        written = traces("math", name)
        accuracy[name] = sum(extract_answer(t.response) == p["answer"] for p, t in written) / len(written)
        flaws = TEACHERS[name].no_answer + TEACHERS[name].runaway
        assert abs(accuracy[name] - TEACHERS[name].accuracy * (1 - flaws)) < 0.08, (name, accuracy[name])
    assert max(accuracy, key=accuracy.get) == "compact"


def test_every_kind_of_flawed_trace_occurs():
    written = traces("math", "rambler", count=400) + traces("code", "rambler", count=200)
    finished = [(p, t) for p, t in written if t.finished]
    assert any(not t.finished and not t.response for _, t in written), "a runaway trace cut at the token limit"
    assert any(t.response in (MISSING_ANSWER, MISSING_CODE) for _, t in finished), "a trace without a final answer"
    assert any(line in DETOURS for _, t in finished for line in t.reasoning.splitlines()), "a detour"
    slips = [t for p, t in finished if p["domain"] == "math" and (a := extract_answer(t.response)) and a != p["answer"]]
    assert slips, "a plausible slip: a finished trace with a wrong answer"
    assert all(len(t.reasoning.split()) <= 300 for _, t in written)


def test_teachers_differ_in_granularity_entropy_and_length_spread():
    def stats(name: str) -> tuple[float, float, float]:
        written = traces("math", name, count=60)
        lines = statistics.fmean(t.reasoning.count("\n") + 1 for _, t in written)
        lengths = [len(t.reasoning.split()) for _, t in written]
        problem = written[0][0]
        distinct = len({write_trace(problem, TEACHERS[name], seed=s).reasoning for s in range(20)})
        return lines, statistics.pstdev(lengths) / statistics.fmean(lengths), distinct

    compact, stepwise, varied, rambler = (stats(name) for name in ("compact", "stepwise", "varied", "rambler"))
    assert compact[0] < stepwise[0], "compact packs several operations a line"
    assert varied[2] > stepwise[2] and varied[2] >= 8, "varied's samples of a problem differ"
    assert rambler[1] > stepwise[1], "the rambler's lengths spread wider"


@pytest.mark.parametrize("domain", ["math", "code", "text"])
def test_no_teacher_answers_in_either_base_answer_format(domain):
    import random

    problems = list(eval_set(domain)[:40]) if domain != "text" else list(eval_set("text")[:20])
    for index, problem in enumerate(problems):
        formats = {direct_answer(problem)}
        if domain != "text":
            formats.add(house_trace(problem, random.Random(index), accuracy=1.0).split("</think>\n")[1])
        for style in TEACHERS.values():
            response = write_trace(problem, style, seed=index).response
            assert response not in formats, (style.name, response)


def test_the_reasoner_reasons_in_its_house_style_and_the_direct_base_never_does():
    direct = base_corpus(MicroStudentConfig(kind="direct", **SMALL_BASE))
    reasoner = base_corpus(MicroStudentConfig(kind="reasoner", **SMALL_BASE))
    assert not any("<think>" in turns[1]["content"] for turns in direct)
    thinking = [turns[1]["content"] for turns in reasoner if "<think>" in turns[1]["content"]]
    assert len(thinking) > 600 and all("Step 1:" in text and "Answer:" in text for text in thinking)
    prompts = {turns[0]["content"].split(" ")[0] for turns in reasoner}
    assert {"Which", "Reverse", "How", "What", "Tell"} <= prompts, "skill families beyond the pool's"


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
    trained = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
    untrained = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    assert trained == messages[1]["content"] + "<|end|>"
    assert "What is 2 + 3?" in untrained and "<think>" not in untrained
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert tokenizer.apply_chat_template(messages, tokenize=False).startswith(prompt)


def test_numbers_are_spelled_digit_by_digit():
    tokenizer = build_tokenizer(MicroStudentConfig(vocab_size=600))
    digits = [t for t in tokenizer.tokenize("Ann has 17 apples") if any(c.isdigit() for c in t)]
    assert digits == ["1", "7"]


def test_fact_traces_recall_the_fact_and_slip_to_another_colour():
    problems = [text_problem(fact, 0) for fact in FACTS[:20]]
    for style in TEACHERS.values():
        verdicts = [grade(p, write_trace(p, style, seed=i).response)["correct"] for i, p in enumerate(problems * 10)]
        expected = style.accuracy * (1 - style.no_answer)
        assert abs(sum(verdicts) / len(verdicts) - expected) < 0.1, style.name
    trace = write_trace(problems[0], TEACHERS["stepwise"], seed=0)
    assert meta(problems[0])["name"] in trace.reasoning and problems[0]["answer"] in trace.response
