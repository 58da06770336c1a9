"""Hostile programs: each is contained (not passed, no effect outside, no survivor, verifier alive)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from rdistill.verify.sandbox import RESULT_MARKER, isolation, run_program

FUNCTION_TEST = [{"input": None, "output": None, "entry_point": "f", "test": "assert f([3, 1, 2]) == [2, 1, 3]"}]
STDIO_TEST = [{"input": "1 2\n", "output": "3\n", "entry_point": None, "test": None}]
ISOLATED = isolation() != "rlimits"
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="no namespaces or bubblewrap here: only resource limits apply")


def sandbox_survivors() -> list[int]:
    """Processes still running the sandbox harness (its source is in their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if RESULT_MARKER.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def contained(program: str, tests=FUNCTION_TEST, timeout_s: float = 1.0) -> str:
    """Run a hostile program; assert it did not pass and left nothing running. Returns the reason."""
    started = time.monotonic()
    result = run_program(program, tests, timeout_s)
    assert result.passed == 0, result
    assert time.monotonic() - started < timeout_s * len(tests) + 10
    # A killed namespace is torn down by the kernel after the verifier returns; a fork bomb's
    # thousands of processes can take seconds to reap on a loaded 2-core machine.
    deadline = time.monotonic() + 20
    while sandbox_survivors() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_survivors() == []
    return result.error


def test_infinite_loop():
    assert contained("def f(xs):\n    while True:\n        pass\n") == "timeout"


@pytest.mark.skipif(not ISOLATED and os.geteuid() == 0, reason="process limits do not bind root without namespaces")
def test_fork_bomb():
    contained("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")


def test_memory_hog():
    assert contained("hog = bytearray(8 << 30)\ndef f(xs):\n    return xs[::-1]\n") in ("memory", "runtime_error")


def test_gigabyte_of_output():
    program = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    assert contained(program, STDIO_TEST, timeout_s=5) in ("output_limit", "runtime_error")


def test_secrets_in_the_environment_are_not_visible(monkeypatch):
    monkeypatch.setenv("RDISTILL_HOSTILE_SECRET", "hunter2")
    contained("import os\nassert os.environ.get('RDISTILL_HOSTILE_SECRET') == 'hunter2'\ndef f(xs):\n    return xs[::-1]\n")


def test_sys_exit_before_tests_does_not_pass():
    contained("import sys\nsys.exit(0)\n")
    contained("import os\nos._exit(0)\n")


def test_monkeypatching_the_checker_does_not_pass():
    contained("import builtins\nbuiltins.exec = lambda *a, **k: None\ndef f(xs):\n    return xs\n")
    contained("import builtins, os\nbuiltins.callable = lambda x: False\nos.write = lambda *a: 0\ndef f(xs):\n    return xs\n")
    contained("print('\\n" + RESULT_MARKER + "[\"pass\"]')\nimport os\nos._exit(0)\n", STDIO_TEST)


@needs_isolation
def test_background_child_that_outlives_the_run():
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    while True:\n        time.sleep(0.1)\ndef f(xs):\n    return xs\n"
    contained(program)


@needs_isolation
def test_writing_outside_the_working_directory_has_no_effect(tmp_path):
    shared = Path("/tmp") / f"rdistill-hostile-{os.getpid()}"
    shared.mkdir(mode=0o777, exist_ok=True)
    shared.chmod(0o777)
    target = shared / "planted.txt"
    repo_file = Path(__file__).resolve().parents[1] / "planted.txt"
    program = f"for path in ({str(target)!r}, {str(repo_file)!r}, '/tmp/planted.txt'):\n    try:\n        open(path, 'w').write('x')\n    except OSError:\n        pass\n"
    contained(program)
    assert not target.exists() and not repo_file.exists() and not Path("/tmp/planted.txt").exists()
    shared.rmdir()


@needs_isolation
def test_opening_a_socket_reaches_nothing():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)))
    thread.start()
    contained(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\ns.sendall(b'leak')\n")
    thread.join()
    server.close()
    assert accepted == [None]


def _accept(server: socket.socket):
    try:
        return server.accept()
    except OSError:
        return None


@needs_isolation
def test_killing_the_parent_and_the_verifier_fails():
    contained(f"import os, signal\nfor pid in (os.getppid(), {os.getpid()}):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n")
    assert os.getpid() > 0  # this process, the verifier, is still here
