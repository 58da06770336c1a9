"""Run an untrusted program against tests in separate, resource-limited processes.

One harness process per solution (start-up is paid once, not per test) forks one child per
test: the child runs the program and the test under CPU, memory, file-size, open-file and
process-count limits, with its output captured through a pipe and capped; the harness enforces
a wall-clock limit per test and compares stdin/stdout outputs itself, outside the program's
process. The verifier enforces a limit on the whole solution and kills the whole process group.

Isolation, chosen once per process and reported by `isolation()`:
- `namespaces` (root, with util-linux `unshare`): new network, PID and mount namespaces; the
  harness mounts private tmpfs over /tmp, /var/tmp and /dev/shm and drops to user `nobody`.
  No network, nothing written outside the working directory survives, no process outlives the
  run (the PID namespace dies with its first process), the verifier cannot be signalled.
- `bubblewrap` (Debian's `bwrap`, when installed; the stronger option): a read-only root
  (/tmp included: it may hold the Python that runs the harness), a private /dev/shm, no
  network, PID namespace, `nobody`.
- `rlimits` (neither available): resource limits, an empty environment, a fresh working
  directory and process-group kill only: no network or file-system isolation.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

MEMORY_LIMIT_BYTES = 1 << 30
OUTPUT_LIMIT_BYTES = 1 << 20
OPEN_FILES_LIMIT = 64
PROCESS_LIMIT = 64
NOBODY = 65534
RESULT_MARKER = "__RDISTILL_RESULT__"

# The harness. It reads {program, tests, limits, nonce, isolate, test_timeout_s} from stdin,
# isolates itself if asked (private tmpfs mounts, then user nobody), and forks one child per
# test. A function-test child reports success by writing the nonce to its pipe after the test
# returns, so a program that exits early (sys.exit, os._exit) cannot pass; a stdin/stdout child
# writes its output to the pipe and the harness compares it (numbers within 1e-6). Results go
# to a copy of the original stdout that no child keeps open.
HARNESS = r"""
import json, os, resource, select, signal, sys, time
# Taken before any user code runs: a program that rebinds builtins.exec or os.write must not
# change what the harness calls.
_exec, _compile, _callable, _write, _exit = exec, compile, callable, os.write, os._exit
_payload = json.loads(sys.stdin.read())
_channel = os.dup(1)
_null = os.open(os.devnull, os.O_RDWR)
for _fd in (0, 1, 2):
    os.dup2(_null, _fd)
if _payload["isolate"]:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
    for _path in (b"/tmp", b"/var/tmp", b"/dev/shm"):
        _libc.mount(b"tmpfs", _path, b"tmpfs", 0, b"size=16m,mode=1777")
    os.setgroups([])
    os.setgid(_payload["uid"])
    os.setuid(_payload["uid"])
for _name, _value in _payload["limits"].items():
    resource.setrlimit(getattr(resource, _name), (_value, _value))

def _tokens_equal(got, want):
    if got == want:
        return True
    try:
        return abs(float(got) - float(want)) <= 1e-6 * max(1.0, abs(float(want)))
    except ValueError:
        return False

def _outputs_equal(got, want):
    got_lines = [line.split() for line in got.strip().splitlines() if line.strip()]
    want_lines = [line.split() for line in want.strip().splitlines() if line.strip()]
    return len(got_lines) == len(want_lines) and all(
        len(g) == len(w) and all(_tokens_equal(a, b) for a, b in zip(g, w)) for g, w in zip(got_lines, want_lines))

def _child(test, write_fd, input_path):
    os.close(_channel)
    resource.setrlimit(resource.RLIMIT_CPU, (_payload["cpu_s"], _payload["cpu_s"] + 1))
    try:
        if test.get("input") is not None:
            os.dup2(os.open(input_path, os.O_RDONLY), 0)
            os.dup2(write_fd, 1)
            sys.stdin, sys.stdout = open(0, closefd=False), open(1, "w", closefd=False)
            try:
                _exec(_compile(_payload["program"], "solution.py", "exec"), {"__name__": "__main__"})
            except SystemExit:
                pass
            sys.stdout.flush()
        else:
            namespace = {"__name__": "solution"}
            _exec(_compile(_payload["program"], "solution.py", "exec"), namespace)
            _exec(_compile(test["test"], "test.py", "exec"), namespace)
            if test.get("entry_point") and _callable(namespace.get("check")):
                namespace["check"](namespace[test["entry_point"]])
            _write(write_fd, _payload["nonce"].encode())
        _exit(0)
    except AssertionError:
        _exit(1)
    except MemoryError:
        _exit(3)
    except BaseException:
        _exit(2)

def _run(test):
    input_path = None
    if test.get("input") is not None:
        input_path = "stdin.txt"
        with open(input_path, "w") as handle:
            handle.write(test["input"])
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(test, write_fd, input_path)
    os.close(write_fd)
    chunks, size, deadline, verdict = [], 0, time.monotonic() + _payload["test_timeout_s"], None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            verdict = "timeout"
            break
        if select.select([read_fd], [], [], remaining)[0]:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > _payload["output_limit"]:
                verdict = "output_limit"
                break
    os.close(read_fd)
    if verdict is not None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if verdict is not None:
        return verdict
    output = b"".join(chunks).decode(errors="replace")
    if os.WIFSIGNALED(status):
        return "timeout" if os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL) else "runtime_error"
    code = os.WEXITSTATUS(status)
    if code != 0:
        return {1: "wrong_answer", 3: "memory"}.get(code, "runtime_error")
    if test.get("input") is not None:
        return "pass" if _outputs_equal(output, test["output"]) else "wrong_answer"
    return "pass" if output == _payload["nonce"] else "runtime_error"

_results = [_run(test) for test in _payload["tests"]]
os.write(_channel, ("\n__RDISTILL_RESULT__" + json.dumps(_results) + "\n").encode())
os._exit(0)
"""


@dataclass(frozen=True)
class RunResult:
    """Outcome of running one program: tests passed, tests run, and the first failure's reason."""

    passed: int
    total: int
    error: str | None


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command + ["true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def isolation() -> str:
    """The isolation in force: the strongest that works here, or `RDISTILL_SANDBOX` if it works."""
    available = {
        "bubblewrap": lambda: shutil.which("bwrap") is not None and _works(["bwrap", *_bwrap_arguments("/")]),
        "namespaces": lambda: os.geteuid() == 0 and shutil.which("unshare") is not None and _works(_UNSHARE),
        "rlimits": lambda: True,
    }
    wanted = os.environ.get("RDISTILL_SANDBOX")
    candidates = [wanted] if wanted in available else list(available)
    return next((mode for mode in candidates if available[mode]()), "rlimits")


_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private"]


def _bwrap_arguments(workdir: str) -> list[str]:
    return [
        "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--dev", "/dev",
        "--proc", "/proc", "--tmpfs", "/dev/shm", "--bind", workdir, workdir,
        "--chdir", workdir, "--uid", str(NOBODY), "--gid", str(NOBODY),
    ]  # fmt: skip


def _command(mode: str, workdir: str) -> list[str]:
    python = [sys.executable, "-I", "-S", "-c", HARNESS]
    if mode == "bubblewrap":
        return ["bwrap", *_bwrap_arguments(workdir), *python]
    if mode == "namespaces":
        return [*_UNSHARE, *python]
    return python


def _payload(program: str, tests: list[dict], timeout_s: float, mode: str, nonce: str) -> str:
    return json.dumps(
        {
            "program": program,
            "tests": tests,
            "nonce": nonce,
            "isolate": mode == "namespaces",
            "uid": NOBODY,
            "test_timeout_s": timeout_s,
            "cpu_s": max(1, int(timeout_s) + 1),
            "output_limit": OUTPUT_LIMIT_BYTES,
            "limits": {
                "RLIMIT_AS": MEMORY_LIMIT_BYTES,
                "RLIMIT_FSIZE": OUTPUT_LIMIT_BYTES,
                "RLIMIT_NOFILE": OPEN_FILES_LIMIT,
                "RLIMIT_NPROC": PROCESS_LIMIT,
                "RLIMIT_CORE": 0,
            },
        }
    )


def run_program(program: str, tests: list[dict], timeout_s: float) -> RunResult:
    """Run `program` against `tests` (function tests or stdin/stdout pairs), `timeout_s` per test."""
    mode = isolation()
    with tempfile.TemporaryDirectory(prefix="rdistill-sandbox-") as workdir:
        os.chmod(workdir, 0o777)  # the harness may run as nobody
        process = subprocess.Popen(
            _command(mode, workdir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "PYTHONHASHSEED": "0"},
            start_new_session=True,
        )
        payload = _payload(program, tests, timeout_s, mode, secrets.token_hex(16))
        try:
            stdout, _ = process.communicate(payload.encode(), timeout=timeout_s * len(tests) + 5)
        except subprocess.TimeoutExpired:
            return RunResult(0, len(tests), "timeout")
        finally:
            _kill_group(process)
    return _parse(stdout.decode(errors="replace"), len(tests))


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _parse(stdout: str, total: int) -> RunResult:
    marker = stdout.rfind(RESULT_MARKER)
    if marker < 0:
        return RunResult(0, total, "runtime_error")
    results = json.loads(stdout[marker + len(RESULT_MARKER) :].splitlines()[0])
    failures = [result for result in results if result != "pass"]
    return RunResult(results.count("pass"), total, failures[0] if failures else None)
