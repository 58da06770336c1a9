"""The sweep engine: upstream stages shared by the cells whose overrides they read, resume cell by cell,
cells in parallel (`--jobs`) and one command per cell for a scheduler (`--print-commands`, `--cell`)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from helpers import tiny_recipe_dict
from rdistill.cli import app
from rdistill.config import Recipe, SweepOptions
from rdistill.data.manifest import read_manifest
from rdistill.sweep import (
    Cell,
    cell_recipe,
    cells,
    link_shared_files,
    run_sweep,
    upstream_dir,
    upstream_label,
    upstream_runs,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEACHER_GRID = {"grid": {"teachers.choose": ["all", "accuracy"]}}
CELLS = ["choose=all", "choose=accuracy"]


def teacher_grid_raw(run_dir: Path) -> dict:
    """The tiny recipe swept over the teacher rule: keep both teachers, or the more accurate one."""
    raw = tiny_recipe_dict(run_dir)
    raw["teachers"] = {"keep": 1}
    raw["curate"] = {"budget": 30}
    raw["evaluate"]["sampling"]["max_tokens"] = 24
    raw["sweep"] = TEACHER_GRID
    return raw


def recipe_file(raw: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_torch_thread) -> Path:
    """The teacher-rule sweep run uninterrupted, one cell at a time: what the other ways of running it must match."""
    return run_sweep(Recipe.model_validate(teacher_grid_raw(tmp_path_factory.mktemp("reference") / "run")))


def summary_of(parent: Path) -> dict:
    return json.loads((parent / "sweep" / "summary.json").read_text())


def test_each_upstream_stage_runs_once_per_set_of_the_overrides_it_reads():
    grid = cells(SweepOptions(grid={"teachers.choose": ["all", "accuracy"], "curate.budget": [10, 20]}))
    runs = upstream_runs(grid)
    assert [(run.key, run.stages) for run in runs] == [
        ((), ("problems", "base", "generate", "verify")),
        ((("teachers.choose", "all"),), ("teachers",)),
        ((("teachers.choose", "accuracy"),), ("teachers",)),
    ]
    generate = upstream_runs(cells(SweepOptions(grid={"generate.samples_per_problem": [1, 2]})))
    assert [(run.key, run.stages) for run in generate] == [
        ((), ("problems", "base")),
        ((("generate.samples_per_problem", 1),), ("generate", "verify", "teachers")),
        ((("generate.samples_per_problem", 2),), ("generate", "verify", "teachers")),
    ]
    base = upstream_runs(cells(SweepOptions(grid={"base.micro.base_epochs": [1.0]})))
    assert [(run.key, run.stages) for run in base] == [
        ((), ("problems", "generate", "verify")),
        ((("base.micro.base_epochs", 1.0),), ("base", "teachers")),
    ]
    problems = upstream_runs(cells(SweepOptions(variants={"p": {"problems.micro.math": 12, "teachers.keep": 2}})))
    assert [(run.key, run.stages) for run in problems] == [
        ((), ("base",)),
        ((("problems.micro.math", 12),), ("problems", "generate", "verify")),
        ((("problems.micro.math", 12), ("teachers.keep", 2)), ("teachers",)),
    ]
    assert upstream_runs(cells(SweepOptions(grid={"curate.budget": [10, 20]}, seeds=[0, 1]))) == [
        upstream_runs(cells(SweepOptions(seeds=[0])))[0]
    ] and upstream_runs(cells(SweepOptions(seeds=[0])))[0].stages == (
        "problems",
        "base",
        "generate",
        "verify",
        "teachers",
    )
    # Labels are deterministic and never collide, even where the readable part does.
    assert upstream_label((("curate.x", "a b"),)) == upstream_label((("curate.x", "a b"),))
    assert upstream_label((("curate.x", "a b"),)) != upstream_label((("curate.x", "a_b"),))


def test_a_cell_may_vary_upstream_keys_and_links_the_files_of_its_own_key(tmp_path):
    cell = Cell("c", (("problems.micro.math", 12), ("teachers.keep", 2)), seed=3)
    sub = cell_recipe(Recipe(), cell, tmp_path)
    assert sub.problems.micro.math == 12 and sub.teachers.keep == 2 and sub.curate.seed == sub.train.sft.seed == 3
    assert sub.generate == Recipe().generate, "a seed never reaches upstream"
    link_shared_files(tmp_path, cell, tmp_path / "sweep" / "c")
    problems_dir = upstream_dir(tmp_path, (("problems.micro.math", 12),))
    teachers_dir = upstream_dir(tmp_path, cell.overrides)
    targets = {name: (tmp_path / "sweep" / "c" / name).resolve() for name in ("problems.parquet", "base.json")}
    assert targets == {"problems.parquet": problems_dir / "problems.parquet", "base.json": tmp_path / "base.json"}
    assert (tmp_path / "sweep" / "c" / "teachers.json").resolve() == teachers_dir / "teachers.json"
    # A link left by an earlier key is re-pointed, never served stale.
    other = Cell("c", (("teachers.keep", 2),), seed=3)
    link_shared_files(tmp_path, other, tmp_path / "sweep" / "c")
    assert (tmp_path / "sweep" / "c" / "problems.parquet").resolve() == tmp_path / "problems.parquet"


def test_a_generate_grid_gets_one_upstream_directory_per_value_on_the_parents_problems(tmp_path):
    raw = tiny_recipe_dict(tmp_path / "run")
    raw["sweep"] = {"grid": {"generate.samples_per_problem": [1, 2]}}
    parent = run_sweep(Recipe.model_validate(raw), upstream_only=True)
    dirs = [upstream_dir(parent, (("generate.samples_per_problem", n),)) for n in (1, 2)]
    assert len({d.name for d in dirs}) == 2 and all(d.parent == parent / "sweep" / "upstream" for d in dirs)
    counts = [read_manifest(d)["stages"]["verify"]["counts"]["rollouts"] for d in dirs]
    assert counts[1] == 2 * counts[0] > 0
    for directory in dirs:
        assert (directory / "problems.parquet").is_symlink()
        assert (directory / "problems.parquet").resolve() == (parent / "problems.parquet").resolve()
        assert set(read_manifest(directory)["stages"]) == {"generate", "verify", "teachers"}
    assert set(read_manifest(parent)["stages"]) == {"problems", "base"}, "the parent's own rollouts serve no cell"
    assert not (parent / "sweep" / "choose=all").exists()


def test_a_teacher_rule_grid_reruns_only_the_teachers_stage_on_shared_problems_and_verdicts(reference):
    cell_dirs = [reference / "sweep" / name for name in CELLS]
    chosen = [json.loads((d / "teachers.json").read_text())["chosen"] for d in cell_dirs]
    assert len(chosen[0]) == 2 and len(chosen[1]) == 1
    teachers_files = {(d / "teachers.json").resolve() for d in cell_dirs}
    assert len(teachers_files) == 2 and all("sweep/upstream/teachers.choose=" in str(f) for f in teachers_files)
    for name in ("problems.parquet", "verified.parquet", "base.json"):
        assert {(d / name).resolve() for d in cell_dirs} == {(reference / name).resolve()}
    assert "teachers" not in read_manifest(reference)["stages"] and "verify" in read_manifest(reference)["stages"]
    summary = summary_of(reference)
    assert [c["upstream"] for c in summary["cells"]] == [
        f.parent.relative_to(reference).as_posix() for f in [(d / "teachers.json").resolve() for d in cell_dirs]
    ]
    examples = [c["examples"] for c in summary["cells"]]
    assert examples[0] == 30 and examples[1] <= 30
    assert summary["cells"][0]["base_accuracy"] == summary["cells"][1]["base_accuracy"]
    assert all(p.is_symlink() for p in (cell_dirs[1] / "eval" / "parts" / "base").iterdir()), "base answered once"


@pytest.mark.slow
def test_two_jobs_give_the_same_results_as_one(reference, tmp_path, capsys):
    parent = run_sweep(Recipe.model_validate(teacher_grid_raw(tmp_path / "run")), jobs=2)
    assert "2 cells on 2 workers" in capsys.readouterr().out
    assert summary_of(parent) == summary_of(reference)
    second_base = list((parent / "sweep" / CELLS[1] / "eval" / "parts" / "base").iterdir())
    assert second_base and all(p.is_symlink() for p in second_base), "the base is answered once with two jobs too"


@pytest.mark.slow
def test_a_killed_sweep_resumes_cell_by_cell(reference, tmp_path):
    raw = teacher_grid_raw(tmp_path / "run")
    recipe = recipe_file(raw, tmp_path / "recipe.yaml")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "rdistill", "sweep", str(recipe)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first, second = (tmp_path / "run" / "sweep" / name for name in CELLS)
    deadline = time.monotonic() + 600
    while read_manifest(first)["stages"].get("evaluate", {}).get("status") != "done":
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before its first cell"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_manifest(second)["stages"].get("evaluate", {}).get("status") != "done"
    finished = {p: p.stat().st_mtime_ns for p in [first / "eval" / "summary.json", first / "sft.jsonl"]}
    entries = read_manifest(first)["stages"]
    result = CliRunner().invoke(app, ["sweep", str(recipe)])
    assert result.exit_code == 0, result.output
    assert result.output.count("skip evaluate") >= 1 and {p: p.stat().st_mtime_ns for p in finished} == finished
    assert read_manifest(first)["stages"] == entries, "the finished cell was skipped, not rerun"
    expected, resumed = summary_of(reference), summary_of(tmp_path / "run")
    assert [(c["name"], c["examples"]) for c in resumed["cells"]] == [
        (c["name"], c["examples"]) for c in expected["cells"]
    ]
    assert resumed["cells"][0] == expected["cells"][0] and resumed["base"] == expected["base"]


def test_print_commands_gives_one_runnable_command_per_cell_and_a_summary_command(tmp_path):
    raw = teacher_grid_raw(tmp_path / "run")
    recipe = recipe_file(raw, tmp_path / "recipe.yaml")
    printed = CliRunner().invoke(app, ["sweep", str(recipe), "--print-commands"])
    assert printed.exit_code == 0, printed.output
    commands = [shlex.split(line) for line in printed.output.splitlines() if line and not line.startswith("#")]
    base = ["rdistill", "sweep", str(recipe), "--run-dir", str(tmp_path / "run")]
    assert commands == [
        [*base, "--upstream"],
        *([*base, "--cell", name] for name in CELLS),
        base,
    ]
    assert not (tmp_path / "run").exists(), "printing runs nothing"
    unknown = CliRunner().invoke(app, ["sweep", str(recipe), "--cell", "nope"])
    assert unknown.exit_code == 2 and "no cell named 'nope'" in unknown.output
    ran = CliRunner().invoke(app, commands[2][1:])
    assert ran.exit_code == 0, ran.output
    cell = tmp_path / "run" / "sweep" / CELLS[1]
    assert read_manifest(cell)["stages"]["evaluate"]["status"] == "done"
    assert (
        not (tmp_path / "run" / "sweep" / CELLS[0]).exists()
        and not (tmp_path / "run" / "sweep" / "summary.json").exists()
    )
    assert set(read_manifest(tmp_path / "run")["stages"]) == {"problems", "base", "generate", "verify"}
    assert json.loads((cell / "teachers.json").read_text())["rule"] == "accuracy"


@pytest.mark.slow
def test_cell_commands_run_at_once_share_one_upstream_run_and_the_summary_command_skips_them(reference, tmp_path):
    recipe = recipe_file(teacher_grid_raw(tmp_path / "run"), tmp_path / "recipe.yaml")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "rdistill", "sweep", str(recipe), "--cell", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in CELLS
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    # The upstream lock: one command ran the parent's stages, the other waited and skipped them.
    assert sum(output.count("skip verify") for output in outputs) == 1, outputs
    assert all(
        read_manifest(tmp_path / "run" / "sweep" / name)["stages"]["evaluate"]["status"] == "done" for name in CELLS
    )
    final = CliRunner().invoke(app, ["sweep", str(recipe)])
    assert final.exit_code == 0, final.output
    assert final.output.count("skip evaluate") == 2 and final.output.count("skip train") == 2
    summary = summary_of(tmp_path / "run")
    assert [(c["name"], c["examples"]) for c in summary["cells"]] == [
        (c["name"], c["examples"]) for c in summary_of(reference)["cells"]
    ]
