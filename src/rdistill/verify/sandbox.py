"""Run an untrusted program against tests in a separate, resource-limited process.

One process per solution runs a small harness that feeds each test in turn, so start-up is paid
once per solution, not per test. The process gets a fresh temporary directory, an environment
without the parent's variables, memory/CPU/file limits, and its own session so that a timeout
kills every process it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

MEMORY_LIMIT_BYTES = 1 << 30
OUTPUT_LIMIT_BYTES = 1 << 20
RESULT_MARKER = "__RDISTILL_RESULT__"

# The harness runs in the child. It reads {program, tests, limits} from stdin, sets its own
# resource limits (so the parent needs no preexec_fn and can spawn cheaply even when it holds a
# large model), and runs each test on a fresh namespace: stdin/stdout tests compare outputs
# token by token (numbers within 1e-6), function tests run assertions or HumanEval's
# `check(entry_point)`. It prints one JSON line after a marker on a copy of the real stdout
# taken before user code runs, so a program that replaces sys.stdout cannot forge it.
HARNESS = r"""
import io, json, os, resource, sys
_out = os.fdopen(os.dup(1), "w")
_payload = json.loads(sys.stdin.read())
for _name, _value in _payload["limits"].items():
    resource.setrlimit(getattr(resource, _name), (_value, _value))

def _tokens_equal(got, want):
    if got == want:
        return True
    try:
        a, b = float(got), float(want)
    except ValueError:
        return False
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))

def _outputs_equal(got, want):
    got_lines = [line.split() for line in got.strip().splitlines() if line.strip()]
    want_lines = [line.split() for line in want.strip().splitlines() if line.strip()]
    return len(got_lines) == len(want_lines) and all(
        len(g) == len(w) and all(_tokens_equal(a, b) for a, b in zip(g, w)) for g, w in zip(got_lines, want_lines)
    )

def _run_stdio(program, test):
    sys.stdin = io.StringIO(test["input"])
    buffer = io.StringIO()
    sys.stdout = buffer
    try:
        exec(compile(program, "solution.py", "exec"), {"__name__": "__main__"})
    except SystemExit:
        pass
    finally:
        sys.stdout = sys.__stdout__
    return "pass" if _outputs_equal(buffer.getvalue(), test["output"]) else "wrong_answer"

def _run_function(program, test):
    namespace = {"__name__": "solution"}
    exec(compile(program, "solution.py", "exec"), namespace)
    exec(compile(test["test"], "test.py", "exec"), namespace)
    if test.get("entry_point") and callable(namespace.get("check")):
        namespace["check"](namespace[test["entry_point"]])
    return "pass"

_results = []
for _test in _payload["tests"]:
    try:
        if _test.get("input") is not None:
            _results.append(_run_stdio(_payload["program"], _test))
        else:
            _results.append(_run_function(_payload["program"], _test))
    except AssertionError:
        _results.append("wrong_answer")
    except MemoryError:
        _results.append("memory")
    except BaseException:
        _results.append("runtime_error")
_out.write("\n__RDISTILL_RESULT__" + json.dumps(_results) + "\n")
_out.flush()
os._exit(0)
"""


@dataclass(frozen=True)
class RunResult:
    """Outcome of running one program: per-test results and an overall error reason, if any."""

    passed: int
    total: int
    error: str | None


def _limits(timeout_s: float) -> dict[str, int]:
    cpu_seconds = max(1, int(timeout_s) + 1)
    return {
        "RLIMIT_AS": MEMORY_LIMIT_BYTES,
        "RLIMIT_CPU": cpu_seconds,
        "RLIMIT_FSIZE": OUTPUT_LIMIT_BYTES,
        "RLIMIT_CORE": 0,
    }


def run_program(program: str, tests: list[dict], timeout_s: float) -> RunResult:
    """Run `program` against `tests` (function tests or stdin/stdout pairs) in a sandboxed process."""
    payload = json.dumps({"program": program, "tests": tests, "limits": _limits(timeout_s)})
    with tempfile.TemporaryDirectory(prefix="rdistill-sandbox-") as workdir:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", HARNESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "PYTHONHASHSEED": "0"},
            start_new_session=True,
        )
        try:
            stdout, _ = process.communicate(payload.encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return RunResult(0, len(tests), "timeout")
        finally:
            _kill_group(process)
    return _parse(stdout.decode(errors="replace"), len(tests), process.returncode)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _parse(stdout: str, total: int, returncode: int) -> RunResult:
    marker = stdout.rfind(RESULT_MARKER)
    if marker < 0:
        return RunResult(0, total, "timeout" if returncode in (-signal.SIGXCPU, -signal.SIGKILL) else "runtime_error")
    results = json.loads(stdout[marker + len(RESULT_MARKER) :].splitlines()[0])
    passed = results.count("pass")
    failures = [r for r in results if r != "pass"]
    return RunResult(passed, total, failures[0] if failures else None)
