"""The report stage on a hand-made run directory that follows docs/schema.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from rdistill import report
from rdistill.config import ReportOptions
from rdistill.data import write_json, write_jsonl, write_parquet
from rdistill.errors import StageInputError

SUMMARY = {
    "in_domain": ["math", "code"],
    "out_of_domain": ["text"],
    "students": {
        "base": {
            "math": {"n": 60, "accuracy": 0.3, "completion_rate": 1.0, "think_rate": 0.0, "mean_tokens": 12.0},
            "code": {"n": 60, "accuracy": 0.2, "completion_rate": 0.95, "think_rate": 0.0, "mean_tokens": 20.0},
            "text": {"n": 60, "accuracy": 0.5, "completion_rate": 1.0, "think_rate": 0.0, "mean_tokens": 8.0},
        },
        "distilled": {
            "math": {"n": 60, "accuracy": 0.425, "completion_rate": 1.0, "think_rate": 0.9, "mean_tokens": 40.0},
            "code": {"n": 60, "accuracy": 0.433333, "completion_rate": 0.9, "think_rate": 0.85, "mean_tokens": 55.0},
            "text": {"n": 60, "accuracy": 0.45, "completion_rate": 1.0, "think_rate": 0.5, "mean_tokens": 30.0},
        },
    },
}
TEACHERS = {
    "rule": "accuracy",
    "chosen": ["stepwise"],
    "why": "stepwise is the most accurate <script>alert(1)</script>",
    "teachers": {
        "stepwise": {"rollouts": 1600, "correct": 1440, "accuracy": 0.9, "mean_completion_tokens": 31.2,
                     "by_domain": {"math": 0.95, "code": 0.85}},
        "rambler": {"rollouts": 1600, "correct": 800, "accuracy": 0.5, "mean_completion_tokens": 88.0,
                    "by_domain": {"math": 0.6, "code": 0.4}},
    },
}


def _selection_rows() -> list[dict]:
    outcomes = [(True, "budget")] * 3 + [(False, "incorrect")] * 2 + [(False, "teacher_not_chosen")] * 4
    return [
        {"problem_id": f"p{i}", "teacher": "stepwise", "sample_index": 0, "domain": "math", "difficulty": 1.0,
         "correct": why != "incorrect", "kept": kept, "why": why}
        for i, (kept, why) in enumerate(outcomes)
    ]


def _manifest_entry(started: str, seconds: float, counts: dict) -> dict:
    return {"status": "done", "config_hash": "0" * 16, "input_hashes": {}, "outputs": {}, "counts": counts,
            "seconds": seconds, "started_at": started, "finished_at": started}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_json({"stages": {
        "problems": _manifest_entry("2025-01-01T00:00:00+00:00", 1.5, {"train/math": 400}),
        "train": _manifest_entry("2025-01-01T00:01:00+00:00", 42.25, {"steps": 30}),
    }}, tmp_path / "manifest.json")
    write_json(TEACHERS, tmp_path / "teachers.json")
    write_parquet(_selection_rows(), tmp_path / "selection.parquet")
    write_jsonl([{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nr\n</think>\na"}],
                  "problem_id": f"p{i}", "teacher": "stepwise", "why": "budget"} for i in range(3)], tmp_path / "sft.jsonl")
    write_json({"steps": 30, "train_loss": 0.8125, "seconds": 42.0, "examples": 3, "tokens_per_second": 1234.5,
                "parameters": 1_234_567, "resumed_from": None,
                "log_history": [{"loss": 2.5, "step": 10, "learning_rate": 1e-3}, {"loss": 1.25, "step": 20},
                                {"loss": 0.5, "step": 30}, {"train_runtime": 42.0, "step": 30}]},
               tmp_path / "student" / "training_log.json")
    write_json(SUMMARY, tmp_path / "eval" / "summary.json")
    return tmp_path


def _row(markdown: str, first_cell: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_markdown_has_accuracies_delta_and_every_section(run_dir: Path) -> None:
    entry = report.run(ReportOptions(title="Micro run"), run_dir, log=lambda _: None)
    markdown = (run_dir / "report.md").read_text()

    assert markdown.startswith("# Micro run")
    assert entry["counts"] == {"sections": 5}
    assert _row(markdown, "math") == ["math", "in-domain", "30.0%", "42.5%", "+12.5", "100.0%", "100.0%", "0.0%", "90.0%"]
    assert _row(markdown, "code")[2:5] == ["20.0%", "43.3%", "+23.3"]
    assert _row(markdown, "text")[:5] == ["text", "out-of-domain", "50.0%", "45.0%", "-5.0"]
    benchmarks = [line.split("|")[1].strip() for line in markdown.splitlines() if re.match(r"\| (math|code|text) \|", line)]
    assert benchmarks == ["math", "code", "text"]
    assert _row(markdown, "stepwise") == ["stepwise", "1,600", "90.0%", "31.2", "85.0%", "95.0%", "yes"]
    assert _row(markdown, "budget") == ["budget", "kept", "3"]
    assert _row(markdown, "teacher_not_chosen") == ["teacher_not_chosen", "dropped", "4"]
    assert "9 verified rollouts: 3 kept, 6 dropped." in markdown
    assert "sft.jsonl holds 3 training examples (stepwise 3)." in markdown
    assert _row(markdown, "parameters") == ["parameters", "1,234,567"]
    assert _row(markdown, "train loss") == ["train loss", "0.8125"]
    assert _row(markdown, "train")[:3] == ["train", "done", "42.25"]
    assert markdown.index("| problems |") < markdown.index("| train |")


def test_html_is_self_contained_and_escaped(run_dir: Path) -> None:
    report.run(ReportOptions(title="<b>title</b>"), run_dir, log=lambda _: None)
    page = (run_dir / "report.html").read_text()

    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", page)
    assert "<link" not in page and "<script" not in page
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]{100,}">', page)) == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;title&lt;/b&gt;" in page
    assert "<td>42.5%</td>" in page and "<td>+12.5</td>" in page
    assert "<script>" not in (run_dir / "report.md").read_text()


def test_optional_files_are_skipped(run_dir: Path) -> None:
    for name in ("teachers.json", "selection.parquet", "sft.jsonl", "student/training_log.json", "manifest.json"):
        (run_dir / name).unlink()
    entry = report.run(ReportOptions(), run_dir, log=lambda _: None)
    markdown = (run_dir / "report.md").read_text()

    assert entry["counts"] == {"sections": 1}
    assert "## Students per benchmark" in markdown
    assert [line for line in markdown.splitlines() if line.startswith("## ")] == ["## Students per benchmark"]
    assert (run_dir / "report.html").read_text().count("data:image/png;base64,") == 1


def test_second_run_is_skipped(run_dir: Path) -> None:
    messages: list[str] = []
    first = report.run(ReportOptions(), run_dir, log=messages.append)
    written = (run_dir / "report.html").stat().st_mtime_ns
    second = report.run(ReportOptions(), run_dir, log=messages.append)

    assert second["finished_at"] == first["finished_at"]
    assert second == first
    assert any(message.startswith("[dim]skip report") for message in messages)
    assert (run_dir / "report.html").stat().st_mtime_ns == written


def test_missing_summary_is_a_stage_input_error(run_dir: Path) -> None:
    (run_dir / "eval" / "summary.json").unlink()
    with pytest.raises(StageInputError, match="summary.json"):
        report.run(ReportOptions(), run_dir, log=lambda _: None)
    assert not (run_dir / "report.md").exists()


def test_comparison_table_has_a_row_per_benchmark_with_coloured_deltas() -> None:
    table = report.comparison_table(SUMMARY)

    assert isinstance(table, Table)
    assert table.row_count == 3
    columns = {column.header: list(column.cells) for column in table.columns}
    assert [str(cell) for cell in columns["benchmark"]] == ["math", "code", "text"]
    assert [str(cell) for cell in columns["base acc"]] == ["30.0%", "20.0%", "50.0%"]
    deltas = columns["Δ (pp)"]
    assert [str(cell) for cell in deltas] == ["+12.5", "+23.3", "-5.0"]
    assert [str(cell.spans[0].style) for cell in deltas] == ["green", "green", "red"]
    console = Console(record=True, width=200)
    console.print(table)
    assert "43.3%" in console.export_text()
