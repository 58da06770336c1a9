"""The sandbox harness: the program that runs untrusted solutions, one forked child per test.

`rdistill.grading.sandbox` starts it as `python -I -S -c <this file's text>` inside the chosen
isolation, so it imports nothing but the standard library and never rdistill itself. Its first
input line is its configuration; every further line is one solution, {program, tests,
test_timeout_s, cpu_s, stdout_rule}, answered by one result line on a copy of the original
stdout that no child keeps open. A function-test child reports success by writing a fresh
per-test nonce to its pipe after the test returns, so a program that exits early (sys.exit,
os._exit) cannot pass; a stdin/stdout child writes its output to the pipe and the harness
compares it by the solution's `stdout_rule` (`outputs_match`; the rules are described in
`rdistill.grading.programs`). The harness is not dumpable, so a test running as the same user
can neither trace it nor open its file descriptors.
"""

import ctypes
import decimal
import json
import os
import resource
import select
import shutil
import signal
import sys
import time

# Taken before any user code runs: a program that rebinds builtins.exec or os.write must not
# change what its own child calls.
_exec, _compile, _callable, _write, _exit = exec, compile, callable, os.write, os._exit
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME = 1024, 2048

# Set by main(): the request stream, the private result channel and the configuration line.
_requests = None
_channel = -1
_config: dict = {}


def _mount(source, target, kind, flags, data):
    if _libc.mount(source, target.encode(), kind, flags, data) != 0:
        raise OSError(ctypes.get_errno(), "mount " + target)


def _read_only_everywhere():
    """Every mount read-only, keeping its nosuid/nodev/noexec/atime flags (a bind remount resets them)."""
    for line in open("/proc/self/mountinfo"):
        target = line.split()[4].replace("\\040", " ")
        try:
            keep = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
        except OSError:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | keep
        if _libc.mount(None, target.encode(), None, flags, None) != 0 and target == "/":
            raise OSError(ctypes.get_errno(), "remount / read-only")


def _isolate(mounts):
    python = os.open(mounts["python"], os.O_PATH)
    _read_only_everywhere()
    for path in mounts["scratch"] + mounts["cover"]:
        options = b"size=64m,mode=1777" if path in mounts["scratch"] else b"size=1m,mode=755"
        _mount(b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, options)
    if any(mounts["python"].startswith(path + "/") for path in mounts["scratch"] + mounts["cover"]):
        os.makedirs(mounts["python"], exist_ok=True)
        _mount(f"/proc/self/fd/{python}".encode(), mounts["python"], None, MS_BIND | MS_REC, None)
        _mount(None, mounts["python"], None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)
    _mount(b"proc", "/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.close(python)


def tokens_equal(got, want):
    """Two output tokens are equal as text, or as numbers within 1e-6 (relative above 1)."""
    if got == want:
        return True
    try:
        return abs(float(got) - float(want)) <= 1e-6 * max(1.0, abs(float(want)))
    except ValueError:
        return False


def outputs_equal(got, want):
    """rdistill's own rule: the same non-empty lines of the same tokens, whitespace ignored, numbers within 1e-6."""
    got_lines = [line.split() for line in got.strip().splitlines() if line.strip()]
    want_lines = [line.split() for line in want.strip().splitlines() if line.strip()]
    return len(got_lines) == len(want_lines) and all(
        len(g) == len(w) and all(tokens_equal(a, b) for a, b in zip(g, w, strict=False))
        for g, w in zip(got_lines, want_lines, strict=False)
    )


def _decimals(line):
    try:
        return [decimal.Decimal(token) for token in line.split()]
    except decimal.InvalidOperation:
        return None


def livecodebench_equal(got, want):
    """LiveCodeBench's rule (testing_util.grade_stdio): line by line after stripping, equal as text or as Decimals.

    The same number of lines (inner blank lines count); a line matches when equal as text or
    when its whitespace-separated tokens are equal as `decimal.Decimal`s (so 0.50 == 0.5 and
    1e3 == 1000, but no tolerance: 0.3333333 != 0.333333).
    """
    got_lines = [line.strip() for line in got.strip().split("\n")]
    want_lines = [line.strip() for line in want.strip().split("\n")]
    if len(got_lines) != len(want_lines):
        return False
    for got_line, want_line in zip(got_lines, want_lines, strict=False):
        if got_line == want_line:
            continue
        got_numbers, want_numbers = _decimals(got_line), _decimals(want_line)
        if got_numbers is None or want_numbers is None or got_numbers != want_numbers:
            return False
    return True


def _token_matches(got, want, tolerance, relative):
    if got == want:
        return True
    if tolerance is None:
        return False
    try:
        got_number, want_number = float(got), float(want)
    except ValueError:
        return False
    scale = max(1.0, abs(want_number)) if relative else 1.0
    return abs(got_number - want_number) <= tolerance * scale


def tokens_match(got, want, rule):
    """A checker of competitive programming: the same whitespace-separated tokens, line breaks ignored.

    `rule`: `ignore_case` (the statement accepts YES in any case), `float_tolerance` (None: every
    token must be equal as text) and `relative` (an error relative to max(1, |expected|), the
    Codeforces "absolute or relative error" checker; else absolute).
    """
    got_tokens, want_tokens = got.split(), want.split()
    if rule.get("ignore_case"):
        got_tokens, want_tokens = [t.lower() for t in got_tokens], [t.lower() for t in want_tokens]
    tolerance, relative = rule.get("float_tolerance"), rule.get("relative", True)
    return len(got_tokens) == len(want_tokens) and all(
        _token_matches(a, b, tolerance, relative) for a, b in zip(got_tokens, want_tokens, strict=False)
    )


def outputs_match(got, want, rule):
    """A stdin/stdout test's verdict under the solution's rule: None (rdistill's), livecodebench or tokens."""
    if rule is None:
        return outputs_equal(got, want)
    if rule["kind"] == "livecodebench":
        return livecodebench_equal(got, want)
    return tokens_match(got, want, rule)


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
            pids.update(int(pid) for pid in open(f"/proc/self/task/{task}/children").read().split())
        except OSError:
            continue
    return pids


def _kill_leftovers():
    """Kill every process a test left behind.

    In a PID namespace the harness is its init: kill(-1) reaches every other process in it and
    every orphan is its child. Elsewhere it is a subreaper and kills its descendants as they
    become its children.
    """
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
        data = data[os.write(fd, data) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _collect(read_fd, deadline):
    """The child's output up to the deadline or the output limit; a verdict when either is hit."""
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return chunks, "timeout"
        if select.select([read_fd], [], [], remaining)[0]:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                return chunks, None
            chunks.append(chunk)
            size += len(chunk)
            if size > _config["output_limit"]:
                return chunks, "output_limit"


def _run(payload, test):
    """One test's verdict: 'pass' or the reason it failed."""
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
    chunks, verdict = _collect(read_fd, time.monotonic() + payload["test_timeout_s"])
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
        return "pass" if outputs_match(output, test["output"], payload.get("stdout_rule")) else "wrong_answer"
    return "pass" if output == nonce else "runtime_error"


def main():
    """Read the configuration, isolate once, then answer solution after solution until stdin closes."""
    global _requests, _channel, _config
    _requests = os.fdopen(os.dup(0), "rb")
    _channel = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    _config = json.loads(_requests.readline())
    if _config["mounts"]:
        _isolate(_config["mounts"])
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if not _config["pid_namespace"]:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for line in _requests:
        payload = json.loads(line)
        results = [_run(payload, test) for test in payload["tests"]]
        for directory in _config["scratch"]:
            _empty(directory)
        _write(_channel, (json.dumps(results) + "\n").encode())
    # The verifier has gone (its end of the pipe closed): a private working directory goes too.
    if not _config["pid_namespace"]:
        shutil.rmtree(_config["workdir"], ignore_errors=True)


if __name__ == "__main__":
    main()
