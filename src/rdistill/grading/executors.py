"""Where `grade_many`'s batches run: worker processes on this machine, or actors on a Ray cluster.

Either way a batch is graded by the same function in a long-lived process that keeps one warm
sandbox harness between batches (`rdistill.grading.sandbox`), so its verdicts do not depend on
where it ran. An executor is a context manager whose `map(work, batches)` yields
`(batch index, verdicts)` as batches finish, in any order, each batch exactly once.

- `local`: a process pool (`concurrent.futures`) forked from a forkserver.
- `ray`: one Ray actor per worker, each asking for one CPU anywhere in the cluster. Ray restarts
  an actor whose process dies and runs its batch again there; the driver receives each batch's
  result once, so a caller that writes verdicts as they come writes none twice. Every actor
  reports its node's sandbox mode; where only resource limits are in force (`rlimits`: no
  network or file-system isolation) it refuses code unless the caller says the code is trusted.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from typing import Any

from rdistill.errors import RdistillError

Batch = list[tuple[dict[str, Any], str]]
Work = Callable[[Batch], list[dict[str, Any]]]


class UntrustedCodeRefused(RdistillError):
    """A worker whose sandbox cannot isolate code (mode 'rlimits') was given code not marked trusted."""


def _has_code(batch: Batch) -> bool:
    return any(problem["domain"] == "code" for problem, _ in batch)


def _refusal(node: str) -> UntrustedCodeRefused:
    return UntrustedCodeRefused(
        f"Ray node {node}: the code sandbox can only apply resource limits there ('rlimits': no network or "
        f"file-system isolation), so it refuses untrusted code. Install bubblewrap on the node or run its raylet as "
        f"root (for namespaces), or set `trusted_code: true` in the recipe's `verify` (or `evaluate.grading`) "
        f"section if the code is trusted"
    )


class LocalExecutor:
    """Worker processes on this machine, forked from a fresh server process that has imported the graders once.

    Processes, not threads: Math-Verify's time limits use signals, which work only in a
    process's main thread. Not forked from this process, which may hold a model; and not
    spawned, which would import Math-Verify and this program's main module (the CLI, say) in
    every worker of every call, a second or more each. The server starts once per program.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __enter__(self) -> LocalExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", "rdistill.grading", "math_verify"])
        self.pool = ProcessPoolExecutor(self.workers, mp_context=context)
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(cancel_futures=True)

    def map(self, work: Work, batches: list[Batch]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(index, verdicts) of each batch as it finishes."""
        futures = {self.pool.submit(work, batch): index for index, batch in enumerate(batches)}
        for future in as_completed(futures):
            yield futures[future], future.result()


class GradingWorker:
    """The state of one Ray actor: a process, its node's sandbox mode, and (once used) its warm harness."""

    def __init__(self, trusted_code: bool) -> None:
        from rdistill.grading.sandbox import isolation

        self.mode, self.trusted_code = isolation(), trusted_code

    def describe(self) -> tuple[str, str, bool]:
        """(node address, the sandbox mode in force there, whether this worker refuses code)."""
        import ray

        return ray.util.get_node_ip_address(), self.mode, self.refuses()

    def refuses(self) -> bool:
        """Whether this worker must refuse code: it cannot isolate it and the code is not trusted."""
        return self.mode == "rlimits" and not self.trusted_code

    def run(self, work: Work, index: int, batch: Batch) -> tuple[int, list[dict[str, Any]]]:
        """(index, verdicts) of one batch, graded in this process (and its harness)."""
        if self.refuses() and _has_code(batch):
            raise _refusal(self.describe()[0])
        return index, work(batch)


class RayExecutor:
    """`workers` Ray actors of one CPU each, on the cluster at `address` or on a local instance.

    Ray's `ActorPool` hands each idle actor the next batch. An actor that dies is restarted by
    Ray (`ACTOR_RESTARTS` times) and its batch re-run there (`max_task_retries=-1`); the batch's
    result still reaches the driver once.
    """

    def __init__(self, workers: int, address: str | None, trusted_code: bool, log: Callable[[str], None]) -> None:
        self.workers, self.address, self.trusted_code, self.log = workers, address, trusted_code, log
        self.stack = ExitStack()

    def __enter__(self) -> RayExecutor:
        from rdistill.cluster import ACTOR_RESTARTS, ray_session

        with self.stack:
            self.ray = ray = self.stack.enter_context(ray_session(self.address, self.workers, "executor 'ray'"))
            cpus = ray.cluster_resources().get("CPU", 0)
            if cpus < self.workers:
                self.log(f"Ray cluster has {cpus:g} CPUs: some of the {self.workers} grading workers wait for more")
            actor = ray.remote(GradingWorker).options(num_cpus=1, max_restarts=ACTOR_RESTARTS, max_task_retries=-1)
            self.actors = [actor.remote(self.trusted_code) for _ in range(self.workers)]
            self.stack.callback(self._stop_actors)
            nodes = ray.get([worker.describe.remote() for worker in self.actors])
            self.stack = self.stack.pop_all()
        for (node, mode, refuses), count in sorted(Counter(nodes).items()):
            refusal = " (refuses untrusted code)" if refuses else ""
            self.log(f"grading on Ray node {node}: {count} worker(s), code sandbox {mode}{refusal}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _stop_actors(self) -> None:
        for worker in self.actors:
            self.ray.kill(worker)

    def map(self, work: Work, batches: list[Batch]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(index, verdicts) of each batch as it finishes; a worker's refusal of code stops the run."""
        from ray.util import ActorPool

        jobs = enumerate(batches)
        try:
            yield from ActorPool(self.actors).map_unordered(lambda worker, job: worker.run.remote(work, *job), jobs)
        except self.ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, RdistillError):
                raise error.cause from None
            raise


def make_executor(
    kind: str, workers: int, ray_address: str | None, trusted_code: bool, log: Callable[[str], None]
) -> LocalExecutor | RayExecutor:
    """The executor `kind` names ('local' or 'ray')."""
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, ray_address, trusted_code, log)
    raise ValueError(f"unknown executor {kind!r}")
