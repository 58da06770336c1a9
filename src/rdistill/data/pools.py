"""Problem pools from local files and hub datasets, checked row by row before any stage runs.

A pool mixes sources (`problems.sources`), each a JSON Lines or Parquet file, a folder of
them, or a hub dataset, with its domain, field mapping and held-out rows. Every row is checked
as verify and grading will read it (a math answer that can be compared, stdin/stdout tests
with an output, function tests that parse, an mcq answer among its choices): a bad row found
hours later, after generation, costs the GPU-hours before it, so every problem is reported at
once with its file, 1-based line (Parquet and hub: row) and field.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.config import PoolSource, ProblemsOptions
from rdistill.data.io import problem_record, read_jsonl_lines, read_parquet
from rdistill.data.schema import DOMAINS, row_label
from rdistill.errors import DataError, RecipeError
from rdistill.grading.answers import LETTERS, balanced_braces, well_formed

SUFFIXES = (".jsonl", ".parquet")
# Problems listed in the error a loading stage raises; `rdistill check` lists its own share.
SHOWN_ERRORS = 10


@dataclass(frozen=True)
class RawRow:
    """A source row and where it is: `FILE:LINE` (JSON Lines) or `FILE: row N` (Parquet, hub)."""

    where: str
    row: dict[str, Any]


def source_files(path: Path, where: str) -> list[Path]:
    """The files a `path` names: itself, or every .jsonl and .parquet file under the folder, in name order."""
    if path.is_dir():
        files = sorted(file for file in path.rglob("*") if file.suffix in SUFFIXES and file.is_file())
        if not files:
            raise RecipeError(f"{where}: {path} holds no .jsonl or .parquet file")
        return files
    if not path.exists():
        raise RecipeError(f"{where}: {path} not found")
    if path.suffix not in SUFFIXES:
        raise RecipeError(f"{where}: {path} is neither JSON Lines (.jsonl) nor Parquet (.parquet)")
    return [path]


def file_rows(path: Path, where: str) -> list[RawRow]:
    """Rows of a file or folder; a torn or non-JSON line is a DataError naming its file and line."""
    rows = []
    for file in source_files(path, where):
        if file.suffix == ".parquet":
            rows += [RawRow(row_label(file, index), row) for index, row in enumerate(read_parquet(file))]
        else:
            rows += [RawRow(f"{file}:{number}", row) for number, row in read_jsonl_lines(file)]
    return rows


def hub_rows(source: PoolSource, split: str, where: str) -> list[RawRow]:
    """Rows of a hub dataset's split; any failure to fetch it (offline, no such dataset) is a RecipeError."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(source.hub, source.hub_config, split=split)
    except Exception as error:  # datasets and huggingface_hub raise many kinds; each means "not loadable here"
        raise RecipeError(
            f"{where}.hub: cannot load {source.hub!r} (config {source.hub_config!r}, split {split!r}): "
            f"{type(error).__name__}: {error}. A hub dataset needs the network; offline, download it and set `path`"
        ) from error
    if source.limit:
        dataset = dataset.select(range(min(source.limit, len(dataset))))
    label = f"hub:{source.hub}/{split}"
    return [RawRow(row_label(label, index), dict(row)) for index, row in enumerate(dataset)]


def raw_rows(source: PoolSource, where: str, held_out: bool = False) -> list[RawRow]:
    """A source's rows (with `held_out`, those of its eval_path or eval_split), its first `limit` only."""
    if source.hub is not None:
        return hub_rows(source, source.eval_split if held_out else source.hub_split, where)
    location = source.eval_path if held_out else source.path
    rows = file_rows(Path(location), f"{where}.{'eval_path' if held_out else 'path'}")
    return rows[: source.limit] if source.limit else rows


def _text(row: dict[str, Any], field: str) -> str | None:
    """Why `field` is not usable text, or None."""
    if field not in row:
        return f"field {field!r}: missing"
    value = row[field]
    if not isinstance(value, str):
        return f"field {field!r}: expected text, got {'null' if value is None else type(value).__name__}"
    return None if value.strip() else f"field {field!r}: empty"


def _python_problem(code: str) -> str | None:
    """Why test code cannot be run: its syntax error, or None."""
    try:
        ast.parse(code)
    except SyntaxError as error:
        return f"not parseable Python (line {error.lineno}: {error.msg})"
    return None


def _one_test(test: Any, entry_point: str | None, field: str) -> tuple[dict[str, Any] | None, str | None]:
    """A test in the schema's form ({input, output, entry_point, test}), or why it is not one."""
    if isinstance(test, str):
        test = {"test": test}
    if not isinstance(test, dict):
        return None, f"field {field}: expected a test object or test code, got {type(test).__name__}"
    if test.get("test") is None:
        if test.get("input") is None:
            return None, f"field {field}: neither stdin/stdout ('input', 'output') nor a function test ('test')"
        if not isinstance(test.get("output"), str):
            return None, f"field {field}: stdin/stdout test without an 'output' text"
        if not isinstance(test["input"], str):
            return None, f"field {field}.input: expected text, got {type(test['input']).__name__}"
        return {"input": test["input"], "output": test["output"], "entry_point": None, "test": None}, None
    if not isinstance(test["test"], str):
        return None, f"field {field}.test: expected test code, got {type(test['test']).__name__}"
    wrong = _python_problem(test["test"])
    if wrong:
        return None, f"field {field}.test: {wrong}"
    entry = test.get("entry_point") or entry_point
    if entry is None and re.search(r"^def check\s*\(", test["test"], re.MULTILINE):
        return None, f"field {field}: defines check(candidate) but names no entry point to call it with"
    return {"input": None, "output": None, "entry_point": entry, "test": test["test"]}, None


def code_tests(row: dict[str, Any], source: PoolSource) -> tuple[list[dict[str, Any]] | None, list[str]]:
    """(tests, problems) of a code row: every test checked the way the grading harness will run it."""
    field, names = source.fields.tests, source.fields
    if row.get(field) in (None, "", []):
        return None, [f"field {field!r}: a code problem needs tests"]
    raw = row[field]
    if isinstance(raw, str) and raw.lstrip().startswith("["):
        try:
            raw = json.loads(raw)  # Parquet exports sometimes keep a list of tests as its JSON text.
        except json.JSONDecodeError as error:
            return None, [f"field {field!r}: a JSON list of tests that does not parse ({error.msg})"]
    listed = raw if isinstance(raw, list) else [raw]
    entry = row.get(names.entry_point)
    results = [_one_test(test, entry, f"{field!r}[{index}]") for index, test in enumerate(listed)]
    problems = [problem for _, problem in results if problem]
    return ([test for test, _ in results] if not problems else None), problems


def math_answer(row: dict[str, Any], field: str) -> tuple[str | None, str | None]:
    """(answer, problem) of a math or text row: a value the answer checker can compare (something, braces paired)."""
    value = row.get(field)
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        got = "missing" if field not in row else "null" if value is None else type(value).__name__
        return None, f"field {field!r}: a gold answer is needed, got {got}"
    answer = str(value).strip()
    if not well_formed(answer):
        return None, f"field {field!r}: {answer!r} is not an answer (no letter, digit or LaTeX command)"
    if not balanced_braces(answer):
        return None, f"field {field!r}: {answer!r} has unpaired braces"
    return answer, None


def mcq_answer(row: dict[str, Any], source: PoolSource) -> tuple[tuple[str, list[str]] | None, str | None]:
    """((letter, choices), problem) of an mcq row: the answer as a letter among the row's choices."""
    names = source.fields
    choices = row.get(names.choices)
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        return None, f"field {names.choices!r}: expected a list of at least 2 text choices"
    if len(choices) > len(LETTERS):
        return None, f"field {names.choices!r}: {len(choices)} choices, at most {len(LETTERS)} can be lettered"
    letters, answer = LETTERS[: len(choices)], row.get(names.answer)
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        return (letters[answer], choices), None
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in letters:
        return (answer.strip().upper(), choices), None
    if isinstance(answer, str) and answer in choices:
        return (letters[choices.index(answer)], choices), None
    return None, f"field {names.answer!r}: {answer!r} is not among the {len(choices)} choices (A-{letters[-1]})"


def difficulty_of(row: dict[str, Any], field: str) -> tuple[float | None, str | None]:
    """(difficulty, problem): a number, a numeric text or 'Level 3'; absent or null is no difficulty."""
    value = row.get(field)
    if value is None or value == "":
        return None, None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    found = re.fullmatch(r"\s*(?:level\s*)?(-?\d+(?:\.\d+)?)\s*", str(value), re.IGNORECASE)
    if not found:
        return None, f"field {field!r}: {value!r} is not a number"
    return float(found.group(1)), None


def _domain(row: dict[str, Any], source: PoolSource) -> tuple[str | None, str | None]:
    if source.domain is not None:
        return source.domain, None
    value = row.get(source.fields.domain)
    if value not in DOMAINS:
        field = source.fields.domain
        return (
            None,
            f"field {field!r}: domain {value!r} is not one of {', '.join(DOMAINS)} (or set the source's domain)",
        )
    return value, None


def _prompt(row: dict[str, Any], source: PoolSource) -> tuple[str | None, str | None]:
    """The prompt the model sees: the source's template filled with the row."""
    wrong = _text(row, source.fields.prompt)
    if wrong:
        return None, wrong
    try:
        return source.template.format_map({**row, "prompt": row[source.fields.prompt]}), None
    except KeyError as missing:
        return None, f"field {missing}: missing (the source's template names it)"
    except (AttributeError, IndexError, ValueError) as error:
        return None, f"template: {error}"


def problem_row(raw: RawRow, source: PoolSource, split: str) -> tuple[dict[str, Any] | None, list[str]]:
    """(problem record, problems) of one raw row; the problems are `WHERE: field ...` lines."""
    row = raw.row
    (prompt, prompt_problem), (domain, domain_problem) = _prompt(row, source), _domain(row, source)
    difficulty, difficulty_problem = difficulty_of(row, source.fields.difficulty)
    problems = [p for p in (prompt_problem, domain_problem, difficulty_problem) if p]
    answer, tests, meta = None, None, {"row": raw.where}
    if domain in ("math", "text"):
        answer, wrong = math_answer(row, source.fields.answer)
        problems += [wrong] if wrong else []
    elif domain == "mcq":
        found, wrong = mcq_answer(row, source)
        problems += [wrong] if wrong else []
        if found and prompt:
            answer, choices = found
            prompt += "\n\n" + "\n".join(f"{LETTERS[i]}) {choice}" for i, choice in enumerate(choices))
            meta["choices"] = len(choices)
    elif domain == "code":
        tests, wrong_tests = code_tests(row, source)
        problems += wrong_tests
    if problems:
        return None, [f"{raw.where}: {problem}" for problem in problems]
    identifier = row.get(source.fields.id)
    record = problem_record(source.label(), domain, identifier, prompt, answer, tests, difficulty, split, meta)
    return record, []


def held_out_positions(count: int, eval_size: float, seed: int, where: str) -> set[int]:
    """Positions of the rows `eval_size` holds out: a share (rounded up) or a count, drawn by `seed`."""
    if not eval_size:
        return set()
    size = math.ceil(eval_size * count) if eval_size < 1 else int(eval_size)
    if size >= count:
        raise RecipeError(
            f"{where}.eval_size: {eval_size:g} holds out {size} of {count} rows, leaving none to train on"
        )
    return set(np.random.default_rng(seed).permutation(count)[:size].tolist())


def source_problems(source: PoolSource, where: str, seed: int = 0) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(problems, their row labels, problems found) of one source, its held-out rows marked split 'eval'."""
    rows = raw_rows(source, where)
    if not rows:
        return [], [], [f"{where}: no rows in {source.label()}"]
    held = held_out_positions(len(rows), source.eval_size, seed, where)
    labelled = [(raw, "eval" if index in held else "train") for index, raw in enumerate(rows)]
    if source.eval_path or source.eval_split:
        labelled += [(raw, "eval") for raw in raw_rows(source, where, held_out=True)]
    problems, places, errors = [], [], []
    for raw, split in labelled:
        problem, wrong = problem_row(raw, source, split)
        errors += wrong
        if problem is not None:
            problems.append(problem)
            places.append(raw.where)
    return problems, places, errors


def duplicate_problems(problems: list[dict[str, Any]], places: list[str]) -> list[str]:
    """Ids met twice: rollouts, verdicts and answers are keyed by problem id, so one would overwrite the other."""
    first: dict[str, str] = {}
    errors = []
    for problem, where in zip(problems, places, strict=True):
        if problem["id"] in first:
            errors.append(f"{where}: duplicate problem id {problem['id']!r} (first at {first[problem['id']]})")
        first.setdefault(problem["id"], where)
    return errors


def pool_problems(options: ProblemsOptions) -> tuple[list[dict[str, Any]], list[str]]:
    """(problems, every problem found in them) of a file or hub pool; a RecipeError for a source that is not there.

    A file that does not parse (a torn line) is one problem of its source: the others are still checked.
    """
    problems, places, errors = [], [], []
    for index, source in enumerate(options.sources):
        try:
            found, where, wrong = source_problems(source, f"problems.sources[{index}]", options.seed)
        except DataError as error:
            errors.append(str(error))
            continue
        problems += found
        places += where
        errors += wrong
    return problems, errors + duplicate_problems(problems, places)


def load_pool(options: ProblemsOptions) -> list[dict[str, Any]]:
    """The pool's problems; a bad row is a DataError listing the first problems with file, line and field."""
    problems, errors = pool_problems(options)
    if errors:
        more = f"\n  ... and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
        listed = "\n".join(f"  - {error}" for error in errors[:SHOWN_ERRORS])
        raise DataError(f"problems: {len(errors)} bad rows in the pool's sources:\n{listed}{more}")
    return problems


def local_inputs(options: ProblemsOptions) -> list[str]:
    """The pool's local files and folders, absolute, so that the stage reruns when one of them changes."""
    return [
        str(Path(location).resolve())
        for source in options.sources
        for location in (source.path, source.eval_path)
        if location is not None
    ]
