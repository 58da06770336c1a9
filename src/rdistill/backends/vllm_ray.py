"""The `vllm` backend on Ray: `ray.replicas` vLLM engines as Ray actors, one per GPU or tensor-parallel group.

For a GPU cluster without OpenAI-compatible servers. Requests are cut into chunks of
`batch_size`; Ray's `ActorPool` hands each free replica the next chunk, and each completion
reaches `on_result` as its chunk comes back. Every request carries its own seed, so which
replica answered it does not change its sample. A replica whose process dies is restarted by
Ray (its model loaded again) and its chunk run again there.

A replica without tensor parallelism reserves `ray.gpus_per_replica` GPUs (default 1); with
`engine_args.tensor_parallel_size` N > 1 it gets a placement group of N GPUs on one node and
vLLM's own Ray executor runs its workers there (the shape of SkyThought's and distilabel's
vLLM stages). Ray and vLLM are imported only when this backend is built, vLLM only inside the
replicas (the driver needs neither a GPU nor vLLM). Written from Ray's and vLLM's documentation
and untested where no GPU exists: the tests drive this class with a fake engine on CPU actors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from rdistill.backends.interface import Completion, Request
from rdistill.backends.vllm import completion_from_fields, load_engine, output_fields, sampling_fields
from rdistill.config import ModelSpec, SamplingParams
from rdistill.errors import BackendError, RecipeError


class VLLMReplica:
    """One vLLM engine in a Ray actor: it answers a chunk of conversations with plain fields."""

    def __init__(self, model: str, engine_args: dict[str, Any], where: str) -> None:
        self.engine = load_engine(model, where, engine_args)

    def ready(self) -> bool:
        """True once the model is loaded (the call waits for the actor's start)."""
        return True

    def chat(
        self, index: int, conversations: list[list[dict[str, str]]], samplings: list[dict[str, Any]]
    ) -> tuple[int, list[dict[str, Any]]]:
        """(index, each conversation's `output_fields` and latency) of one chunk."""
        import time

        from vllm import SamplingParams as VLLMSamplingParams

        started = time.perf_counter()
        outputs = self.engine.chat(
            conversations, sampling_params=[VLLMSamplingParams(**fields) for fields in samplings], use_tqdm=False
        )
        latency = (time.perf_counter() - started) / max(1, len(conversations))
        return index, [output_fields(output) | {"latency_s": latency} for output in outputs]


def tensor_parallel_size(spec: ModelSpec) -> int:
    """GPUs one engine splits its model over (vLLM's `tensor_parallel_size`)."""
    return max(1, int(spec.engine_args.get("tensor_parallel_size", 1)))


def gpus_per_replica(spec: ModelSpec) -> float:
    """GPUs one replica holds: its tensor-parallel group, else `ray.gpus_per_replica` (default 1)."""
    if tensor_parallel_size(spec) > 1:
        return tensor_parallel_size(spec)
    return 1 if spec.ray.gpus_per_replica is None else spec.ray.gpus_per_replica


def replica_options(spec: ModelSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Ray actor options, vLLM engine arguments) of one replica: its GPUs, and a placement group for N > 1."""
    from rdistill.cluster import ACTOR_RESTARTS

    restarts = {"max_restarts": ACTOR_RESTARTS, "max_task_retries": -1}
    parallel = tensor_parallel_size(spec)
    if parallel == 1:
        return {"num_gpus": gpus_per_replica(spec), **restarts}, dict(spec.engine_args)
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = placement_group([{"GPU": 1, "CPU": 1}] * parallel, strategy="STRICT_PACK")
    strategy = PlacementGroupSchedulingStrategy(group, placement_group_capture_child_tasks=True)
    engine_args = {"distributed_executor_backend": "ray", **spec.engine_args}
    return {"num_gpus": 0, "scheduling_strategy": strategy, **restarts}, engine_args


def check_gpus(ray: Any, spec: ModelSpec, where: str) -> None:
    """Fail at once, rather than wait for ever, when the cluster has too few GPUs for the replicas."""
    needed, present = gpus_per_replica(spec) * spec.ray.replicas, ray.cluster_resources().get("GPU", 0)
    if needed > present:
        raise BackendError(
            f"{where}.ray: {spec.ray.replicas} replica(s) need {needed:g} GPUs; the Ray cluster has {present:g}"
        )


class RayVLLMBackend:
    """`ray.replicas` vLLM engines in Ray actors, fed chunks of `batch_size` requests; `replica` is the actor class."""

    def __init__(self, spec: ModelSpec, where: str, replica: type = VLLMReplica) -> None:
        from rdistill.cluster import ray_session

        if not spec.model:
            raise RecipeError(f"{where}.model: the vllm backend needs a model folder or hub name")
        self.batch_size, self.stack = spec.batch_size, ExitStack()
        with self.stack:
            self.ray = ray = self.stack.enter_context(ray_session(spec.ray.address, None, f"{where}.ray"))
            options, engine_args = replica_options(spec)
            check_gpus(ray, spec, where)
            actor = ray.remote(replica).options(**options)
            self.replicas = [actor.remote(spec.model, engine_args, where) for _ in range(spec.ray.replicas)]
            self.stack.callback(self._stop_replicas)
            try:
                ray.get([replica.ready.remote() for replica in self.replicas])
            except ray.exceptions.RayError as error:
                raise BackendError(f"{where}: a vLLM replica on Ray did not start: {error}") from None
            self.stack = self.stack.pop_all()

    def _stop_replicas(self) -> None:
        for replica in self.replicas:
            self.ray.kill(replica)

    def generate(
        self, requests: Sequence[Request], params: SamplingParams, on_result: Callable[[Completion], None]
    ) -> None:
        """Every request answered by one replica or another, each with its own seed, handed back chunk by chunk."""
        from ray.util import ActorPool

        chunks = [requests[start : start + self.batch_size] for start in range(0, len(requests), self.batch_size)]
        jobs = [
            (index, [r.messages for r in chunk], [sampling_fields(params, r.seed) for r in chunk])
            for index, chunk in enumerate(chunks)
        ]
        for index, outputs in ActorPool(self.replicas).map_unordered(
            lambda replica, job: replica.chat.remote(*job), jobs
        ):
            for request, fields in zip(chunks[index], outputs, strict=True):
                on_result(completion_from_fields(request, fields, fields["latency_s"]))

    def close(self) -> None:
        """Stop the replicas (their GPU memory is freed with their processes) and leave Ray."""
        self.stack.close()
