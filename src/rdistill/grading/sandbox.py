"""Run an untrusted program against tests in separate, resource-limited processes.

Each process that verifies code keeps one warm harness (started once, isolated once) and sends
it solution after solution. For each test the harness forks a child that drops to an
unprivileged user where it can, sets CPU, memory, file-size, open-file and process-count limits and runs
the program and the test, its output captured through a pipe and capped; the harness enforces a
wall-clock limit per test and compares stdin/stdout outputs itself, outside the program's
process. After every test it kills every process left; between solutions it empties the
directories a program can write. The verifier enforces a limit on the whole solution and
replaces a harness that overruns it or dies.

Isolation, chosen once per process and reported by `isolation()`:
- `bubblewrap` (Debian's `bwrap`, when installed; the stronger option): read-only root with a
  fresh /dev and /proc, private tmpfs /tmp, /var/tmp and /dev/shm, new network, PID, IPC and
  UTS namespaces. Run as root, the harness keeps only the capabilities it needs to drop each
  test to an unprivileged user of that harness's own (so that concurrent harnesses never share
  a process-count budget); run by another user, tests run as that user, mapped to
  `nobody` in a user namespace.
- `namespaces` (root, with util-linux `unshare`): new network, PID, mount and IPC namespaces;
  the harness remounts every file system read-only, mounts private tmpfs over /tmp, /var/tmp
  and /dev/shm and a fresh /proc, hides a directory an unprivileged user cannot enter that holds
  Python (such as /root) behind a tmpfs with only Python bound back, and runs each test as the
  harness's own unprivileged user.
- `rlimits` (neither available): resource limits, an empty environment, a private working
  directory and killing of leftover processes only: no network or file-system isolation.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MEMORY_LIMIT_BYTES = 1 << 30
OUTPUT_LIMIT_BYTES = 1 << 20
OPEN_FILES_LIMIT = 64
PROCESS_LIMIT = 64
NOBODY = 65534
# As root, each harness's tests run as a user of their own: this base plus the harness's pid.
TEST_USER_BASE = 1 << 30
SCRATCH = ["/tmp", "/var/tmp", "/dev/shm"]
# Room for the harness to start, fork and clean up, on top of the tests' own limits.
SOLUTION_SLACK_S = 5.0

# The harness program (its own module, so that lint and tests see it), sent as `-c` source:
# the sandbox may hide the folder the package is installed in (a checkout under /tmp, say).
HARNESS = (Path(__file__).parent / "harness.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class RunResult:
    """Outcome of running one program: tests passed, tests run, and the first failure's reason."""

    passed: int
    total: int
    error: str | None


class HarnessGone(Exception):
    """The harness died ('runtime_error') or overran its limit ('timeout'): it is replaced."""


def _python_prefix() -> str:
    """The installation the harness's `python -I -S` imports from (a venv's base, not the venv)."""
    return os.path.realpath(sys.base_prefix)


def _interpreter() -> str:
    """The Python binary the harness runs: a venv's interpreter resolved to the installation it links to.

    The harness runs with `-I -S` and needs nothing from the venv; the installation is what the
    sandbox binds back, while a venv under /tmp would vanish beneath the sandbox's private /tmp.
    """
    real = os.path.realpath(sys.executable)
    return real if real.startswith(_python_prefix() + os.sep) else sys.executable


def _hidden_ancestor(path: str) -> str | None:
    """The outermost directory above `path` that other users cannot enter (/root, say), or None."""
    parts = Path(path).parts
    for depth in range(2, len(parts)):
        ancestor = os.path.join(*parts[:depth])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def _bwrap_arguments() -> list[str]:
    """bwrap's options: as root, no user namespace and just the capabilities to drop to the test user."""
    python = _python_prefix()
    # As root, tests run as an unprivileged user, who cannot enter a directory such as /root that may
    # hold Python: it is hidden behind a tmpfs with only Python bound back.
    covered = SCRATCH + [p for p in [_hidden_ancestor(python) if os.geteuid() == 0 else None] if p]
    mounts = ["--ro-bind", "/", "/", "--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc"]
    for path in covered:
        mounts += ["--tmpfs", path]
    hiding = [path for path in covered if python.startswith(path + "/")]
    if hiding:
        between = [part for part in reversed(Path(python).relative_to(hiding[0]).parents) if part.parts]
        mounts += [arg for part in between for arg in ("--perms", "0755", "--dir", os.path.join(hiding[0], part))]
        mounts += ["--ro-bind", python, python]
    if os.geteuid() == 0:
        namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        capabilities = [
            arg for cap in ("SETUID", "SETGID", "KILL", "DAC_OVERRIDE", "FOWNER") for arg in ("--cap-add", f"CAP_{cap}")
        ]
    else:
        namespaces, capabilities = ["--unshare-all", "--uid", str(NOBODY), "--gid", str(NOBODY)], []
    return [*namespaces, "--as-pid-1", "--die-with-parent", "--new-session", *mounts, "--chdir", "/tmp", *capabilities]


_UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private", "--ipc"]


def _launcher(mode: str) -> list[str]:
    if mode == "bubblewrap":
        return [shutil.which("bwrap") or "bwrap", *_bwrap_arguments()]
    if mode == "namespaces":
        return _UNSHARE
    return []


def _test_user(harness_pid: int) -> int:
    """The unprivileged user one root harness's tests run as: a user of its own, never shared.

    Process-count limits are counted per user, so harnesses that shared one user (such as
    `nobody`) would share one budget of processes: a fork bomb graded by one worker would make
    an honest solution's fork fail in another. The harness's pid is unique among live harnesses.
    """
    return TEST_USER_BASE + harness_pid


def _configuration(mode: str, workdir: str | None, harness_pid: int) -> dict:
    """What the harness needs to know about its mode: mounts to make, user to drop to, where to work."""
    isolated = mode != "rlimits"
    root = os.geteuid() == 0
    python = _python_prefix()
    return {
        "mounts": {"scratch": SCRATCH, "cover": [p for p in [_hidden_ancestor(python)] if p], "python": python}
        if mode == "namespaces"
        else None,
        "uid": _test_user(harness_pid) if isolated and root else None,
        "pid_namespace": isolated,
        "workdir": "/tmp" if isolated else workdir,
        "scratch": SCRATCH if isolated else [workdir],
        "output_limit": OUTPUT_LIMIT_BYTES,
        "limits": {
            "RLIMIT_AS": MEMORY_LIMIT_BYTES,
            "RLIMIT_FSIZE": OUTPUT_LIMIT_BYTES,
            "RLIMIT_NOFILE": OPEN_FILES_LIMIT,
            "RLIMIT_NPROC": PROCESS_LIMIT,
            "RLIMIT_CORE": 0,
        },
    }


class Harness:
    """One warm harness process: isolation is set up once and serves many solutions."""

    def __init__(self, mode: str):
        self.mode = mode
        self.workdir = tempfile.mkdtemp(prefix="rdistill-sandbox-") if mode == "rlimits" else None
        self.process = subprocess.Popen(
            [*_launcher(mode), _interpreter(), "-I", "-S", "-c", HARNESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir or "/",
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": self.workdir or "/tmp",
                "TMPDIR": self.workdir or "/tmp",
                "PYTHONHASHSEED": "0",
            },
            start_new_session=True,
        )
        self._send(_configuration(mode, self.workdir, self.process.pid))

    def _send(self, message: dict) -> None:
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError) as error:
            raise HarnessGone("runtime_error") from error

    def _receive(self, timeout_s: float) -> list[str]:
        """The harness's next result line, or HarnessGone if it dies or overruns `timeout_s`."""
        fd, data, deadline = self.process.stdout.fileno(), b"", time.monotonic() + timeout_s
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise HarnessGone("timeout")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise HarnessGone("runtime_error")
            data += chunk
        return json.loads(data)

    def run(self, program: str, tests: list[dict], timeout_s: float, stdout_rule: dict | None = None) -> list[str]:
        """Each test's verdict ('pass' or a failure reason); `stdout_rule` compares stdin/stdout outputs."""
        self._send(
            {
                "program": program,
                "tests": tests,
                "test_timeout_s": timeout_s,
                "cpu_s": max(1, int(timeout_s) + 1),
                "stdout_rule": stdout_rule,
            }
        )
        return self._receive(timeout_s * len(tests) + SOLUTION_SLACK_S)

    def close(self) -> None:
        """Kill the harness and everything in its session; remove its working directory."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except BrokenPipeError:
                pass
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _works(mode: str) -> bool:
    """Whether a harness in `mode` starts here and passes a trivial test."""
    try:
        harness = Harness(mode)
    except (OSError, HarnessGone):
        return False
    try:
        return harness.run(
            "x = 1", [{"input": None, "output": None, "entry_point": None, "test": "assert x == 1"}], 5
        ) == ["pass"]
    except HarnessGone:
        return False
    finally:
        harness.close()


@functools.cache
def isolation() -> str:
    """The isolation in force: the strongest that works here, starting from `RDISTILL_SANDBOX` if set."""
    available = {
        "bubblewrap": lambda: shutil.which("bwrap") is not None and _works("bubblewrap"),
        "namespaces": lambda: os.geteuid() == 0 and shutil.which("unshare") is not None and _works("namespaces"),
        "rlimits": lambda: True,
    }
    modes = list(available)
    wanted = os.environ.get("RDISTILL_SANDBOX")
    return next(mode for mode in modes[modes.index(wanted) if wanted in modes else 0 :] if available[mode]())


def describe_isolation() -> str:
    """One line for the log: the mode in force and, when it is the weakest, how to get a stronger one."""
    mode = isolation()
    if mode != "rlimits":
        return mode
    return (
        "rlimits (resource limits only, no network or file-system isolation: install bubblewrap, or run as root "
        "for namespaces)"
    )


class _WarmHarness:
    """This process's harness, started on first use and replaced when it dies or overruns."""

    harness: Harness | None = None
    lock = threading.Lock()

    @classmethod
    def run(cls, program: str, tests: list[dict], timeout_s: float, stdout_rule: dict | None) -> list[str] | str:
        """Each test's verdict, or the whole solution's failure reason if the harness was lost.

        A harness found dead (it may have died after its last answer) gets one replacement: a
        solution fails only if it loses a fresh harness too.
        """
        with cls.lock:
            try:
                return cls._run_once(program, tests, timeout_s, stdout_rule)
            except HarnessGone as gone:
                if str(gone) == "timeout":
                    return "timeout"
            try:
                return cls._run_once(program, tests, timeout_s, stdout_rule)
            except HarnessGone as gone:
                return str(gone)

    @classmethod
    def _run_once(cls, program: str, tests: list[dict], timeout_s: float, stdout_rule: dict | None) -> list[str]:
        try:
            if cls.harness is None or cls.harness.process.poll() is not None:
                cls.close()
                cls.harness = Harness(isolation())
            return cls.harness.run(program, tests, timeout_s, stdout_rule)
        except HarnessGone:
            cls.close()
            raise

    @classmethod
    def close(cls) -> None:
        if cls.harness is not None:
            cls.harness.close()
            cls.harness = None


atexit.register(_WarmHarness.close)


def close_harness() -> None:
    """Stop this process's warm harness now (the next `run_program` starts a new one)."""
    with _WarmHarness.lock:
        _WarmHarness.close()


def harness_pid() -> int | None:
    """Process id of this process's warm harness launcher (bwrap, unshare or Python), if one runs."""
    return _WarmHarness.harness.process.pid if _WarmHarness.harness else None


def run_program(program: str, tests: list[dict], timeout_s: float, stdout_rule: dict | None = None) -> RunResult:
    """Run `program` against `tests` (function tests or stdin/stdout pairs), `timeout_s` per test.

    `stdout_rule` says how a stdin/stdout test's output is compared (`rdistill.grading.programs`);
    None is rdistill's own rule.
    """
    results = _WarmHarness.run(program, tests, timeout_s, stdout_rule)
    if isinstance(results, str):
        return RunResult(0, len(tests), results)
    failures = [result for result in results if result != "pass"]
    return RunResult(results.count("pass"), len(tests), failures[0] if failures else None)
