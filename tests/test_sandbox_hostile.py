"""Hostile programs: each is contained (not passed, no effect outside, no survivor, verifier alive)."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import FUNCTION_TEST, HOSTILE
from rdistill.grading.sandbox import Harness, close_harness, harness_pid, isolation, run_program


@pytest.fixture(autouse=True, params=["bubblewrap", "namespaces", "rlimits"])
def mode(request, monkeypatch):
    """Every test in every isolation mode that starts here (a weaker one is skipped, not substituted)."""
    monkeypatch.setenv("RDISTILL_SANDBOX", request.param)
    close_harness()
    isolation.cache_clear()
    if isolation() != request.param:
        pytest.skip(f"{request.param} isolation does not start here")
    yield request.param
    close_harness()
    isolation.cache_clear()


@pytest.fixture
def isolated(mode):
    if mode == "rlimits":
        pytest.skip("rlimits mode: no network or file-system isolation, for trusted code only")


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
    return parents


def _command_line(pid: int) -> list[bytes]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def sandbox_survivors() -> list[int]:
    """Every process below this verifier's warm harness: the harness itself must be alone.

    The harness is the first process from its launcher down (bwrap, unshare or itself) that runs
    this Python; anything below it, whatever it has become since (exec, setsid), survived a test.
    """
    launcher, parents = harness_pid(), _parents()

    def children(pid: int) -> list[int]:
        return [child for child, parent in parents.items() if parent == pid]

    pending, harness = [launcher] if launcher else [], None
    while pending and harness is None:
        pid = pending.pop(0)
        harness = pid if _command_line(pid)[:1] == [sys.executable.encode()] else None
        pending += children(pid)
    survivors, pending = [], children(harness) if harness else []
    while pending:
        pid = pending.pop()
        survivors.append(pid)
        pending += children(pid)
    return survivors


def contained(program: str, tests=FUNCTION_TEST, timeout_s: float = 1.0) -> str:
    """Run a hostile program; assert it did not pass and left nothing running. Returns the reason."""
    started = time.monotonic()
    result = run_program(program, tests, timeout_s)
    assert result.passed == 0, result
    assert time.monotonic() - started < timeout_s * len(tests) + 10
    # The harness kills and reaps every leftover before it answers: nothing may be left now.
    assert sandbox_survivors() == []
    assert run_program("def f(xs):\n    return xs[::-1]\n", FUNCTION_TEST, 5).passed == 1, (
        "the next solution still runs"
    )
    return result.error


def test_infinite_loop():
    assert contained(*HOSTILE["infinite_loop"]) == "timeout"


def test_fork_bomb(mode):
    if mode == "rlimits" and os.geteuid() == 0:
        pytest.skip("process limits do not bind root without namespaces")
    contained(*HOSTILE["fork_bomb"])


def test_a_fork_bomb_does_not_starve_a_concurrent_solutions_forks(isolated):
    """Two harnesses at once (two grading workers): one's fork bomb must not make the other's fork fail.

    Process-count limits are counted per user: were both harnesses' tests the same user, the
    bomb would hold all of that user's processes and the honest solution would fail to fork.
    """
    honest = (
        "import os\nfor _ in range(8):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
        "    os.waitpid(pid, 0)\ndef f(xs):\n    return xs[::-1]\n"
    )
    bomb_harness, honest_harness = Harness(isolation()), Harness(isolation())
    bomb = threading.Thread(target=bomb_harness.run, args=(*HOSTILE["fork_bomb"], 3))
    bomb.start()
    try:
        time.sleep(1)
        assert honest_harness.run(honest, FUNCTION_TEST, 5) == ["pass"]
    finally:
        bomb.join()
        bomb_harness.close()
        honest_harness.close()


def test_memory_hog():
    assert contained(*HOSTILE["memory_hog"]) in ("memory", "runtime_error")


def test_gigabyte_of_output():
    assert contained(*HOSTILE["gigabyte_of_output"], timeout_s=5) in ("output_limit", "runtime_error")


def test_secrets_in_the_environment_are_not_visible(monkeypatch):
    monkeypatch.setenv("RDISTILL_HOSTILE_SECRET", "hunter2")
    contained(
        "import os\nassert os.environ.get('RDISTILL_HOSTILE_SECRET') == 'hunter2'\ndef f(xs):\n    return xs[::-1]\n"
    )


def test_sys_exit_before_tests_does_not_pass():
    contained(*HOSTILE["sys_exit"])
    contained(*HOSTILE["os_exit"])


def test_monkeypatching_the_checker_does_not_pass():
    contained(*HOSTILE["rebound_exec"])
    contained(*HOSTILE["rebound_callable_and_write"])
    contained(*HOSTILE["forged_result"])


def test_background_child_that_outlives_the_run():
    contained(*HOSTILE["background_child"])


def test_writing_outside_the_working_directory_has_no_effect(isolated):
    shared = Path("/tmp") / f"rdistill-hostile-{os.getpid()}"
    shared.mkdir(mode=0o777, exist_ok=True)
    shared.chmod(0o777)
    target = shared / "planted.txt"
    repo_file = Path(__file__).resolve().parents[1] / "planted.txt"
    elsewhere = [
        target,
        repo_file,
        *(Path(d) / "rdistill-planted.txt" for d in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")),
    ]
    program = (
        f"for path in {[str(p) for p in elsewhere] + ['planted.txt']!r}:\n    try:\n        open(path, "
        f"'w').write('x')\n    except OSError:\n        pass\n"
    )
    contained(program)
    assert [path for path in elsewhere if path.exists()] == []
    shared.rmdir()
    left = (
        "import os\ndef f(xs):\n    assert not any(os.path.exists(p) for p in ('planted.txt', "
        "'/tmp/rdistill-planted.txt', '/dev/shm/rdistill-planted.txt'))\n    return xs[::-1]\n"
    )
    assert run_program(left, FUNCTION_TEST, 5).passed == 1, "files written by one solution are gone for the next"


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only files are unreadable anyway when the verifier is not root")
def test_files_only_root_may_read_stay_unreadable(isolated):
    contained("secret = open('/etc/shadow').read()\ndef f(xs):\n    return xs[::-1]\n")


def test_opening_a_socket_reaches_nothing(isolated):
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


def test_killing_the_parent_and_the_verifier_fails(isolated):
    run_program("x = 1", FUNCTION_TEST, 1)
    harness = harness_pid()
    contained(
        f"import os, signal\nfor pid in (os.getppid(), {os.getpid()}):\n    try:\n        os.kill(pid, "
        f"signal.SIGKILL)\n    except OSError:\n        pass\n"
    )
    assert harness_pid() == harness, "the harness was not replaced: the signal did not reach it"
