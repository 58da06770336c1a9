"""Curation on hand-made verified rollouts: filters, difficulty, trajectories, every strategy, quotas, explanations."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from rdistill.config import CurateOptions, TeachersOptions
from rdistill.curate import curate, funnel, run
from rdistill.curate.difficulty import bin_labels, bin_pass_rates, label
from rdistill.curate.trajectories import diverse_order
from rdistill.data import assistant_content
from rdistill.errors import RecipeError
from rdistill.teachers import choose, score_teachers

STRATEGIES = ["random", "easy_first", "hard_first", "stratified", "diversity", "s1"]
TOPICS = ["algebra", "geometry", "counting", "number theory"]


def problem(index: int, domain: str) -> dict:
    level = index % 4 + 1
    subject = TOPICS[index % 3] if domain == "math" else None
    words = " ".join(f"w{(index * 7 + k) % 97}" for k in range(12))
    return {
        "id": f"{domain}{index}",
        "domain": domain,
        "prompt": f"{domain} problem {index}: {words}",
        "difficulty": float(level),
        "split": "train",
        "meta": json.dumps({"subject": subject} if subject else {}),
    }


def rollout(
    problem: dict,
    teacher: str,
    sample: int,
    correct: bool | None = True,
    finish: str = "stop",
    reasoning: str | None = None,
) -> dict:
    steps = int(problem["difficulty"])
    return {
        "problem_id": problem["id"],
        "teacher": teacher,
        "sample_index": sample,
        "messages": [{"role": "user", "content": problem["prompt"]}],
        "domain": problem["domain"],
        "difficulty": problem["difficulty"],
        "correct": correct,
        "finish_reason": finish,
        "completion_tokens": 10 * steps + sample,
        "reasoning": reasoning
        if reasoning is not None
        else "\n".join(f"{teacher} step {k} of {problem['id']} sample {sample}" for k in range(steps)),
        "response": "\\boxed{2}",
        "extracted": "2",
    }


def world(count: int = 40) -> tuple[list[dict], dict[str, dict]]:
    """Math, code and text problems, three teachers with two samples each; some fail filters."""
    problems = [
        problem(i, domain) for domain, n in (("math", count), ("code", count), ("text", count // 2)) for i in range(n)
    ]
    rng = random.Random(5)
    rows = [
        rollout(p, teacher, s, correct=rng.random() < 0.8)
        for p in problems
        for teacher in ("a", "b", "c")
        for s in range(2)
    ]
    return rows, {p["id"]: p for p in problems}


def decide(options: CurateOptions, count: int = 40, chosen=frozenset({"a", "b", "c"})):
    rows, problems = world(count)
    kept, details = curate(rows, problems, set(chosen), options)
    return rows, kept, details


def keys(rows):
    return [(r["problem_id"], r["teacher"], r["sample_index"]) for r in rows]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("quotas", [{}, {"math": 0.5, "code": 0.3, "text": 0.2}])
def test_every_strategy_returns_exactly_the_budget_is_seeded_and_respects_quotas(strategy, quotas):
    options = CurateOptions(strategy=strategy, budget=90, quotas=quotas, seed=3, dedup={"enabled": False})
    rows, kept, _ = decide(options)
    assert len(kept) == 90 and len(set(keys(kept))) == 90
    assert all(row["correct"] is True for row in kept)
    assert keys(kept) == keys(decide(options)[1])
    if quotas:
        assert Counter(row["domain"] for row in kept) == {"math": 45, "code": 27, "text": 18}
    other_seed = decide(options.model_copy(update={"seed": 4}))[1]
    if strategy != "easy_first" or quotas:
        assert keys(other_seed) != keys(kept)


def test_strategies_order_by_difficulty_and_spread_over_levels_and_topics():
    def levels(strategy, **extra):
        _, kept, _ = decide(
            CurateOptions(
                strategy=strategy,
                budget=20,
                difficulty={"source": "label", "levels": 4},
                trajectories={"per_problem": 1},
                dedup={"enabled": False},
                **extra,
            )
        )
        return Counter(row["level"] for row in kept), kept

    assert levels("easy_first")[0] == {0: 20}
    assert levels("hard_first")[0] == {3: 20}
    assert levels("stratified")[0] == {0: 5, 1: 5, 2: 5, 3: 5}
    _, kept = levels("s1", quotas={"math": 1.0})
    subjects = Counter(json.loads(world()[1][r["problem_id"]]["meta"])["subject"] for r in kept)
    assert sorted(subjects.values()) == [6, 7, 7] and 0 not in {row["level"] for row in kept}


def test_quota_shortfall_is_filled_by_the_other_domains():
    options = CurateOptions(budget=200, quotas={"math": 0.2, "code": 0.2, "text": 0.6}, dedup={"enabled": False})
    _, kept, details = decide(options)
    assert len(kept) == 200
    assert details["quotas"]["short_of_target"]["text"] > 0
    assert Counter(row["domain"] for row in kept)["text"] == details["quotas"]["selected"]["text"] < 120


@pytest.mark.parametrize("quotas", [{}, {"math": 0.5, "code": 0.5}])
def test_a_token_budget_gives_k_traces_of_fewer_problems_the_same_tokens_as_one_trace_of_more(quotas):
    def select(per_problem: int):
        options = CurateOptions(
            budget=10_000,
            budget_tokens=600,
            quotas=quotas,
            trajectories={"per_problem": per_problem},
            dedup={"enabled": False},
        )
        _, kept, _ = decide(options)
        return kept, sum(row["completion_tokens"] for row in kept)

    one, one_tokens = select(1)
    four, four_tokens = select(4)
    longest = max(row["completion_tokens"] for row in one + four)
    for tokens in (one_tokens, four_tokens):
        assert 600 - 2 * longest < tokens <= 600, "filled up to the cap, never over it (per domain with quotas)"
    assert len({row["problem_id"] for row in four}) < len({row["problem_id"] for row in one})
    assert max(Counter(row["problem_id"] for row in four).values()) > 1
    assert max(Counter(row["problem_id"] for row in one).values()) == 1
    if quotas:
        math_tokens = sum(row["completion_tokens"] for row in one if row["domain"] == "math")
        assert 300 - longest < math_tokens <= 300


def test_selection_explains_every_row_and_the_funnel_adds_up():
    rows, problems = world()
    rows[0]["finish_reason"] = "length"
    rows[1]["reasoning"] = ""
    rows[2]["response"] = "</think> \\boxed{2}"
    rows[3]["extracted"] = None
    rows[6]["reasoning"] = "add one. " * 40
    for row in rows[:4] + rows[6:7]:
        row["correct"] = True
    kept, _ = curate(rows, problems, {"a", "b"}, CurateOptions(budget=50, dedup={"enabled": False}))
    why = {(r["problem_id"], r["teacher"], r["sample_index"]): (r["step"], r["why"]) for r in rows}
    assert all(
        r["step"] in ("teacher", "decontaminate", "filters", "dedup", "trajectories", "select") and r["why"]
        for r in rows
    )
    assert [why[k] for k in keys(rows[:4] + rows[6:7])] == [
        ("filters", "unfinished (length)"),
        ("filters", "no reasoning"),
        ("filters", "unbalanced think tags"),
        ("filters", "no extracted answer or code"),
        ("filters", "repetitive (over 0.5 of 4-grams repeated)"),
    ]
    assert {r["why"] for r in rows if r["teacher"] == "c"} == {"teacher not chosen"}
    table = funnel(rows)
    assert sum(step["dropped"] for step in table) + len(kept) == len(rows) and len(kept) == 50


@pytest.mark.parametrize("correctness", ["correct", "all", "incorrect"])
def test_correctness_switch(correctness):
    _, kept, _ = decide(CurateOptions(correctness=correctness, budget=30))
    expected = {"correct": {True}, "incorrect": {False}, "all": {True, False}}[correctness]
    assert {row["correct"] for row in kept} == expected


def test_decontamination_and_dedup_drop_problems_and_name_what_they_matched():
    rows, problems = world()
    eval_problem = {**problems["math1"], "id": "eval-1", "split": "eval"}
    problems["eval-1"] = eval_problem
    problems["math2"] = {**problems["math2"], "prompt": problems["math3"]["prompt"] + " !"}
    curate(rows, problems, {"a", "b", "c"}, CurateOptions(budget=400))
    steps = {
        (r["problem_id"], r["step"], r["matched"], r["duplicate_of"])
        for r in rows
        if r["problem_id"] in ("math1", "math2", "math3")
    }
    assert {(s[1], s[2].split(" (")[0]) for s in steps if s[0] == "math1"} == {
        ("decontaminate", "contaminated: exact match with eval/math/eval-1")
    }
    # math2 comes first in the pool, so it represents the cluster and math3 is its duplicate.
    assert {(s[1], s[3]) for s in steps if s[0] == "math3"} - {("filters", None)} == {("dedup", "math2")}
    assert "dedup" not in {s[1] for s in steps if s[0] == "math2"}


def test_trajectories_keep_the_most_different_traces_up_to_k_per_level():
    p = problem(3, "math")
    same = [rollout(p, "a", s, reasoning="add two then add three then double it") for s in range(3)]
    odd = rollout(p, "b", 0, reasoning="first we triple the start and subtract one")
    assert diverse_order(same + [odd], random.Random(0))[:2].count(odd) == 1
    options = CurateOptions(budget=400, trajectories={"per_level": [1, 1, 2]}, dedup={"enabled": False})
    rows, kept, _ = decide(options)
    per_problem = Counter(row["problem_id"] for row in kept)
    level = {row["problem_id"]: row["level"] for row in rows}
    assert per_problem and all(n <= (2 if level[pid] == 2 else 1) for pid, n in per_problem.items())
    assert any(row["step"] == "trajectories" for row in rows)
    with pytest.raises(ValueError, match="per_level"):
        CurateOptions(trajectories={"per_level": [1, 2]})


def test_difficulty_levels_from_pass_rates_and_labels():
    assert bin_pass_rates({"a": 1.0, "b": 0.5, "c": 0.0, "d": None}, 3) == {"a": 0, "b": 1, "c": 2, "d": 1}
    assert bin_labels({f"p{level}": float(level) for level in range(1, 6)}, 3) == {
        "p1": 0,
        "p2": 0,
        "p3": 1,
        "p4": 1,
        "p5": 2,
    }
    livecodebench = {
        name: label({"meta": json.dumps({"difficulty": name}), "difficulty": None})
        for name in ("easy", "medium", "hard")
    }
    assert bin_labels(livecodebench, 3) == {"easy": 0, "medium": 1, "hard": 2}
    rows, _, _ = decide(CurateOptions(difficulty={"source": "pass_rate", "levels": 2}))
    assert all(r["level"] == (0 if r["pass_rate"] > 0.5 else 1) for r in rows)


def test_quotas_must_sum_to_one():
    with pytest.raises(ValueError, match="sum"):
        CurateOptions(quotas={"math": 0.5, "code": 0.2})


def test_assistant_message_wraps_reasoning_in_think_tags():
    assert assistant_content("1 + 1 = 2", "\\boxed{2}") == "<think>\n1 + 1 = 2\n</think>\n\\boxed{2}"


def test_teacher_scores_and_choice():
    p = problem(1, "math")
    q = problem(2, "code")
    rows = [rollout(x, "a", s) for x in (p, q) for s in range(2)] + [
        rollout(p, "b", 0, correct=False),
        rollout(p, "b", 1, correct=False),
        rollout(q, "b", 0),
        rollout(q, "b", 1, correct=False),
    ]
    scores = score_teachers(rows)
    assert scores["a"]["accuracy"] == 1.0 and scores["b"]["accuracy"] == 0.25
    assert scores["b"]["by_domain"] == {"code": 0.5, "math": 0.0}
    assert choose(scores, TeachersOptions(choose="accuracy"))[0] == ["a"]
    assert choose(scores, TeachersOptions(choose="all"))[0] == ["a", "b"]
    assert choose(scores, TeachersOptions(teacher="b"))[0] == ["b"]
    with pytest.raises(RecipeError, match="teachers.teacher"):
        choose(scores, TeachersOptions(teacher="nobody"))


def test_extra_benchmark_files_decontaminate_and_a_missing_one_is_a_recipe_error(tmp_path):
    rows, problems = world()
    bench = tmp_path / "aime" / "test.jsonl"
    bench.parent.mkdir()
    bench.write_text(json.dumps({"id": "q7", "problem": problems["code5"]["prompt"].upper()}) + "\n")
    curate(rows, problems, {"a", "b", "c"}, CurateOptions(decontaminate={"extra_files": [bench]}))
    assert {r["matched"].split(" (")[0] for r in rows if r["problem_id"] == "code5"} == {
        "contaminated: exact match with aime/test/q7"
    }
    with pytest.raises(RecipeError, match="extra_files: .*nowhere.jsonl not found"):
        run(CurateOptions(decontaminate={"extra_files": [tmp_path / "nowhere.jsonl"]}), tmp_path)


def test_token_bounds_count_in_the_students_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    rows, problems = world()
    words = {w for row in rows for w in f"<think> {row['reasoning']} </think> {row['response']}".split()}
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(sorted(words | {"[UNK]"}))}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    options = CurateOptions(
        budget=1000,
        filters={"tokenizer": str(tmp_path / "tok"), "min_tokens": 11, "max_tokens": 30},
        dedup={"enabled": False},
    )
    kept, _ = curate(rows, problems, {"a", "b", "c"}, options)
    assert kept and all(11 <= row["student_tokens"] <= 30 for row in kept)
    assert {row["why"] for row in rows if row["step"] == "filters" and row["correct"]} == {
        "too short (under 11 student tokens)",
        "too long (over 30 student tokens)",
    }
    with pytest.raises(RecipeError, match="curate.filters.tokenizer"):
        curate(rows, problems, {"a"}, CurateOptions(filters={"tokenizer": str(tmp_path / "none"), "max_tokens": 5}))


def test_one_teacher_alone_on_the_problems_every_teacher_solved():
    options = CurateOptions(teacher="b", same_problems=True, budget=10_000, dedup={"enabled": False})
    rows, kept, _ = decide(options)
    solved = {t: {r["problem_id"] for r in rows if r["teacher"] == t and r["correct"]} for t in "abc"}
    assert {row["teacher"] for row in kept} == {"b"}
    assert {row["problem_id"] for row in kept} <= solved["a"] & solved["b"] & solved["c"]
    assert any(row["why"] == "a teacher never solved the problem (same_problems)" for row in rows)
    with pytest.raises(RecipeError, match="curate.teacher"):
        decide(options, chosen=frozenset({"a"}))


def test_correct_and_incorrect_arms_draw_the_same_problems_with_mixed_verdicts():
    rows, problems = world()
    random.Random(1).shuffle(rows)  # the rollouts' order must not decide which problems an arm draws
    picked = {}
    for verdict in ("correct", "incorrect"):
        arm = [dict(row) for row in rows]
        options = CurateOptions(correctness=verdict, mixed_verdicts=True, budget=15, trajectories={"per_problem": 1})
        kept, _ = curate(arm, problems, {"a", "b", "c"}, options)
        assert len(kept) == 15 and {row["correct"] for row in kept} == {verdict == "correct"}
        lacking = {row["problem_id"] for row in arm if row["why"] and "(mixed_verdicts)" in row["why"]}
        assert lacking and all(len({r["correct"] for r in rows if r["problem_id"] == pid}) == 1 for pid in lacking)
        picked[verdict] = {row["problem_id"] for row in kept}
    assert picked["correct"] == picked["incorrect"]


@pytest.mark.parametrize(("strategy", "column"), [("rsr", "rsr"), ("local", "local_nll")])
def test_signal_strategies_take_the_problems_of_lowest_signal_and_each_problem_s_best_trace(strategy, column):
    rows, problems = world()
    for index, row in enumerate(rows):
        row[column] = (index * 37) % 101 / 10
    options = CurateOptions(strategy=strategy, budget=20, dedup={"enabled": False})
    kept, _ = curate(rows, problems, {"a", "b", "c"}, options)
    candidates = [row for row in rows if row["step"] == "select"]
    best = {}
    for row in candidates:
        best[row["problem_id"]] = min(best.get(row["problem_id"], float("inf")), row[column])
    assert sorted(row[column] for row in kept) == sorted(best.values())[:20]
    assert len({row["problem_id"] for row in kept}) == 20, "one trace per problem first"
