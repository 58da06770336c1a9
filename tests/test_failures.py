"""What a user's mistakes cost (issue 14): bad files are caught before any stage runs, with exit 2 and
FILE:LINE: field; a failed or interrupted stage keeps the finished outputs it was replacing; nothing is lost.

Every test here builds its run directory by hand or runs only the cheap `problems` stage: none trains.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import QUIET, rdistill, write_recipe
from rdistill.data.manifest import read_manifest, run_stage, stage_state


def aime_row(identifier: str, problem="What is 1 + 1?", answer="2") -> str:
    return json.dumps({"id": identifier, "problem": problem, "answer": answer})


def aime_recipe(run_dir: Path, path: Path) -> dict:
    """A recipe evaluating only the base on one AIME-format benchmark file."""
    return {
        "name": "bench",
        "run_dir": str(run_dir),
        "evaluate": {"distilled": False, "benchmarks": [{"name": "aime", "format": "aime", "path": str(path)}]},
    }


def finished_eval(run_dir: Path) -> dict[str, bytes]:
    """A run directory whose evaluate stage finished: its files, as bytes, to compare with after a failure."""
    (run_dir / "eval").mkdir(parents=True)
    for name in ("aime.parquet", "summary.json", "parts/base/aime.jsonl"):
        (run_dir / "eval" / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "eval" / name).write_text(f"finished {name}\n")
    manifest = {"stages": {"evaluate": {"status": "done", "config_hash": "x", "input_hashes": {}, "outputs": {}}}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


# Case 1 and 3: a bad benchmark file is found before the stage starts, and nothing is removed.


def test_a_torn_benchmark_file_stops_evaluate_before_it_removes_finished_answers(tmp_path):
    run_dir = tmp_path / "run"
    before = finished_eval(run_dir)
    bench = tmp_path / "bench.jsonl"
    bench.write_text(aime_row("1") + "\n" + aime_row("2") + "\n" + '{"id": "3", "probl\n')
    recipe = write_recipe(tmp_path / "recipe.yaml", aime_recipe(run_dir, bench))
    code, said = rdistill("evaluate", "--recipe", str(recipe))
    assert code == 2 and f"{bench}:3: invalid JSON" in said and "Traceback" not in said
    assert files(run_dir) == before, "every finished file is still there, byte for byte"


def test_a_missing_benchmark_path_fails_run_at_once_before_any_stage(tmp_path):
    run_dir = tmp_path / "run"
    recipe = write_recipe(tmp_path / "recipe.yaml", aime_recipe(run_dir, tmp_path / "nowhere.jsonl"))
    code, said = rdistill("run", str(recipe))
    assert code == 2 and "evaluate.benchmarks[0].path" in said and "nowhere.jsonl not found" in said
    assert not run_dir.exists(), "no stage ran, nothing was written"


def test_check_reports_every_problem_at_once(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(aime_row("1", problem=None) + "\n" + aime_row("2", answer=[]) + "\n")
    recipe = aime_recipe(tmp_path / "run", bench)
    recipe["train"] = {"stages": [{"name": "broad", "data": str(tmp_path / "missing.jsonl")}]}
    recipe["curate"] = {"decontaminate": {"extra_files": [str(tmp_path / "gone.jsonl")]}}
    code, said = rdistill("check", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 2 and "4 problems found before any stage ran" in said
    assert f"{bench}:1: field 'problem': null" in said, "a null problem is not turned into the prompt 'None'"
    assert f"{bench}:2: field 'answer': expected str or int, got list" in said
    assert "train.stages[0].data:" in said and "missing.jsonl not found" in said
    assert "curate.decontaminate.extra_files:" in said and "gone.jsonl not found" in said


def test_a_bad_training_stage_file_stops_train_before_it_removes_the_student(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "student").mkdir(parents=True)
    (run_dir / "student" / "model.safetensors").write_text("weights")
    data = tmp_path / "broad.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 7}]},
        {"messages": [{"role": "user", "content": "q"}]},
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = {"run_dir": str(run_dir), "train": {"stages": [{"name": "broad", "data": str(data)}]}}
    code, said = rdistill("train", "--recipe", str(write_recipe(tmp_path / "recipe.yaml", recipe)))
    assert code == 2 and "Traceback" not in said
    assert f"{data}:2: messages[1].content: expected text, got int 7" in said
    assert f"{data}:3: messages: no assistant turn to learn from" in said
    assert (run_dir / "student" / "model.safetensors").read_text() == "weights"


# Case 1 and 7: a stage that fails keeps what it was replacing and says so in the manifest.


def demo_stage(run_dir: Path, config: dict, fail: BaseException | None = None, force: bool = False) -> dict:
    def work():
        (run_dir / "out").mkdir(exist_ok=True)
        (run_dir / "out" / "result.txt").write_text(json.dumps(config))
        (run_dir / "out" / "empty.jsonl").touch()
        if fail is not None:
            raise fail
        return {"config": config}

    return run_stage(run_dir, "demo", config, ["in.txt"], ["out"], work, replace(QUIET, force=force), ["out"])


@pytest.mark.parametrize("failure", [RuntimeError("teacher gone"), KeyboardInterrupt()])
def test_a_failed_rerun_keeps_the_finished_outputs_and_is_marked_failed(tmp_path, failure):
    (tmp_path / "in.txt").write_text("input")
    demo_stage(tmp_path, {"a": 1})
    with pytest.raises(type(failure)):
        demo_stage(tmp_path, {"a": 2}, fail=failure)
    assert json.loads((tmp_path / "out" / "result.txt").read_text()) == {"a": 1}, "the finished output is back"
    entry = read_manifest(tmp_path)["stages"]["demo"]
    assert entry["status"] == "failed" and entry["restored"] and entry["counts"] == {"config": {"a": 1}}
    assert ("teacher gone" in entry["error"]) if isinstance(failure, RuntimeError) else "Ctrl-C" in entry["error"]
    assert not (tmp_path / ".previous" / "demo").exists()
    demo_stage(tmp_path, {"a": 1})
    assert read_manifest(tmp_path)["stages"]["demo"]["status"] == "done", "the kept outputs count as done again"
    with pytest.raises(RuntimeError):
        demo_stage(tmp_path, {"a": 1}, fail=RuntimeError("again"), force=True)
    assert json.loads((tmp_path / "out" / "result.txt").read_text()) == {"a": 1}, "--force keeps them too"


def test_a_first_run_that_fails_keeps_its_partial_work_but_no_empty_file(tmp_path):
    (tmp_path / "in.txt").write_text("input")
    with pytest.raises(RuntimeError):
        demo_stage(tmp_path, {"a": 1}, fail=RuntimeError("boom"))
    assert (tmp_path / "out" / "result.txt").exists(), "resumable partial work is kept"
    assert not (tmp_path / "out" / "empty.jsonl").exists(), "an empty file is not left behind"
    assert read_manifest(tmp_path)["stages"]["demo"]["status"] == "failed"


def test_a_stage_whose_input_changed_is_stale(tmp_path):
    (tmp_path / "in.txt").write_text("input")
    entry = demo_stage(tmp_path, {"a": 1})
    assert stage_state(tmp_path, entry) == "done"
    (tmp_path / "in.txt").write_text("edited")
    assert stage_state(tmp_path, entry) == "stale"


# Case 10: a finished output torn after the fact is noticed when the stage would be skipped.


def test_a_torn_output_of_a_finished_stage_is_rerun_not_skipped(tmp_path):
    (tmp_path / "in.txt").write_text("input")
    calls = []

    def work():
        calls.append(1)
        (tmp_path / "rows.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
        return {}

    def stage():
        return run_stage(tmp_path, "demo", {}, ["in.txt"], ["rows.jsonl"], work, QUIET)

    stage()
    stage()
    assert len(calls) == 1
    (tmp_path / "rows.jsonl").write_text('{"a": 1}\n{"a"')
    stage()
    assert len(calls) == 2 and (tmp_path / "rows.jsonl").read_text().endswith("}\n")


# Case 2: stage commands use the run's own recipe, and refuse another one.


def test_a_stage_command_without_recipe_uses_the_runs_own_and_refuses_a_different_one(tmp_path):
    run_dir = tmp_path / "run"
    own = {"name": "own", "run_dir": str(run_dir), "problems": {"micro": {"math": 12, "code": 6, "eval_per_domain": 4}}}
    code, said = rdistill("problems", "--recipe", str(write_recipe(tmp_path / "own.yaml", own)))
    assert code == 0, said
    code, said = rdistill("problems", "--run-dir", str(run_dir))
    assert code == 0 and "the run's own" in said and "skip problems" in said and '"train/math": 12' in said, said
    other = {**own, "problems": {"micro": {"math": 20, "code": 6, "eval_per_domain": 4}}}
    other_path = write_recipe(tmp_path / "other.yaml", other)
    code, said = rdistill("problems", "--recipe", str(other_path))
    assert code == 2 and "problems.micro.math" in said and "--force" in said
    code, said = rdistill("problems", "--recipe", str(other_path), "--force")
    assert code == 0, said


# Case 4, 5 and 9: clean errors with 1-based lines, for the inputs that used to raise tracebacks.


def test_an_empty_benchmark_file_is_a_clean_error(tmp_path):
    bench = tmp_path / "empty.jsonl"
    bench.write_text("\n")
    code, said = rdistill("check", str(write_recipe(tmp_path / "r.yaml", aime_recipe(tmp_path / "run", bench))))
    assert code == 2 and f"{bench}: no problems in the file" in said


def test_field_errors_name_the_1_based_line_of_the_file(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(aime_row("1") + "\n\n" + aime_row("2") + "\n" + json.dumps({"id": "3", "answer": "4"}) + "\n")
    code, said = rdistill("check", str(write_recipe(tmp_path / "r.yaml", aime_recipe(tmp_path / "run", bench))))
    assert code == 2 and f"{bench}:4: missing field 'problem'" in said


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "a directory, not a recipe file"), (b"name: caf\xe9\n", "not UTF-8 text")],
)
def test_a_recipe_that_is_a_directory_or_not_utf8_is_a_clean_error(tmp_path, content, expected):
    path = tmp_path / "recipe.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, said = rdistill("run", str(path))
    assert code == 2 and expected in said and "Traceback" not in said


def test_a_run_dir_that_is_a_file_is_a_clean_error(tmp_path):
    (tmp_path / "file").write_text("not a run")
    code, said = rdistill("problems", "--run-dir", str(tmp_path / "file"))
    assert code == 2 and "is a file, not a run directory" in said


def test_out_of_range_micro_levels_are_refused(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", {"problems": {"micro": {"difficulties": [0, 99]}}})
    code, said = rdistill("check", str(recipe))
    assert code == 2 and "problems.micro: Value error, difficulties must be levels 1-4" in said


# Case 6: progress reaches a log file without a terminal.


def test_training_without_a_terminal_logs_plain_progress_lines(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from helpers import micro_student
    from rdistill.config import SFTOptions
    from rdistill.training import fine_tune

    monkeypatch.setenv("RDISTILL_PROGRESS_EVERY_S", "0")
    log = io.StringIO()
    console = Console(file=log, force_terminal=False, width=200)
    options = SFTOptions(epochs=1.0, batch_size=4, logging_steps=1, packing=False, max_length=128)
    conversations = [
        [
            {"role": "user", "content": f"What is {n} + 2?"},
            {"role": "assistant", "content": f"<think>\n{n} + 2\n</think>\n{n + 2}"},
        ]
        for n in range(12)
    ]
    fine_tune(micro_student(tmp_path / "base"), conversations, tmp_path / "out", options, "train", console)
    lines = [line for line in log.getvalue().splitlines() if line.startswith("train steps: ")]
    assert len(lines) >= 2 and lines[-1].startswith("train steps: 3/3 (100%), loss ")
    assert "tokens/s" in lines[-1] and "ETA" in lines[-1]


# Case 8: a resumed training reports the whole run.


def test_the_loss_of_a_resumed_run_covers_every_step():
    from rdistill.training.sft import whole_run_loss

    history = [{"step": 2, "loss": 2.0}, {"step": 4, "loss": 1.0}, {"step": 6, "loss": 0.5}]
    # Resumed at step 4: the last leg averaged 0.5 over steps 5-6; the run averaged (2*2 + 2*1 + 2*0.5) / 6.
    assert whole_run_loss(history, 4, 0.5, 6) == pytest.approx(7 / 6)
    assert whole_run_loss(history, 0, 1.1, 6) == 1.1


# Case 4 and the fuzz test: malformed rows for every loader, each an exit 2 naming FILE:LINE and the field.

VALID_ROWS = {
    "math500": {"unique_id": "m/1", "problem": "What is 1 + 1?", "answer": "2", "level": 1, "subject": "algebra"},
    "aime": {"id": "a1", "problem": "What is 1 + 1?", "answer": "2"},
    "humaneval": {"task_id": "H/0", "prompt": "def f(x):\n", "test": "def check(c):\n    pass\n", "entry_point": "f"},
    "mbpp": {"task_id": 1, "prompt": "Return x.", "test_list": ["assert f(1) == 1"]},
    "livecodebench": {"question_id": "q1", "question_content": "Echo.", "tests": [{"input": "1", "output": "1"}]},
    "codecontests": {"id": "c1", "question": "Echo.", "tests": [{"input": "1", "output": "1"}]},
    "mcq": {"id": "q1", "question": "Pick A.", "choices": ["yes", "no"], "answer": "A"},
}
WRONG_VALUES = [None, "", "   ", 7, 2.5, True, [], {}, ["x"], {"a": 1}]


def fuzz_cases(rng) -> list[tuple[str, str, bytes, str]]:
    """(loader kind, format, file bytes, text the error must contain) for malformed benchmark and SFT files."""
    from rdistill.data.benchmarks import REQUIRED_FIELDS

    cases = []
    for fmt, valid in VALID_ROWS.items():
        for names, types in REQUIRED_FIELDS[fmt].items():
            name = names[0] if isinstance(names, tuple) else names
            for value in [*WRONG_VALUES, "delete"]:
                if value != "delete" and isinstance(value, types) and not isinstance(value, bool) and value:
                    if not (isinstance(value, str) and not value.strip()):
                        continue  # a value of a right type is not malformed
                row = {k: v for k, v in valid.items() if k != name or isinstance(names, tuple) and k not in names}
                if value != "delete":
                    row[name] = value
                line = rng.randint(2, 4)
                body = [
                    json.dumps({**valid, "id": f"v{i}", "task_id": f"v{i}", "question_id": f"v{i}"}) for i in range(5)
                ]
                body[line - 1] = json.dumps(row)
                cases.append(("benchmark", fmt, ("\n".join(body) + "\n").encode(), f":{line}: "))
        good = json.dumps(valid).encode()
        cases.append(("benchmark", fmt, good + b"\n" + b'{"problem": "caf\xe9"}\n', ":2: not UTF-8"))
        cases.append(("benchmark", fmt, good + b"\n" + good[: len(good) // 2], ":2: invalid JSON"))
        cases.append(("benchmark", fmt, good + b"\n[1, 2]\n", ":2: expected a JSON object"))
    turn = {"role": "assistant", "content": "a"}
    for messages, expected in [
        (None, "messages: expected a non-empty list"),
        ([], "messages: expected a non-empty list"),
        ("hi", "messages: expected a non-empty list"),
        ([7], "messages[0]: expected an object"),
        ([{"role": "user", "content": None}, turn], "messages[0].content: expected text"),
        ([{"role": "robot", "content": "x"}, turn], "messages[0].role"),
        ([{"role": "user", "content": "x" * 100_000}], "messages: no assistant turn"),
    ]:
        cases.append(
            (
                "sft",
                "",
                (json.dumps({"messages": [turn]}) + "\n" + json.dumps({"messages": messages}) + "\n").encode(),
                f":2: {expected}",
            )
        )
    for value in (None, "", 7, ["text"]):
        rows = [{"problem": "A fine problem."}, {"problem": value}]
        cases.append(("extra", "", "".join(json.dumps(row) + "\n" for row in rows).encode(), ":2: no text field"))
    return cases


def test_fuzzed_malformed_rows_are_exit_2_with_file_line_and_field_and_nothing_removed(tmp_path):
    import random

    cases = fuzz_cases(random.Random(14))
    assert len(cases) > 100
    for index, (kind, fmt, content, expected) in enumerate(cases):
        folder = tmp_path / f"case{index}"
        folder.mkdir()
        data = folder / "data.jsonl"
        data.write_bytes(content)
        recipe = {"run_dir": str(folder / "run")}
        if kind == "benchmark":
            recipe["evaluate"] = {"benchmarks": [{"name": "b", "format": fmt, "path": str(data)}]}
        elif kind == "extra":
            recipe["curate"] = {"decontaminate": {"extra_files": [str(data)]}}
        else:
            recipe["train"] = {"stages": [{"name": "s", "data": str(data)}]}
        code, said = rdistill("check", str(write_recipe(folder / "recipe.yaml", recipe)))
        where = f"case {index} ({kind} {fmt}): {content[:200]!r}"
        assert code == 2 and f"{data}{expected}" in said and "Traceback" not in said, f"{where}\n{said}"
        assert data.read_bytes() == content and not (folder / "run").exists(), where


def test_huge_values_load_or_fail_cleanly(tmp_path):
    rows = [
        {"id": "big", "problem": "x" * 2_000_000, "answer": 10**40},
        {"id": "deep", "problem": "p", "answer": "1", "extra": [[[[[[1]]]]]] * 1000},
    ]
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, said = rdistill("check", str(write_recipe(tmp_path / "r.yaml", aime_recipe(tmp_path / "run", data))))
    assert code == 0, said


def test_a_failed_generate_is_marked_failed_and_leaves_no_empty_rollout_file(tmp_path):
    from helpers import generation_recipe, openai_teacher

    run_dir = tmp_path / "run"
    recipe = generation_recipe(run_dir, [openai_teacher("gone", ["http://127.0.0.1:9/v1"])], math=6, code=4)
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    code, said = rdistill("problems", "--recipe", str(path))
    assert code == 0, said
    code, said = rdistill("generate", "--recipe", str(path))
    assert code == 2 and "no endpoint reachable" in said
    entry = read_manifest(run_dir)["stages"]["generate"]
    assert entry["status"] == "failed" and "no endpoint reachable" in entry["error"]
    assert not (run_dir / "rollouts" / "gone.jsonl").exists(), "no empty rollouts file is left"


def test_plain_progress_lines_say_how_far_how_fast_and_when_it_ends(monkeypatch):
    from rdistill import console as console_module
    from rdistill.console import PlainProgress

    clock = iter([0.0, 5.0, 10.0, 40.0, 41.0])
    monkeypatch.setattr(console_module.time, "monotonic", lambda: next(clock))
    printed = []
    progress = PlainProgress("answer base on math", 100, every_s=30)
    progress.write = printed.append
    progress.update(10)  # 5 s in: not due yet
    progress.update(20, loss="1.2")  # 10 s
    progress.update(50)  # 40 s: due
    progress.update(100)  # the end is always reported
    assert printed == [
        "answer base on math: 50/100 (50%), loss 1.2, elapsed 0m40s, ETA 0m40s",
        "answer base on math: 100/100 (100%), loss 1.2, elapsed 0m41s, ETA 0m00s",
    ]


def test_check_and_run_ask_every_served_teacher_before_any_stage(tmp_path):
    from helpers import openai_teacher, served

    with served("--canned-tokens", "8") as url:
        teachers = [
            openai_teacher("fine", [url]),
            openai_teacher("gone", ["http://127.0.0.1:9/v1"]),
            openai_teacher("keyless", [url], api_key_env="RDISTILL_TEST_UNSET_KEY"),
        ]
        recipe = write_recipe(
            tmp_path / "r.yaml", {"run_dir": str(tmp_path / "run"), "generate": {"teachers": teachers}}
        )
        code, said = rdistill("run", str(recipe))
    assert code == 2 and "2 problems found before any stage ran" in said
    assert "generate.teachers[1].base_urls: no endpoint reachable" in said
    assert "generate.teachers[2].api_key_env" in said and "RDISTILL_TEST_UNSET_KEY" in said
    assert not (tmp_path / "run").exists()
