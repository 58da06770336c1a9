"""The report stage on a hand-made run directory that follows docs/schema.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from helpers import QUIET
from rdistill import report
from rdistill.config import Recipe, ReportOptions
from rdistill.data import write_json, write_jsonl, write_parquet
from rdistill.data.manifest import StageContext
from rdistill.errors import StageInputError
from rdistill.pipeline import STAGES


def _scores(accuracy, ci, completion, think, tokens, delta=None, delta_ci=None):
    scores = {
        "problems": 60,
        "k": 4,
        "accuracy": accuracy,
        "accuracy_ci": ci,
        "pass_at_k": min(1.0, 2 * accuracy),
        "pass_at_k_ci": [0.1, 0.9],
        "no_answer_rate": 1 - completion,
        "no_answer_rate_ci": [1 - completion, 1 - completion],
        "completion_rate": completion,
        "completion_rate_ci": [completion, completion],
        "think_rate": think,
        "think_rate_ci": [think, think],
        "mean_tokens": tokens,
        "mean_tokens_ci": [tokens - 1, tokens + 1],
        "by_difficulty": {"1.0": {"problems": 30, "accuracy": accuracy, "pass_at_k": 0.5}},
        "by_subject": {},
    }
    return scores | ({"delta": {"accuracy": delta, "accuracy_ci": delta_ci}} if delta is not None else {})


SUMMARY = {
    "in_domain": ["math", "code"],
    "out_of_domain": ["text"],
    "reference": "base",
    "confidence": 0.95,
    "benchmarks": {name: {"k": 4} for name in ("math", "code", "text")},
    "students": {
        "base": {
            "math": _scores(0.3, [0.2, 0.4], 1.0, 0.0, 12.0),
            "code": _scores(0.2, [0.1, 0.3], 0.95, 0.0, 20.0),
            "text": _scores(0.5, [0.4, 0.6], 1.0, 0.0, 8.0),
        },
        "distilled": {
            "math": _scores(0.425, [0.3, 0.55], 1.0, 0.9, 40.0, 0.125, [0.05, 0.2]),
            "code": _scores(0.433333, [0.3, 0.55], 0.9, 0.85, 55.0, 0.233333, [-0.01, 0.45]),
            "text": _scores(0.45, [0.35, 0.55], 1.0, 0.5, 30.0, -0.05, [-0.15, 0.05]),
        },
    },
    "groups": {
        "base": {
            "in_domain": {"accuracy": 0.25, "accuracy_ci": [0.18, 0.32]},
            "out_of_domain": {"accuracy": 0.5, "accuracy_ci": [0.4, 0.6]},
        },
        "distilled": {
            "in_domain": {
                "accuracy": 0.429,
                "accuracy_ci": [0.34, 0.52],
                "delta": {"accuracy": 0.179, "accuracy_ci": [0.08, 0.28]},
            },
            "out_of_domain": {
                "accuracy": 0.45,
                "accuracy_ci": [0.35, 0.55],
                "delta": {"accuracy": -0.05, "accuracy_ci": [-0.15, 0.05]},
            },
        },
    },
}
TEACHERS = {
    "rule": "accuracy",
    "chosen": ["stepwise"],
    "why": "stepwise is the most accurate <script>alert(1)</script>",
    "teachers": {
        "stepwise": {
            "rollouts": 1600,
            "correct": 1440,
            "accuracy": 0.9,
            "mean_completion_tokens": 31.2,
            "by_domain": {"math": 0.95, "code": 0.85},
        },
        "rambler": {
            "rollouts": 1600,
            "correct": 800,
            "accuracy": 0.5,
            "mean_completion_tokens": 88.0,
            "by_domain": {"math": 0.6, "code": 0.4},
        },
    },
}


def _selection_rows() -> list[dict]:
    outcomes = [(True, "budget")] * 3 + [(False, "incorrect")] * 2 + [(False, "teacher_not_chosen")] * 4
    return [
        {
            "problem_id": f"p{i}",
            "teacher": "stepwise",
            "sample_index": 0,
            "domain": "math",
            "difficulty": 1.0,
            "correct": why != "incorrect",
            "kept": kept,
            "why": why,
        }
        for i, (kept, why) in enumerate(outcomes)
    ]


ANSWER = "the answer <img src=x onerror=alert(3)>"
INJECTION = f"<think>\nplan <script>alert(2)</script>\n</think>\n{ANSWER}"
# (problem, difficulty, correct per sample) of each student on math; code and text have no difficulty.
MATH = {
    "base": [
        ("m0", 1.0, [True, False]),
        ("m1", 1.0, [False, False]),
        ("m2", 3.0, [True, True]),
        ("m3", 3.0, [False, False]),
    ],
    "distilled": [
        ("m0", 1.0, [True, True]),
        ("m1", 1.0, [True, False]),
        ("m2", 3.0, [False, False]),
        ("m3", 3.0, [True, False]),
    ],
}
OTHERS = {
    "code": {
        "base": [("c0", None, [False]), ("c1", None, [False])],
        "distilled": [("c0", None, [True]), ("c1", None, [False])],
    },
    "text": {"base": [("t0", None, [True])], "distilled": [("t0", None, [True])]},
}
# Completion tokens of each student's answers on each benchmark.
TOKENS = {
    ("base", "math"): 10,
    ("base", "code"): 20,
    ("base", "text"): 5,
    ("distilled", "math"): 40,
    ("distilled", "code"): 60,
    ("distilled", "text"): 7,
}


def _eval_rows(benchmark: str, by_student: dict) -> list[dict]:
    return [
        {
            "student": student,
            "benchmark": benchmark,
            "problem_id": problem,
            "sample_index": index,
            "difficulty": difficulty,
            "subject": None,
            "correct": correct,
            "finished": True,
            "has_think": True,
            "tokens": TOKENS[(student, benchmark)],
            "response": INJECTION,
            "finish_reason": "stop",
            "extracted": f"{problem}-{index} <b>x</b>",
            "tests_passed": None,
            "tests_total": None,
            "verify_error": None if correct else "wrong_answer",
        }
        for student, problems in by_student.items()
        for problem, difficulty, verdicts in problems
        for index, correct in enumerate(verdicts)
    ]


def _write_answers(run_dir: Path) -> None:
    for benchmark, by_student in {"math": MATH, **OTHERS}.items():
        write_parquet(_eval_rows(benchmark, by_student), run_dir / "eval" / f"{benchmark}.parquet")
    problems = {
        problem for by_student in [MATH, *OTHERS.values()] for rows in by_student.values() for problem, *_ in rows
    }
    write_parquet(
        [{"id": problem, "prompt": f"What is {problem}? <script>alert(4)</script>"} for problem in sorted(problems)],
        run_dir / "problems.parquet",
    )


def _manifest_entry(finished: str, seconds: float, counts: dict) -> dict:
    """A finished stage as `run_stage` records it: no start time, only the finish and the seconds."""
    return {
        "status": "done",
        "config_hash": "0" * 16,
        "input_hashes": {},
        "outputs": {},
        "counts": counts,
        "seconds": seconds,
        "finished_at": finished,
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_json(
        {
            "stages": {
                "problems": _manifest_entry("2025-01-01T00:00:00+00:00", 1.5, {"train/math": 400}),
                "train": _manifest_entry("2025-01-01T00:01:00+00:00", 42.25, {"steps": 30}),
            }
        },
        tmp_path / "manifest.json",
    )
    write_json(TEACHERS, tmp_path / "teachers.json")
    write_parquet(_selection_rows(), tmp_path / "selection.parquet")
    write_jsonl(
        [
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": f"<think>\nr{i} <script>alert(5)</script>\n</think>\na{i}"},
                ],
                "problem_id": f"p{i}",
                "teacher": "stepwise" if i < 3 else "rambler",
                "why": "budget",
            }
            for i in range(4)
        ],
        tmp_path / "sft.jsonl",
    )
    write_json(
        {
            "steps": 30,
            "train_loss": 0.8125,
            "seconds": 42.0,
            "examples": 3,
            "tokens_per_second": 1234.5,
            "parameters": 1_234_567,
            "resumed_from": None,
            "log_history": [
                {"loss": 2.5, "step": 10, "learning_rate": 1e-3},
                {"loss": 1.25, "step": 20},
                {"loss": 0.5, "step": 30},
                {"train_runtime": 42.0, "step": 30},
            ],
        },
        tmp_path / "student" / "training_log.json",
    )
    write_json(SUMMARY, tmp_path / "eval" / "summary.json")
    _write_answers(tmp_path)
    return tmp_path


def _row(markdown: str, first_cell: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_markdown_has_accuracies_delta_and_every_section(run_dir: Path) -> None:
    entry = report.run(ReportOptions(title="Micro run"), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    assert markdown.startswith("# Micro run")
    assert entry["counts"] == {"sections": 13}
    assert _row(markdown, "math") == [
        "math",
        "in-domain",
        "4",
        "30.0% [20.0, 40.0]",
        "42.5% [30.0, 55.0]",
        "0.0%",
        "0.0%",
        "+12.5 [+5.0, +20.0]",
    ]
    assert _row(markdown, "code")[3:8] == [
        "20.0% [10.0, 30.0]",
        "43.3% [30.0, 55.0]",
        "5.0%",
        "10.0%",
        "+23.3 [-1.0, +45.0]",
    ]
    assert _row(markdown, "text")[:8] == [
        "text",
        "out-of-domain",
        "4",
        "50.0% [40.0, 60.0]",
        "45.0% [35.0, 55.0]",
        "0.0%",
        "0.0%",
        "-5.0 [-15.0, +5.0]",
    ]
    means = [line for line in markdown.splitlines() if line.startswith("| mean |")]
    assert [cell.strip() for cell in means[0].strip("|").split("|")][1:] == [
        "in-domain",
        "–",
        "25.0% [18.0, 32.0]",
        "42.9% [34.0, 52.0]",
        "–",
        "–",
        "+17.9 [+8.0, +28.0]",
    ]
    benchmarks = [
        line.split("|")[1].strip()
        for line in markdown.splitlines()
        if re.match(r"\| (math|code|text) \| (in|out)", line)
    ]
    assert benchmarks == ["math", "code", "text"]
    assert _row(markdown, "distilled")[:10] == [
        "distilled",
        "math",
        "4",
        "42.5% [30.0, 55.0]",
        "85.0% [10.0, 90.0]",
        "–",
        "0.0% [0.0, 0.0]",
        "100.0% [100.0, 100.0]",
        "90.0% [90.0, 90.0]",
        "40.0 [39.0, 41.0]",
    ]
    assert "| base | math | difficulty | 1.0 | 30 | 30.0% | 50.0% |" in markdown
    assert _row(markdown, "stepwise") == ["stepwise", "1,600", "90.0%", "31.2", "85.0%", "95.0%", "yes"]
    assert _row(markdown, "budget") == ["budget", "kept", "3"]
    assert _row(markdown, "teacher_not_chosen") == ["teacher_not_chosen", "dropped", "4"]
    assert "9 verified rollouts: 3 kept, 6 dropped." in markdown
    assert "sft.jsonl holds 4 training examples (stepwise 3, rambler 1)." in markdown
    assert _row(markdown, "parameters") == ["parameters", "1,234,567"]
    assert _row(markdown, "train loss") == ["train loss", "0.8125"]
    # Started: the finish less 42.25 s, to the second.
    assert _row(markdown, "train")[:5] == [
        "train",
        "done",
        "2025-01-01T00:00:17+00:00",
        "2025-01-01T00:01:00+00:00",
        "42.25",
    ]
    assert markdown.index("| problems |") < markdown.index("| train |")


def test_html_is_self_contained_and_escaped(run_dir: Path) -> None:
    report.run(ReportOptions(title="<b>title</b>"), run_dir, QUIET)
    page = (run_dir / "report.html").read_text()

    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    assert "<link" not in page and "<script" not in page
    # avg@k, answer lengths, difficulty bars, teacher evidence, training loss.
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">', page)) == 5
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;title&lt;/b&gt;" in page
    assert "<td>42.5%\n[30.0, 55.0]</td>" in page and "<td>+12.5\n[+5.0, +20.0]</td>" in page
    markdown = (run_dir / "report.md").read_text()
    assert "<script>" not in markdown
    # The sampled answers and traces: teacher and student text shown, escaped, in both files.
    for text in (page, markdown):
        assert "<img src=x" not in text and "<b>x</b>" not in text
        for escaped in ("alert(2)", "alert(4)", "alert(5)"):
            assert f"&lt;script&gt;{escaped}&lt;/script&gt;" in text
        assert "&lt;img src=x onerror=alert(3)&gt;" in text
    assert "<details><summary>reasoning</summary><pre>plan &lt;script&gt;" in page


def test_optional_files_are_skipped(run_dir: Path) -> None:
    optional = ("teachers.json", "selection.parquet", "sft.jsonl", "student/training_log.json", "manifest.json")
    for name in (*optional, "problems.parquet", "eval/math.parquet", "eval/code.parquet", "eval/text.parquet"):
        (run_dir / name).unlink()
    entry = report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    assert entry["counts"] == {"sections": 3}
    assert [line for line in markdown.splitlines() if line.startswith("## ")] == [
        "## Students per benchmark (avg@k with 95% bootstrap intervals over problems; Δ against base, paired)",
        "## Scores per student",
        "## Scores by difficulty and subject",
    ]
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 1


class Messages(list):
    """A console stand-in that keeps what the stage prints, markup and all."""

    def print(self, message: str) -> None:
        self.append(message)


def test_second_run_is_skipped(run_dir: Path) -> None:
    messages = Messages()
    first = report.run(ReportOptions(), run_dir, StageContext(console=messages))
    written = (run_dir / "report.html").stat().st_mtime_ns
    second = report.run(ReportOptions(), run_dir, StageContext(console=messages))

    assert second["finished_at"] == first["finished_at"]
    assert second == first
    assert any(message.startswith("[dim]skip report") for message in messages)
    assert (run_dir / "report.html").stat().st_mtime_ns == written


def test_missing_summary_is_a_stage_input_error(run_dir: Path) -> None:
    (run_dir / "eval" / "summary.json").unlink()
    with pytest.raises(StageInputError, match="summary.json"):
        report.run(ReportOptions(), run_dir, QUIET)
    assert not (run_dir / "report.md").exists()


def test_comparison_table_has_a_row_per_benchmark_and_group_with_coloured_deltas() -> None:
    table = report.comparison_table(SUMMARY)

    assert isinstance(table, Table)
    assert table.row_count == 5
    columns = {column.header: list(column.cells) for column in table.columns}
    assert [str(cell) for cell in columns["benchmark"]] == ["math", "code", "text", "mean", "mean"]
    assert [str(cell).split("\n")[0] for cell in columns["base avg@k"]] == ["30.0%", "20.0%", "50.0%", "25.0%", "50.0%"]
    deltas = columns["Δ distilled (pp)"]
    assert [str(cell).split("\n")[0] for cell in deltas] == ["+12.5", "+23.3", "-5.0", "+17.9", "-5.0"]
    # Bold where the interval excludes 0 (math, the in-domain mean); plain colour where it does not.
    assert [str(cell.spans[0].style) for cell in deltas] == ["bold green", "green", "red", "bold green", "red"]
    console = Console(record=True, width=200)
    console.print(table)
    console.print(report.scores_table(SUMMARY))
    text = console.export_text()
    assert "43.3%" in text and "[30.0, 55.0]" in text and "Scores per student" in text


def test_sampling_warnings_of_the_evaluation_are_in_the_report(run_dir: Path) -> None:
    warning = "evaluate.students[0] on math500 (openai endpoint http://h/v1 (model m)) returned 4 identical samples"
    write_json(SUMMARY | {"warnings": [warning]}, run_dir / "eval" / "summary.json")
    report.run(ReportOptions(), run_dir, QUIET)
    assert f"Warning: {warning}" in (run_dir / "report.md").read_text()


def test_the_teachers_table_shows_every_signal_the_proxy_interval_and_what_the_signals_cost(run_dir: Path) -> None:
    evidence = {
        "student_nll": 0.61,
        "rsr": 2.5,
        "local_nll": 0.7,
        "proxy_accuracy": 0.55,
        "proxy_gain": 0.12,
        "proxy_gain_low": 0.05,
        "proxy_gain_high": 0.19,
    }
    teachers = {
        **TEACHERS,
        "rule": "rsr",
        "teachers": {"stepwise": {**TEACHERS["teachers"]["stepwise"], **evidence}},
        "student_signals": {
            "traces": 128,
            "sample_per_teacher": 64,
            "seconds": {"student_nll": 1.5, "rsr": 1.5, "local_nll": 6.25},
            "note": "one pass",
        },
        "proxy": {
            "training_examples": 400,
            "validation_problems": 200,
            "seeds": [0, 1, 2],
            "planned_steps": 150,
            "base": {"overall": 0.43},
        },
    }
    write_json(teachers, run_dir / "teachers.json")
    report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| teacher |"))
    for title in ("student NLL/token", "rank–surprisal ratio", "local NLL/token", "proxy gain 95% low (pp)"):
        assert title in header
    row = _row(markdown, "stepwise")
    assert ["0.61", "2.5", "0.7", "55.0%", "+12.0", "+5.0", "+19.0"] == row[-8:-1]
    assert "local_nll 6.2 s, rsr 1.5 s, student_nll 1.5 s (one pass)" in markdown
    assert "seeds 0, 1, 2, about 150 steps each" in markdown


def _headings(markdown: str, section: str) -> list[str]:
    """The `###` sample headings under one `##` section."""
    body = markdown.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [line[4:] for line in body.splitlines() if line.startswith("### ")]


def test_sampled_answers_are_two_right_and_two_wrong_of_each_student_in_a_seeded_draw(run_dir: Path) -> None:
    report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    math = _headings(markdown, "Sampled answers: math")
    kinds = [tuple(heading.split(" · ")[:2]) for heading in math]
    assert (
        kinds
        == [("base", "right")] * 2
        + [("base", "wrong")] * 2
        + [("distilled", "right")] * 2
        + [("distilled", "wrong")] * 2
    )
    right = {(p, i) for p, _, verdicts in MATH["base"] for i, ok in enumerate(verdicts) if ok}
    drawn = {(h.split(" problem ")[1].split(" sample ")[0], int(h.split(" sample ")[1])) for h in math[:2]}
    assert drawn <= right and len(drawn) == 2
    # Fewer than asked: every one there is, and a note saying so.
    assert [tuple(h.split(" · ")[:2]) for h in _headings(markdown, "Sampled answers: code")] == [
        ("base", "wrong"),
        ("base", "wrong"),
        ("distilled", "right"),
        ("distilled", "wrong"),
    ]
    assert "base has 0 right answers on code." in markdown
    assert (
        "2 right and 2 wrong answers of each student (unverifiable ones count as wrong), drawn with seed 0" in markdown
    )
    assert "<pre>wrong (wrong_answer)</pre>" in markdown
    assert "<pre>What is m" in markdown.split("## Sampled answers: math")[1]
    # The same seed draws the same answers; the draw is per option.
    report.run(ReportOptions(), run_dir, StageContext(console=Messages(), force=True))
    assert (run_dir / "report.md").read_text() == markdown
    report.run(ReportOptions(answers=1), run_dir, QUIET)
    assert len(_headings((run_dir / "report.md").read_text(), "Sampled answers: math")) == 4


def test_long_texts_are_cut_at_the_stated_limit(run_dir: Path) -> None:
    report.run(ReportOptions(max_chars=10), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    assert "texts longer than 10 characters are cut" in markdown
    assert f"<pre>the answer … [cut: {len(ANSWER)} characters, the first 10 shown]</pre>" in markdown


def test_one_training_trace_per_teacher(run_dir: Path) -> None:
    report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    headings = _headings(markdown, "Sampled training traces")
    assert [heading.split(" · ")[0] for heading in headings] == ["rambler", "stepwise"]
    assert headings[0] == "rambler · problem p3 · budget"
    assert "<pre>a3</pre>" in markdown and "<pre>r3 &lt;script&gt;alert(5)&lt;/script&gt;</pre>" in markdown


def test_difficulty_bars_are_the_share_right_per_level_and_student(run_dir: Path) -> None:
    report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    # base: m0, m1 (level 1) 1 of 4 right, m2, m3 (level 3) 2 of 4; distilled: 3 of 4, then 1 of 4.
    assert report.difficulty_accuracy(_eval_rows("math", MATH)) == {
        "1": {"base": (4, 0.25), "distilled": (4, 0.75)},
        "3": {"base": (4, 0.5), "distilled": (4, 0.25)},
    }
    assert _row(markdown, "math")[:2] == ["math", "in-domain"]
    body = markdown.split("## Accuracy by difficulty level\n", 1)[1]
    assert "| math | 1 | 4 | 4 | 25.0% | 75.0% |" in body and "| math | 3 | 4 | 4 | 50.0% | 25.0% |" in body
    assert "| code |" not in body.split("\n## ", 1)[0]


def test_answer_lengths_per_student_and_group(run_dir: Path) -> None:
    report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    # In-domain: 8 math answers and 2 code answers each; base 10 and 20 tokens, distilled 40 and 60.
    assert "| in-domain | base | 10 | 10 | 12.0 | 20 |" in markdown
    assert "| in-domain | distilled | 10 | 40 | 44.0 | 60 |" in markdown
    assert "| out-of-domain | distilled | 1 | 7 | 7.0 | 7 |" in markdown
    scored = [row | {"loglikelihoods": [-1.0, -2.0], "tokens": 0} for row in _eval_rows("text", OTHERS["text"])]
    lengths = report.completion_lengths(SUMMARY, {"text": _eval_rows("text", OTHERS["text"]) + scored})
    assert lengths == {"out-of-domain": {"base": [5], "distilled": [7]}}


def test_teacher_chart_has_a_panel_per_measure_present(run_dir: Path) -> None:
    assert report.teacher_bars(TEACHERS) == [
        ("accuracy (%)", {"stepwise": (90.0, 90.0, 90.0), "rambler": (50.0, 50.0, 50.0)})
    ]
    evidence = {"rsr": 2.5, "proxy_gain": 0.12, "proxy_gain_low": 0.05, "proxy_gain_high": 0.19}
    teachers = {
        **TEACHERS,
        "teachers": {**TEACHERS["teachers"], "stepwise": {**TEACHERS["teachers"]["stepwise"], **evidence}},
    }
    panels = dict(report.teacher_bars(teachers))
    assert list(panels) == ["accuracy (%)", "rank–surprisal ratio", "proxy gain (pp, 95% interval)"]
    assert panels["rank–surprisal ratio"] == {"stepwise": (2.5, 2.5, 2.5)}
    assert panels["proxy gain (pp, 95% interval)"] == {"stepwise": pytest.approx((12.0, 5.0, 19.0))}
    write_json(teachers, run_dir / "teachers.json")
    report.run(ReportOptions(), run_dir, QUIET)
    assert 'alt="evidence per teacher"' in (run_dir / "report.html").read_text()


def test_stages_are_in_pipeline_order_with_failed_and_stale_states(run_dir: Path) -> None:
    stale = _manifest_entry("2025-01-01T00:02:00+00:00", 3.0, {"kept": 3}) | {"input_hashes": {"sft.jsonl": "0" * 16}}
    failed = {
        "status": "failed",
        "config_hash": "0" * 16,
        "error": "out of memory <script>alert(6)</script>",
        "started_at": "2025-01-01T00:03:00+00:00",
        "failed_at": "2025-01-01T00:04:00+00:00",
    }
    stages = {
        "evaluate": failed,
        "train": _manifest_entry("2025-01-01T00:01:00+00:00", 42.25, {"steps": 30}),
        # Rerun last, yet first in the pipeline.
        "problems": _manifest_entry("2025-01-01T05:00:00+00:00", 1.5, {"train/math": 400}),
        "curate": stale,
        "report": {"status": "running", "started_at": "2025-01-01T06:00:00+00:00"},
    }
    write_json({"stages": stages}, run_dir / "manifest.json")
    report.run(ReportOptions(), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    body = markdown.split("## Stages\n", 1)[1]
    table = [line.split("|")[1:3] for line in body.splitlines() if line.startswith("| ") and "stage" not in line]
    assert [[cell.strip() for cell in row] for row in table] == [
        ["problems", "done"],
        ["curate", "stale"],
        ["train", "done"],
        ["evaluate", "failed"],
    ]
    assert _row(markdown, "evaluate")[2:5] == ["2025-01-01T00:03:00+00:00", "2025-01-01T00:04:00+00:00", "–"]
    assert "Stage curate is stale" in markdown
    # The report orders stages by the recipe's sections: they must stay in the pipeline's order.
    assert [name for name in Recipe.model_fields if name in STAGES] == list(STAGES)
    assert "Stage evaluate failed at 2025-01-01T00:04:00+00:00: out of memory &lt;script&gt;alert(6)" in markdown
    assert "<script" not in (run_dir / "report.html").read_text()


def test_answers_without_problems_parquet_still_render(run_dir: Path) -> None:
    (run_dir / "problems.parquet").unlink()
    report.run(ReportOptions(answers=1, traces_per_teacher=0), run_dir, QUIET)
    markdown = (run_dir / "report.md").read_text()

    assert "<pre>(not in problems.parquet)</pre>" in markdown
    assert "## Sampled training traces" not in markdown


def test_sampled_answers_follow_the_students_order_in_the_file(run_dir: Path) -> None:
    write_parquet(
        _eval_rows("math", {"distilled": MATH["distilled"], "base": MATH["base"]}), run_dir / "eval/math.parquet"
    )
    sections = {section.title: section for section in report.build_sections(run_dir, ReportOptions(answers=1))}

    headings = [sample.heading.split(" · ")[:2] for sample in sections["Sampled answers: math"].samples]
    assert headings == [["distilled", "right"], ["distilled", "wrong"], ["base", "right"], ["base", "wrong"]]
