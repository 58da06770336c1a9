"""Stage `report`: one page that says whether distillation paid off, and what it cost.

It reads whatever the earlier stages left in the run directory (only `eval/summary.json` is
required) and writes `report.md` for reading in a terminal or a pull request and `report.html`,
a single self-contained file (inline CSS, plots as base64 PNGs) that can be mailed or archived.
Every piece of text taken from a file is escaped: a teacher's output must not run as a script.
"""

from __future__ import annotations

import base64
import html
import io
import json
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from rdistill.analysis.claims import effect_text
from rdistill.backends.interface import split_think
from rdistill.config import Recipe, ReportOptions
from rdistill.data import GROUP_LABELS, GROUPS, atomic_path, read_jsonl, read_parquet, require_columns
from rdistill.data.manifest import DEFAULT_CONTEXT, StageContext, read_manifest, run_stage, stage_state
from rdistill.errors import DataError

SUMMARY = "eval/summary.json"
OUTPUTS = ["report.md", "report.html"]
OPTIONAL_INPUTS = [
    "teachers.json",
    "selection.parquet",
    "sft.jsonl",
    "curation.json",
    "student/training_log.json",
    "sweep/summary.json",
    "sweep/claims.json",
    "problems.parquet",
]
MISSING = "–"
CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 0.5rem 0; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: 0.4rem 0.6rem; margin: 0.2rem 0 0.6rem; }
details { margin: 0 0 0.6rem; }
"""


@dataclass
class Sample:
    """One shown answer or trace: labelled texts in full view, then the long ones collapsed (`<details>`)."""

    heading: str
    shown: list[tuple[str, str]]
    collapsed: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Section:
    """One heading of the report: a table, notes below it, plots (in HTML only), then shown samples."""

    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[tuple[str, bytes]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)


# Formatting


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def _points(value: float | None) -> str:
    return MISSING if value is None else f"{value:+.1f}"


def _fmt(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


# Headline comparison


def _pct_ci(value: float | None, ci: list[float] | None) -> str:
    """A rate with its interval on a second line (a space in Markdown and HTML)."""
    if value is None or ci is None:
        return _pct(value)
    return f"{_pct(value)}\n[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _points_ci(delta: dict[str, Any] | None, key: str = "accuracy") -> str:
    """A difference in percentage points with its paired interval."""
    if not delta or delta.get(key) is None:
        return MISSING
    ci = delta.get(f"{key}_ci")
    value = _points(100 * delta[key])
    return value if ci is None else f"{value}\n[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _number_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None or ci is None:
        return _fmt(value)
    return f"{value:,.1f}\n[{ci[0]:,.1f}, {ci[1]:,.1f}]"


def _benchmarks(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(benchmark, group label) pairs: in-domain first, then generalisation, then out-of-domain."""
    return [(name, GROUP_LABELS[group]) for group in GROUPS for name in summary.get(group, [])]


def _lines(summary: dict[str, Any]) -> list[tuple[str, str, str, dict[str, dict[str, Any]]]]:
    """(label, group, k, scores per student) of each benchmark, then of each group's mean ("mean")."""
    students = list(summary["students"])
    settings = summary.get("benchmarks", {})
    lines = [
        (
            name,
            group,
            _fmt(settings.get(name, {}).get("k")),
            {s: summary["students"][s].get(name, {}) for s in students},
        )
        for name, group in _benchmarks(summary)
    ]
    for key in GROUPS:
        if summary.get(key) and summary.get("groups"):
            lines.append(
                ("mean", GROUP_LABELS[key], MISSING, {s: summary["groups"].get(s, {}).get(key, {}) for s in students})
            )
    return lines


def _comparison(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the headline table, shared by the terminal, Markdown and HTML."""
    students = list(summary["students"])
    others = students[1:]
    headers = [
        "benchmark",
        "group",
        "k",
        *(f"{name} avg@k" for name in students),
        *(f"{name} no answer" for name in students),
        *(f"Δ {name} (pp)" for name in others),
    ]
    rows = []
    for label, group, k, scores in _lines(summary):
        row = [
            label,
            group,
            k,
            *(_pct_ci(scores[name].get("accuracy"), scores[name].get("accuracy_ci")) for name in students),
            *(_pct(scores[name].get("no_answer_rate")) for name in students),
        ]
        rows.append(row + [_points_ci(scores[name].get("delta")) for name in others])
    return headers, rows


def _comparison_title(summary: dict[str, Any]) -> str:
    students = list(summary["students"])
    title = "Students per benchmark"
    if "confidence" in summary:
        title += f" (avg@k with {100 * summary['confidence']:.0f}% bootstrap intervals over problems"
        title += f"; Δ against {students[0]}, paired)" if len(students) > 1 else ")"
    return title


def comparison_table(summary: dict[str, Any]) -> Table:
    """The headline comparison as a rich Table; a Δ is green or red by its sign, bold when its interval excludes 0."""
    headers, rows = _comparison(summary)
    students = list(summary["students"])
    first_delta = 3 + 2 * len(students)
    table = Table(title=_comparison_title(summary))
    for header in headers:
        table.add_column(header, justify="left" if header in ("benchmark", "group") else "right")
    for (_, _, _, scores), row in zip(_lines(summary), rows, strict=False):
        cells = [Text(cell) for cell in row]
        for offset, name in enumerate(students[1:]):
            delta = scores[name].get("delta") or {}
            value, ci = delta.get("accuracy"), delta.get("accuracy_ci")
            if value:
                significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
                cells[first_delta + offset].stylize(
                    ("bold " if significant else "") + ("green" if value > 0 else "red")
                )
        table.add_row(*cells)
    return table


def _scores(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Every headline measure of every student on every benchmark, each with its interval."""
    headers = ["student", "benchmark", "k", "avg@k", "pass@k", "maj@k", "no answer", "finished", "think", "mean tokens"]
    rows = []
    for student, benchmarks in summary["students"].items():
        for name, _ in _benchmarks(summary):
            scores = benchmarks.get(name, {})
            rows.append(
                [student, name, _fmt(scores.get("k"))]
                + [
                    _pct_ci(scores.get(key), scores.get(f"{key}_ci"))
                    for key in ("accuracy", "pass_at_k", "maj_at_k", "no_answer_rate", "completion_rate", "think_rate")
                ]
                + [_number_ci(scores.get("mean_tokens"), scores.get("mean_tokens_ci"))]
            )
    return headers, rows


def scores_table(summary: dict[str, Any]) -> Table:
    """The per-student detail (pass@k, maj@k, format, tokens) as a rich Table, printed after the comparison."""
    headers, rows = _scores(summary)
    table = Table(title="Scores per student (k samples per problem; maj@k for answer tasks)")
    for header in headers:
        table.add_column(header, justify="left" if header in ("student", "benchmark") else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _accuracy_plot(summary: dict[str, Any]) -> bytes:
    """Grouped bars: avg@k per benchmark, one bar per student, with its bootstrap interval."""
    figure, axes = _figure()
    benchmarks = [name for name, _ in _benchmarks(summary)]
    students = list(summary["students"])
    width = 0.8 / len(students)
    for index, student in enumerate(students):
        scores = [summary["students"][student].get(name, {}) for name in benchmarks]
        heights = [100 * (score.get("accuracy") or 0.0) for score in scores]
        errors = [
            [
                100 * (score["accuracy"] - score["accuracy_ci"][0]) if "accuracy_ci" in score else 0.0
                for score in scores
            ],
            [
                100 * (score["accuracy_ci"][1] - score["accuracy"]) if "accuracy_ci" in score else 0.0
                for score in scores
            ],
        ]
        axes.bar(
            [x + index * width for x in range(len(benchmarks))], heights, width, yerr=errors, capsize=3, label=student
        )
    axes.set_xticks([x + width * (len(students) - 1) / 2 for x in range(len(benchmarks))], benchmarks)
    axes.set_ylabel("avg@k (%)")
    axes.set_ylim(0, 100)
    axes.legend()
    return _png(figure)


def _comparison_section(summary: dict[str, Any]) -> Section:
    headers, rows = _comparison(summary)
    notes = [
        "avg@k: accuracy averaged over the k samples of each problem, then over problems. "
        "A group's mean weighs each of its benchmarks once. No answer: the share of samples from which no final "
        "answer (or no program) could be read, format failures apart from wrong answers.",
        *(f"Warning: {text}" for text in summary.get("warnings", [])),
    ]
    return Section(
        _comparison_title(summary), headers, rows, notes, plots=[("avg@k per benchmark", _accuracy_plot(summary))]
    )


def _scores_section(summary: dict[str, Any]) -> Section:
    headers, rows = _scores(summary)
    notes = [
        "pass@k: the unbiased estimator of Chen et al. (2021) with k = all samples; maj@k: the most frequent extracted "
        "answer is right; finished: stopped before the token limit; think: opened and closed a think block."
    ]
    return Section("Scores per student", headers, rows, notes)


def _breakdown_section(summary: dict[str, Any]) -> Section | None:
    rows = [
        [
            student,
            benchmark,
            field.removeprefix("by_"),
            value,
            _fmt(scores["problems"]),
            _pct(scores["accuracy"]),
            _pct(scores["pass_at_k"]),
        ]
        for student, benchmarks in summary["students"].items()
        for benchmark, _ in _benchmarks(summary)
        for field in ("by_difficulty", "by_subject")
        for value, scores in benchmarks.get(benchmark, {}).get(field, {}).items()
    ]
    if not rows:
        return None
    return Section(
        "Scores by difficulty and subject", ["student", "benchmark", "by", "value", "problems", "avg@k", "pass@k"], rows
    )


# Other sections, each built only when its file exists


def _share_as_points(value: float | None) -> str:
    return _points(None if value is None else 100 * value)


# Columns of the teachers table shown only when some teacher has the measure.
TEACHER_EVIDENCE = (
    ("student NLL/token", "student_nll", _fmt),
    ("rank–surprisal ratio", "rsr", _fmt),
    ("local NLL/token", "local_nll", _fmt),
    ("proxy accuracy", "proxy_accuracy", _pct),
    ("proxy gain (pp)", "proxy_gain", _share_as_points),
    ("proxy gain 95% low (pp)", "proxy_gain_low", _share_as_points),
    ("proxy gain 95% high (pp)", "proxy_gain_high", _share_as_points),
    ("length CV", "length_cv", _fmt),
    ("diversity", "diversity", _fmt),
)


# Panels of the teacher chart: (title, field, scale to the axis unit, field of the low and high interval ends).
TEACHER_BARS = (
    ("accuracy (%)", "accuracy", 100.0, None),
    ("student NLL/token", "student_nll", 1.0, None),
    ("rank–surprisal ratio", "rsr", 1.0, None),
    ("local NLL/token", "local_nll", 1.0, None),
    ("proxy gain (pp, 95% interval)", "proxy_gain", 100.0, ("proxy_gain_low", "proxy_gain_high")),
)


def teacher_bars(teachers: dict[str, Any]) -> list[tuple[str, dict[str, tuple[float, float, float]]]]:
    """Each measure some teacher has, as (panel title, {teacher: (value, low, high)}) in the axis unit.

    Without an interval low and high equal the value; a teacher without the measure is left out of its panel.
    """
    scores = teachers.get("teachers", {})
    panels = []
    for title, key, scale, interval in TEACHER_BARS:
        bars = {}
        for name, score in scores.items():
            if score.get(key) is None:
                continue
            value = scale * score[key]
            ends = [score.get(end) for end in interval] if interval else [None, None]
            low, high = (scale * end if end is not None else value for end in ends)
            bars[name] = (value, low, high)
        if bars:
            panels.append((title, bars))
    return panels


def _teachers_plot(panels: list[tuple[str, dict[str, tuple[float, float, float]]]]) -> bytes:
    figure, axes_list = _figures(len(panels))
    for axes, (title, bars) in zip(axes_list, panels, strict=True):
        values = [value for value, _, _ in bars.values()]
        errors = [[v - low for v, low, _ in bars.values()], [high - v for v, _, high in bars.values()]]
        # Error bars only on panels with intervals: a zero-length bar cap would read as a measured spread of 0.
        interval = errors if any(any(side) for side in errors) else None
        axes.bar(range(len(bars)), values, 0.6, yerr=interval, capsize=3, color="#4c78a8")
        axes.set_xticks(range(len(bars)), list(bars), rotation=20)
        axes.set_title(title, fontsize=9)
        axes.axhline(0, color="#888", linewidth=0.5)
    return _png(figure)


def _teachers_section(teachers: dict[str, Any]) -> Section:
    scores = teachers.get("teachers", {})
    domains = sorted({domain for score in scores.values() for domain in score.get("by_domain", {})})
    evidence = [
        (title, key, fmt)
        for title, key, fmt in TEACHER_EVIDENCE
        if any(score.get(key) is not None for score in scores.values())
    ]
    headers = [
        "teacher",
        "rollouts",
        "accuracy",
        "mean completion tokens",
        *(f"{d} accuracy" for d in domains),
        *(title for title, _, _ in evidence),
        "chosen",
    ]
    rows = [
        [
            name,
            _fmt(score.get("rollouts")),
            _pct(score.get("accuracy")),
            _fmt(score.get("mean_completion_tokens")),
            *(_pct(score.get("by_domain", {}).get(domain)) for domain in domains),
            *(fmt(score.get(key)) for _, key, fmt in evidence),
            "yes" if name in teachers.get("chosen", []) else "",
        ]
        for name, score in sorted(scores.items(), key=lambda item: -(item[1].get("accuracy") or 0.0))
    ]
    notes = [f"Rule: {teachers.get('rule', MISSING)}. {teachers.get('why', '')}".strip()]
    proxy = teachers.get("proxy")
    cost = teachers.get("student_signals")
    if cost:
        seconds = ", ".join(f"{name} {value:.1f} s" for name, value in cost["seconds"].items())
        notes.append(
            f"Student signals on {cost['traces']:,} traces ({cost['sample_per_teacher']} per teacher on the same "
            f"problems for the table; lower is better for all three): {seconds} ({cost['note']})."
        )
    if proxy:
        notes.append(
            f"Proxy students: {proxy['training_examples']} traces per teacher on the same problems, seeds "
            f"{', '.join(map(str, proxy.get('seeds', [])))}, about {proxy.get('planned_steps', MISSING)} steps each, "
            f"answering {proxy['validation_problems']} held-out training-pool problems; the base scored "
            f"{_pct(proxy['base']['overall'])}; gains are means over seeds with 95% bootstrap intervals over problems."
        )
    panels = teacher_bars(teachers)
    plots = [("evidence per teacher", _teachers_plot(panels))] if panels else []
    return Section("Teachers", headers, rows, notes, plots=plots)


def _curation_section(selection: list[dict[str, Any]] | None, sft: list[dict[str, Any]] | None) -> Section:
    section = Section("Curation funnel")
    if selection is not None:
        counts = Counter((row["kept"], row["why"]) for row in selection)
        section.headers = ["why", "outcome", "rollouts"]
        section.rows = [
            [why, "kept" if kept else "dropped", _fmt(n)]
            for (kept, why), n in sorted(counts.items(), key=lambda item: (not item[0][0], -item[1], item[0][1]))
        ]
        kept = sum(n for (is_kept, _), n in counts.items() if is_kept)
        section.notes.append(f"{len(selection):,} verified rollouts: {kept:,} kept, {len(selection) - kept:,} dropped.")
    if sft is not None:
        by_teacher = Counter(row.get("teacher", MISSING) for row in sft)
        detail = ", ".join(f"{teacher} {n:,}" for teacher, n in by_teacher.most_common())
        section.notes.append(f"sft.jsonl holds {len(sft):,} training examples ({detail or 'none'}).")
    return section


def _loss_plot(points: list[tuple[float, float]]) -> bytes:
    figure, axes = _figure()
    axes.plot([step for step, _ in points], [loss for _, loss in points], marker=".")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    return _png(figure)


def _training_section(log: dict[str, Any]) -> Section:
    keys = ["steps", "train_loss", "seconds", "legs", "examples", "tokens_per_second", "parameters", "resumed_from"]
    rows = [[key.replace("_", " "), _fmt(log.get(key))] for key in keys if key in log]
    points = [
        (entry["step"], entry["loss"]) for entry in log.get("log_history", []) if "loss" in entry and "step" in entry
    ]
    plots = [("training loss per step", _loss_plot(points))] if points else []
    return Section("Training", ["measure", "value"], rows, plots=plots)


def _started(entry: dict[str, Any]) -> str:
    """When a stage started: a finished entry keeps only `finished_at` and `seconds`, so it is their difference."""
    if "started_at" in entry:
        return entry["started_at"]
    if "finished_at" not in entry or entry.get("seconds") is None:
        return MISSING
    finished = datetime.fromisoformat(entry["finished_at"])
    return (finished - timedelta(seconds=entry["seconds"])).isoformat(timespec="seconds")


def _ordered_stages(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Stages in pipeline order (a rerun of an early stage does not move it down), others after them as they started.

    The report's own entry says "running" while this runs, so it is left out.
    """
    # A stage may not import the pipeline; the recipe's sections stand in the same order as its stages.
    order = list(Recipe.model_fields)
    stages = [(name, entry) for name, entry in manifest["stages"].items() if name != "report"]
    return sorted(
        stages, key=lambda item: (order.index(item[0]) if item[0] in order else len(order), _started(item[1]))
    )


def _timings_section(stages: list[tuple[str, dict[str, Any]]], run_dir: Path) -> Section:
    states = {name: stage_state(run_dir, entry) for name, entry in stages}
    rows = [
        [
            name,
            states[name],
            _started(entry),
            entry.get("failed_at" if states[name] == "failed" else "finished_at", MISSING),
            _fmt(entry.get("seconds")),
            ", ".join(f"{key} {_fmt(value)}" for key, value in entry.get("counts", {}).items()) or MISSING,
        ]
        for name, entry in stages
    ]
    total = sum(entry.get("seconds", 0) for _, entry in stages)
    notes = [f"Total: {total:,.1f} s."]
    for name, entry in stages:
        if states[name] == "failed":
            kept = " Its earlier finished outputs are kept and shown here." if entry.get("restored") else ""
            notes.append(f"Stage {name} failed at {entry.get('failed_at', MISSING)}: {entry.get('error')}.{kept}")
        elif states[name] == "stale":
            notes.append(f"Stage {name} is stale: an input changed since it ran, so its results describe old inputs.")
    notes.append(
        "Stages in pipeline order. Started: a finished stage's finish less its seconds (the manifest keeps no start "
        "once a stage is done); finished is when a failed stage failed."
    )
    return Section("Stages", ["stage", "status", "started", "finished (or failed)", "seconds", "counts"], rows, notes)


# Curation steps and sweeps (files written by `curate` and `sweep`)


def _funnel_section(curation: dict[str, Any]) -> Section:
    rows = [
        [
            step["step"],
            _fmt(step["in"]),
            _fmt(step["dropped"]),
            "; ".join(f"{why}: {n:,}" for why, n in step["reasons"].items()) or MISSING,
        ]
        for step in curation["funnel"]
    ]
    notes = [f"{curation['rollouts']:,} rollouts in, {curation['kept']:,} kept."]
    hits = curation.get("decontamination", [])
    if hits:
        by_benchmark = Counter(hit["benchmark"] for hit in hits)
        notes.append(
            "Decontamination hits (problems): "
            + ", ".join(f"{name} {n:,}" for name, n in by_benchmark.most_common())
            + "."
        )
    return Section(
        "Curation steps",
        ["step", "in", "dropped", "why"],
        rows,
        notes,
        plots=[("before and after curation", _histogram_plot(curation["histograms"]))],
    )


def _histogram_plot(histograms: dict[str, Any]) -> bytes:
    """Trace length and difficulty level, all verified rollouts against the kept ones."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    length_axes, level_axes = figure.subplots(1, 2)
    length, levels = histograms["length"], histograms["difficulty"]
    starts = length["edges"][:-1]
    width = length["edges"][1] - length["edges"][0]
    for axes, x, data, bar_width in (
        (length_axes, starts, length, width * 0.4),
        (level_axes, levels["levels"], levels, 0.4),
    ):
        axes.bar([v - bar_width / 2 for v in x], data["before"], bar_width, label="before")
        axes.bar([v + bar_width / 2 for v in x], data["after"], bar_width, label="kept")
        axes.legend()
    length_axes.set_xlabel("trace length (teacher tokens)")
    level_axes.set_xlabel("difficulty level (0 easiest)")
    length_axes.set_ylabel("rollouts")
    return _png(figure)


def _sweep_plot(groups: list[dict[str, Any]]) -> bytes:
    figure, axes = _figure()
    for offset, measure in ((-0.2, "in_domain"), (0.2, "out_of_domain")):
        present = [(index, g[measure]) for index, g in enumerate(groups) if g[measure]]
        axes.bar(
            [i + offset for i, _ in present],
            [100 * m["mean"] for _, m in present],
            0.4,
            yerr=[100 * m["std"] for _, m in present],
            capsize=3,
            label=measure.replace("_", "-"),
        )
    axes.set_xticks(range(len(groups)), [g["group"] for g in groups], rotation=15)
    axes.set_ylabel("distilled accuracy (%, mean ± sd over seeds)")
    axes.legend()
    return _png(figure)


def _sweep_section(summary: dict[str, Any]) -> Section:
    def spread(value: dict[str, float] | None) -> str:
        return MISSING if not value else f"{100 * value['mean']:.1f} ± {100 * value['std']:.1f}"

    benchmarks = list(summary["groups"][0]["by_benchmark"]) if summary["groups"] else []
    rows = [
        [
            g["group"],
            str(len(g["seeds"])),
            f"{g['examples']['mean']:,.0f}",
            spread(g["in_domain"]),
            spread(g["out_of_domain"]),
            *(spread(g["by_benchmark"][b]) for b in benchmarks),
        ]
        for g in summary["groups"]
    ]
    base = ", ".join(f"{bench} {_pct(acc)}" for bench, acc in summary.get("base", {}).items())
    notes = [f"Accuracy in %, mean ± standard deviation over seeds; the base student scores {base}."]
    headers = ["cells", "seeds", "examples", "in-domain", "out-of-domain", *benchmarks]
    return Section(
        "Sweep",
        headers,
        rows,
        notes,
        plots=[("sweep accuracy", _sweep_plot(summary["groups"]))] if summary["groups"] else [],
    )


def curation_and_sweep_sections(run_dir: Path) -> list[Section]:
    """The curation funnel and histograms (curation.json) and the sweep table (sweep/summary.json), when present."""
    sections = []
    if (run_dir / "curation.json").exists():
        sections.append(_funnel_section(_read_json(run_dir / "curation.json")))
    if (run_dir / "sweep/summary.json").exists():
        sections.append(_sweep_section(_read_json(run_dir / "sweep/summary.json")))
    if (run_dir / "sweep/claims.json").exists():
        sections.append(_claims_section(_read_json(run_dir / "sweep/claims.json"), run_dir))
    return sections


def _claims_section(claims: list[dict[str, Any]], run_dir: Path) -> Section:
    """The claims the sweep tests: every part's effect, interval and verdict, the reasons, and their figures."""
    # Imported here: the claims' analysis brings pandas and scipy, which a report without claims never needs.

    rows = [
        [
            claim["id"] if index == 0 else "",
            part["effect"],
            effect_text(part),
            f"{part['margin']:g}",
            part["outcome"],
            claim["verdict"] if index == 0 else "",
        ]
        for claim in claims
        for index, part in enumerate(claim["parts"])
    ]
    notes = [f"{claim['id']}, {part['effect']}: {part['reason']}" for claim in claims for part in claim["parts"]]
    plots = [
        (claim["id"], (run_dir / claim["figure"]).read_bytes())
        for claim in claims
        if claim.get("figure") and (run_dir / claim["figure"]).exists()
    ]
    headers = ["claim", "effect A − B", "estimate [95 % interval]", "margin", "part verdict", "claim verdict"]
    return Section("Claims", headers, rows, notes, plots=plots)


# Answers and traces, drawn from the evaluation's and the curation's files


def _truncate(text: str | None, limit: int) -> str:
    """`text` cut to `limit` characters, saying so, so that one runaway completion cannot bury the page."""
    text = text or ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [cut: {len(text):,} characters, the first {limit:,} shown]"


def _draw(rows: list[dict[str, Any]], n: int, key: str, seed: int) -> list[dict[str, Any]]:
    """`n` rows drawn by a generator seeded with the seed and `key`, so each list gets its own fixed draw."""
    return random.Random(f"{seed}:{key}").sample(rows, min(n, len(rows)))


def _verdict(row: dict[str, Any]) -> str:
    if row.get("correct") is None:
        return "unverifiable"
    verdict = "right" if row["correct"] else "wrong"
    details = [row["verify_error"]] if row.get("verify_error") else []
    if row.get("tests_total"):
        details.append(f"{row.get('tests_passed') or 0}/{row['tests_total']} tests")
    return verdict + (f" ({', '.join(details)})" if details else "")


def _answer_sample(row: dict[str, Any], prompt: str | None, limit: int) -> Sample:
    reasoning, answer = split_think(row.get("response") or "")
    return Sample(
        f"{row['student']} · {'right' if row.get('correct') else 'wrong'} · problem {row['problem_id']}"
        f" sample {row.get('sample_index', 0)}",
        [
            ("problem", _truncate(prompt if prompt is not None else "(not in problems.parquet)", limit)),
            ("answer", _truncate(answer, limit)),
            ("extracted", _truncate(_fmt(row.get("extracted")), limit)),
            ("verdict", _verdict(row)),
        ],
        [("reasoning", _truncate(reasoning, limit))] if reasoning else [],
    )


def _answers_section(
    benchmark: str, rows: list[dict[str, Any]], prompts: dict[str, str], options: ReportOptions
) -> Section:
    """`options.answers` right and as many wrong answers of each student on one benchmark, in a seeded draw."""
    students = _students(rows)
    # Sorted so that the draw does not depend on the order in which answers arrived.
    rows = sorted(rows, key=lambda row: (row["problem_id"], row.get("sample_index", 0)))
    section = Section(f"Sampled answers: {benchmark}")
    section.notes.append(
        f"{options.answers} right and {options.answers} wrong answers of each student (unverifiable ones count "
        f"as wrong), drawn with seed {options.seed}; texts longer than {options.max_chars:,} characters are cut."
    )
    for student in students:
        for right in (True, False):
            pool = [row for row in rows if row["student"] == student and bool(row.get("correct")) is right]
            drawn = _draw(pool, options.answers, f"{benchmark}:{student}:{right}", options.seed)
            if len(drawn) < options.answers:
                kind = "right" if right else "wrong"
                section.notes.append(f"{student} has {len(drawn)} {kind} answers on {benchmark}.")
            section.samples += [_answer_sample(row, prompts.get(row["problem_id"]), options.max_chars) for row in drawn]
    return section


def _traces_section(sft: list[dict[str, Any]], options: ReportOptions) -> Section:
    """A few training examples of each teacher, as the student saw them in sft.jsonl."""
    section = Section("Sampled training traces")
    section.notes.append(
        f"{options.traces_per_teacher} example(s) of each teacher from sft.jsonl, drawn with seed {options.seed}; "
        f"texts longer than {options.max_chars:,} characters are cut."
    )
    by_teacher: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sft:
        by_teacher[str(row.get("teacher", MISSING))].append(row)
    for teacher, rows in sorted(by_teacher.items()):
        for row in _draw(rows, options.traces_per_teacher, f"sft:{teacher}", options.seed):
            turns = {message["role"]: message["content"] for message in row.get("messages", [])}
            reasoning, answer = split_think(turns.get("assistant", ""))
            section.samples.append(
                Sample(
                    f"{teacher} · problem {row.get('problem_id', MISSING)} · {row.get('why', MISSING)}",
                    [
                        ("problem", _truncate(turns.get("user"), options.max_chars)),
                        ("answer", _truncate(answer, options.max_chars)),
                    ],
                    [("reasoning", _truncate(reasoning, options.max_chars))] if reasoning else [],
                )
            )
    return section


# Lengths and difficulty of the students' answers (eval/BENCH.parquet)


def _figures(count: int) -> tuple[Any, list[Any]]:
    """A figure with `count` side-by-side panels (the same canvas as `_figure`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(max(4.5, 3.5 * count), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, count, squeeze=False)[0]
    return figure, list(axes)


def _students(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(row["student"] for row in rows))


def completion_lengths(
    summary: dict[str, Any], answers: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, list[int]]]:
    """{group label: {student: completion tokens of every answer}} over the group's benchmarks.

    Answers scored by log-likelihood generate nothing, so their lengths would only pile up at 0: they are left out.
    """
    lengths: dict[str, dict[str, list[int]]] = {}
    for name, group in _benchmarks(summary):
        for row in answers.get(name, []):
            if row.get("tokens") is not None and row.get("loglikelihoods") is None:
                lengths.setdefault(group, {}).setdefault(row["student"], []).append(int(row["tokens"]))
    return lengths


def _lengths_plot(lengths: dict[str, dict[str, list[int]]]) -> bytes:
    import numpy as np

    figure, panels = _figures(len(lengths))
    for axes, (group, by_student) in zip(panels, lengths.items(), strict=True):
        edges = np.histogram_bin_edges([t for tokens in by_student.values() for t in tokens], bins=20)
        for student, tokens in by_student.items():
            axes.hist(tokens, bins=edges, alpha=0.55, label=student)
        axes.set_title(group)
        axes.set_xlabel("completion tokens")
        axes.legend()
    panels[0].set_ylabel("answers")
    return _png(figure)


def _lengths_section(lengths: dict[str, dict[str, list[int]]]) -> Section:
    rows = [
        [
            group,
            student,
            _fmt(len(tokens)),
            _fmt(statistics.median(tokens)),
            f"{statistics.mean(tokens):,.1f}",
            _fmt(max(tokens)),
        ]
        for group, by_student in lengths.items()
        for student, tokens in by_student.items()
    ]
    return Section(
        "Answer lengths",
        ["group", "student", "answers", "median tokens", "mean tokens", "max tokens"],
        rows,
        [
            "Completion tokens of every generated answer (all samples) of each student, over each group's "
            "benchmarks; log-likelihood answers generate none and are left out."
        ],
        plots=[("completion tokens per student and group", _lengths_plot(lengths))],
    )


def _level(value: float) -> str:
    return f"{value:g}"


def difficulty_accuracy(rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[int, float]]]:
    """{difficulty level: {student: (answers, share right)}}, levels in increasing order.

    Rows without a difficulty are left out; levels are labels, so bars stand evenly spaced as categories.
    """
    counts: dict[float, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get("difficulty") is not None:
            counts[float(row["difficulty"])][row["student"]].append(bool(row.get("correct")))
    return {
        _level(level): {student: (len(v), sum(v) / len(v)) for student, v in by_student.items()}
        for level, by_student in sorted(counts.items())
    }


def _difficulty_plot(accuracy: dict[str, dict[str, dict[str, tuple[int, float]]]], students: list[str]) -> bytes:
    """Grouped bars per benchmark: levels as categories (evenly spaced, whatever their values), a bar per student."""
    figure, panels = _figures(len(accuracy))
    width = 0.8 / len(students)
    for axes, (benchmark, levels) in zip(panels, accuracy.items(), strict=True):
        for index, student in enumerate(students):
            axes.bar(
                [x + index * width for x in range(len(levels))],
                [100 * by_student.get(student, (0, 0.0))[1] for by_student in levels.values()],
                width,
                label=student,
            )
        axes.set_xticks([x + width * (len(students) - 1) / 2 for x in range(len(levels))], list(levels))
        axes.set_title(benchmark)
        axes.set_xlabel("difficulty")
        axes.set_ylim(0, 100)
    panels[0].set_ylabel("answers right (%)")
    panels[0].legend()
    return _png(figure)


def _difficulty_section(answers: dict[str, list[dict[str, Any]]], students: list[str]) -> Section | None:
    accuracy = {name: levels for name, rows in answers.items() if (levels := difficulty_accuracy(rows))}
    if not accuracy:
        return None
    rows = [
        [
            benchmark,
            level,
            *(_fmt(by_student.get(s, (0, 0.0))[0]) for s in students),
            *(_pct(by_student[s][1]) if s in by_student else MISSING for s in students),
        ]
        for benchmark, levels in accuracy.items()
        for level, by_student in levels.items()
    ]
    headers = ["benchmark", "difficulty", *(f"{s} answers" for s in students), *(f"{s} right" for s in students)]
    notes = ["Share of all answers (every sample) right at each difficulty level of the problem."]
    return Section(
        "Accuracy by difficulty level",
        headers,
        rows,
        notes,
        plots=[("accuracy per difficulty level", _difficulty_plot(accuracy, students))],
    )


def answer_sections(run_dir: Path, summary: dict[str, Any], options: ReportOptions) -> list[Section]:
    """Lengths, difficulty bars and sampled answers, from the eval/BENCH.parquet files that exist."""
    answers = {
        name: read_parquet(run_dir / f"eval/{name}.parquet")
        for name, _ in _benchmarks(summary)
        if (run_dir / f"eval/{name}.parquet").exists()
    }
    if not answers:
        return []
    students = _students([row for rows in answers.values() for row in rows])
    sections = []
    lengths = completion_lengths(summary, answers)
    sections += [_lengths_section(lengths)] if lengths else []
    difficulty = _difficulty_section(answers, students)
    sections += [difficulty] if difficulty else []
    if options.answers:
        problems = run_dir / "problems.parquet"
        prompts = {row["id"]: row["prompt"] for row in read_parquet(problems)} if problems.exists() else {}
        sections += [_answers_section(name, rows, prompts, options) for name, rows in answers.items()]
    return sections


# Reading the run directory


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno})") from exc


def _read_summary(path: Path) -> dict[str, Any]:
    summary = _read_json(path)
    if not isinstance(summary, dict) or not summary.get("students"):
        raise DataError(f"{path}: expected an object with a non-empty 'students' field")
    return summary


def _read_selection(path: Path) -> list[dict[str, Any]]:
    rows = read_parquet(path)
    require_columns(rows, ("kept", "why"), path)
    return rows


def build_sections(run_dir: Path, options: ReportOptions | None = None) -> list[Section]:
    """The report's sections, from whichever of the run directory's files exist."""
    run_dir = Path(run_dir)
    options = options or ReportOptions()
    sections: list[Section] = []
    # A sweep's parent directory has no evaluation of its own, only its cells'.
    if (run_dir / SUMMARY).exists() or not (run_dir / "sweep/summary.json").exists():
        summary = _read_summary(run_dir / SUMMARY)
        sections += [_comparison_section(summary), _scores_section(summary)]
        breakdown = _breakdown_section(summary)
        sections += [breakdown] if breakdown else []
        sections += answer_sections(run_dir, summary, options)
    sections += curation_and_sweep_sections(run_dir)
    if (run_dir / "teachers.json").exists():
        sections.append(_teachers_section(_read_json(run_dir / "teachers.json")))
    selection, sft = run_dir / "selection.parquet", run_dir / "sft.jsonl"
    if selection.exists() or sft.exists():
        sections.append(
            _curation_section(
                _read_selection(selection) if selection.exists() else None, read_jsonl(sft) if sft.exists() else None
            )
        )
    if sft.exists() and options.traces_per_teacher:
        sections.append(_traces_section(read_jsonl(sft), options))
    if (run_dir / "student/training_log.json").exists():
        sections.append(_training_section(_read_json(run_dir / "student/training_log.json")))
    stages = _ordered_stages(read_manifest(run_dir))
    if stages:
        sections.append(_timings_section(stages, Path(run_dir)))
    return sections


# Rendering


def _figure() -> tuple[Any, Any]:
    # Imported here so the CLI can print comparison_table without paying matplotlib's import;
    # an explicit Agg canvas needs no display and changes no global backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.5), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _md_cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, sections: list[Section]) -> str:
    """The report as Markdown tables; plots are left to the HTML version."""
    lines = [f"# {_md_cell(title)}", ""]
    for section in sections:
        lines += [f"## {_md_cell(section.title)}", ""]
        if section.headers:
            lines.append("| " + " | ".join(_md_cell(h) for h in section.headers) + " |")
            lines.append("|" + "|".join("---" for _ in section.headers) + "|")
            lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in section.rows]
            lines.append("")
        lines += [line for note in section.notes for line in (_md_cell(note), "")]
        lines += ["*Plots: see report.html.*", ""] if section.plots else []
        lines += [line for sample in section.samples for line in _md_sample(sample)]
    return "\n".join(lines)


def _md_sample(sample: Sample) -> list[str]:
    """A sample as HTML blocks inside the Markdown (escaped like the HTML page), so no text can break its layout."""
    lines = [f"### {_md_cell(sample.heading)}", ""]
    for label, text in sample.shown:
        lines += [f"**{_md_cell(label)}**", "", f"<pre>{html.escape(text)}</pre>", ""]
    for label, text in sample.collapsed:
        lines += [f"<details><summary>{html.escape(label)}</summary>", "", f"<pre>{html.escape(text)}</pre>", ""]
        lines += ["</details>", ""]
    return lines


def _html_sample(sample: Sample) -> str:
    shown = "".join(f"<p><b>{html.escape(label)}</b></p><pre>{html.escape(text)}</pre>" for label, text in sample.shown)
    collapsed = "".join(
        f"<details><summary>{html.escape(label)}</summary><pre>{html.escape(text)}</pre></details>"
        for label, text in sample.collapsed
    )
    return f"<h3>{html.escape(sample.heading)}</h3>{shown}{collapsed}"


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(title: str, sections: list[Section]) -> str:
    """The report as one self-contained HTML page: inline CSS, plots embedded as base64 PNGs."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [_html_table(section.headers, section.rows)] if section.headers else []
        parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        parts += [
            f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            for alt, png in section.plots
        ]
        parts += [_html_sample(sample) for sample in section.samples]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _write_text(text: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def run(options: ReportOptions, run_dir: Path, ctx: StageContext = DEFAULT_CONTEXT) -> dict[str, Any]:
    """Write `report.md` and `report.html` from the run directory's results."""

    def work() -> dict[str, Any]:
        sections = build_sections(run_dir, options)
        _write_text(render_markdown(options.title, sections), Path(run_dir) / OUTPUTS[0])
        _write_text(render_html(options.title, sections), Path(run_dir) / OUTPUTS[1])
        return {"sections": len(sections)}

    # Optional files count as inputs when present, so that a changed training log or teacher
    # choice makes the report stale even when the evaluation summary is unchanged.
    # A sweep's parent run has no evaluation of its own: its sweep summary stands in.
    present = [name for name in OPTIONAL_INPUTS if (Path(run_dir) / name).exists()]
    present += sorted(path.relative_to(run_dir).as_posix() for path in Path(run_dir).glob("eval/*.parquet"))
    sweep_only = not (Path(run_dir) / SUMMARY).exists() and "sweep/summary.json" in present
    inputs = present if sweep_only else [SUMMARY, *present]
    return run_stage(run_dir, "report", options, inputs, OUTPUTS, work, ctx)
