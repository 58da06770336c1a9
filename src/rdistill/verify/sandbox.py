"""Run an untrusted program against tests in separate, resource-limited processes.

Each process that verifies code keeps one warm harness (started once, isolated once) and sends
it solution after solution. For each test the harness forks a child that drops to user
`nobody` where it can, sets CPU, memory, file-size, open-file and process-count limits and runs
the program and the test, its output captured through a pipe and capped; the harness enforces a
wall-clock limit per test and compares stdin/stdout outputs itself, outside the program's
process. After every test it kills every process left; between solutions it empties the
directories a program can write. The verifier enforces a limit on the whole solution and
replaces a harness that overruns it or dies.

Isolation, chosen once per process and reported by `isolation()`:
- `bubblewrap` (Debian's `bwrap`, when installed; the stronger option): read-only root with a
  fresh /dev and /proc, private tmpfs /tmp, /var/tmp and /dev/shm, new network, PID, IPC and
  UTS namespaces. Run as root, the harness keeps only the capabilities it needs to drop each
  test to the real user `nobody`; run by another user, tests run as that user, mapped to
  `nobody` in a user namespace.
- `namespaces` (root, with util-linux `unshare`): new network, PID, mount and IPC namespaces;
  the harness remounts every file system read-only, mounts private tmpfs over /tmp, /var/tmp
  and /dev/shm and a fresh /proc, hides a directory `nobody` cannot enter that holds Python
  (such as /root) behind a tmpfs with only Python bound back, and runs each test as `nobody`.
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
SCRATCH = ["/tmp", "/var/tmp", "/dev/shm"]
# Room for the harness to start, fork and clean up, on top of the tests' own limits.
SOLUTION_SLACK_S = 5.0

# The harness. Its first input line is its configuration; every further line is one solution,
# {program, tests, test_timeout_s, cpu_s}, answered by one result line on a copy of the original
# stdout that no child keeps open. A function-test child reports success by writing a fresh
# per-test nonce to its pipe after the test returns, so a program that exits early (sys.exit,
# os._exit) cannot pass; a stdin/stdout child writes its output to the pipe and the harness
# compares it (numbers within 1e-6). The harness is not dumpable, so a test running as the same
# user can neither trace it nor open its file descriptors.
HARNESS = r"""
import ctypes, json, os, resource, select, shutil, signal, sys, time
# Taken before any user code runs: a program that rebinds builtins.exec or os.write must not
# change what its own child calls.
_exec, _compile, _callable, _write, _exit = exec, compile, callable, os.write, os._exit
_requests = os.fdopen(os.dup(0), "rb")
_channel = os.dup(1)
_null = os.open(os.devnull, os.O_RDWR)
for _fd in (0, 1, 2):
    os.dup2(_null, _fd)
_config = json.loads(_requests.readline())
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384

def _mount(source, target, kind, flags, data):
    if _libc.mount(source, target.encode(), kind, flags, data) != 0:
        raise OSError(ctypes.get_errno(), "mount " + target)

def _read_only_everywhere():
    # Every mount read-only, keeping its nosuid/nodev/noexec/atime flags (a bind remount resets them).
    for line in open("/proc/self/mountinfo"):
        target = line.split()[4].replace("\\040", " ")
        try:
            keep = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048)
        except OSError:
            continue
        if _libc.mount(None, target.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, None) != 0 and target == "/":
            raise OSError(ctypes.get_errno(), "remount / read-only")

def _isolate(mounts):
    python = os.open(mounts["python"], os.O_PATH)
    _read_only_everywhere()
    for path in mounts["scratch"] + mounts["cover"]:
        _mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64m,mode=1777" if path in mounts["scratch"] else b"size=1m,mode=755")
    if any(mounts["python"].startswith(path + "/") for path in mounts["scratch"] + mounts["cover"]):
        os.makedirs(mounts["python"], exist_ok=True)
        _mount(("/proc/self/fd/%d" % python).encode(), mounts["python"], None, MS_BIND | MS_REC, None)
        _mount(None, mounts["python"], None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.close(python)

if _config["mounts"]:
    _isolate(_config["mounts"])
_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
if not _config["pid_namespace"]:
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

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

def _child(payload, test, write_fd, input_fd, nonce):
    os.close(_channel)
    _requests.close()
    os.setpgid(0, 0)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if _config["uid"] is not None:
        os.setgroups([])
        os.setgid(_config["uid"])
        os.setuid(_config["uid"])
    os.chdir(_config["workdir"])
    for name, value in _config["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (payload["cpu_s"], payload["cpu_s"] + 1))
    try:
        if input_fd is not None:
            os.dup2(input_fd, 0)
            os.dup2(write_fd, 1)
            sys.stdin, sys.stdout = open(0, closefd=False), open(1, "w", closefd=False)
            try:
                _exec(_compile(payload["program"], "solution.py", "exec"), {"__name__": "__main__"})
            except SystemExit:
                pass
            sys.stdout.flush()
        else:
            namespace = {"__name__": "solution"}
            _exec(_compile(payload["program"], "solution.py", "exec"), namespace)
            _exec(_compile(test["test"], "test.py", "exec"), namespace)
            if test.get("entry_point") and _callable(namespace.get("check")):
                namespace["check"](namespace[test["entry_point"]])
            _write(write_fd, nonce.encode())
        _exit(0)
    except AssertionError:
        _exit(1)
    except MemoryError:
        _exit(3)
    except BaseException:
        _exit(2)

def _children():
    pids = set()
    for task in os.listdir("/proc/self/task"):
        try:
            pids.update(int(pid) for pid in open("/proc/self/task/%s/children" % task).read().split())
        except OSError:
            continue
    return pids

def _kill_leftovers():
    # In a PID namespace the harness is its init: kill(-1) reaches every other process in it and
    # every orphan is its child. Elsewhere it is a subreaper and kills its descendants as they
    # become its children.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _config["pid_namespace"]:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return
        else:
            pids = _children()
            if not pids:
                return
            for pid in pids:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            for pid in pids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass

def _writable(function, path, _):
    os.chmod(os.path.dirname(path), 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
    function(path)

def _empty(directory):
    for entry in os.scandir(directory):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, onerror=_writable)
        else:
            os.unlink(entry.path)

def _input_fd(text):
    fd = os.memfd_create("stdin")
    data = text.encode()
    while data:
        data = data[os.write(fd, data):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd

def _run(payload, test):
    input_fd = _input_fd(test["input"]) if test.get("input") is not None else None
    nonce = os.urandom(16).hex()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(payload, test, write_fd, input_fd, nonce)
    os.close(write_fd)
    if input_fd is not None:
        os.close(input_fd)
    chunks, size, deadline, verdict = [], 0, time.monotonic() + payload["test_timeout_s"], None
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
            if size > _config["output_limit"]:
                verdict = "output_limit"
                break
    os.close(read_fd)
    if verdict is not None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    _kill_leftovers()
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
    return "pass" if output == nonce else "runtime_error"

for _line in _requests:
    _payload = json.loads(_line)
    _results = [_run(_payload, _test) for _test in _payload["tests"]]
    for _directory in _config["scratch"]:
        _empty(_directory)
    _write(_channel, (json.dumps(_results) + "\n").encode())
# The verifier has gone (its end of the pipe closed): a private working directory goes too.
if not _config["pid_namespace"]:
    shutil.rmtree(_config["workdir"], ignore_errors=True)
"""


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
    """bwrap's options: as root, no user namespace and just the capabilities to drop to nobody."""
    python = _python_prefix()
    # As root, tests run as the real nobody, who cannot enter a directory such as /root that may
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
        capabilities = [arg for cap in ("SETUID", "SETGID", "KILL", "DAC_OVERRIDE", "FOWNER") for arg in ("--cap-add", f"CAP_{cap}")]
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


def _configuration(mode: str, workdir: str | None) -> dict:
    """What the harness needs to know about its mode: mounts to make, user to drop to, where to work."""
    isolated = mode != "rlimits"
    root = os.geteuid() == 0
    python = _python_prefix()
    return {
        "mounts": {"scratch": SCRATCH, "cover": [p for p in [_hidden_ancestor(python)] if p], "python": python} if mode == "namespaces" else None,
        "uid": NOBODY if isolated and root else None,
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
            env={"PATH": "/usr/bin:/bin", "HOME": self.workdir or "/tmp", "TMPDIR": self.workdir or "/tmp", "PYTHONHASHSEED": "0"},
            start_new_session=True,
        )
        self._send(_configuration(mode, self.workdir))

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

    def run(self, program: str, tests: list[dict], timeout_s: float) -> list[str]:
        """Each test's verdict ('pass' or a failure reason)."""
        self._send({"program": program, "tests": tests, "test_timeout_s": timeout_s, "cpu_s": max(1, int(timeout_s) + 1)})
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
        return harness.run("x = 1", [{"input": None, "output": None, "entry_point": None, "test": "assert x == 1"}], 5) == ["pass"]
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
    return "rlimits (resource limits only, no network or file-system isolation: install bubblewrap, or run as root for namespaces)"


class _WarmHarness:
    """This process's harness, started on first use and replaced when it dies or overruns."""

    harness: Harness | None = None
    lock = threading.Lock()

    @classmethod
    def run(cls, program: str, tests: list[dict], timeout_s: float) -> list[str] | str:
        """Each test's verdict, or the whole solution's failure reason if the harness was lost.

        A harness found dead (it may have died after its last answer) gets one replacement: a
        solution fails only if it loses a fresh harness too.
        """
        with cls.lock:
            try:
                return cls._run_once(program, tests, timeout_s)
            except HarnessGone as gone:
                if str(gone) == "timeout":
                    return "timeout"
            try:
                return cls._run_once(program, tests, timeout_s)
            except HarnessGone as gone:
                return str(gone)

    @classmethod
    def _run_once(cls, program: str, tests: list[dict], timeout_s: float) -> list[str]:
        try:
            if cls.harness is None or cls.harness.process.poll() is not None:
                cls.close()
                cls.harness = Harness(isolation())
            return cls.harness.run(program, tests, timeout_s)
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


def run_program(program: str, tests: list[dict], timeout_s: float) -> RunResult:
    """Run `program` against `tests` (function tests or stdin/stdout pairs), `timeout_s` per test."""
    results = _WarmHarness.run(program, tests, timeout_s)
    if isinstance(results, str):
        return RunResult(0, len(tests), results)
    failures = [result for result in results if result != "pass"]
    return RunResult(results.count("pass"), len(tests), failures[0] if failures else None)
