"""The `vllm` backend on the micro student: runs only where vLLM and a GPU are present."""

from __future__ import annotations

import importlib.util

import pytest

from rdistill.backends import Request
from rdistill.config import ModelSpec, SamplingParams

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (pip install 'rdistill[vllm]')"
)


ENGINE_ARGS = {"gpu_memory_utilization": 0.2, "enforce_eager": True, "max_model_len": 512}


def micro_spec(tiny_recipe, **fields) -> ModelSpec:
    """The micro student as a vllm model (its base is built once per session), skipping without a GPU."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    from rdistill.base import ensure_micro_base

    model_dir = ensure_micro_base(tiny_recipe.base.micro)
    return ModelSpec(
        name="micro", backend="vllm", model=str(model_dir), batch_size=4, engine_args=ENGINE_ARGS, **fields
    )


def in_request_order(results: list) -> list:
    return sorted(results, key=lambda result: result.request.seed)


def complete_twice(backend) -> tuple[list, list]:
    """Completions of ten requests, then of the first three again, each list in request order."""
    requests = [
        Request({"id": f"p{index}"}, 0, index, [{"role": "user", "content": f"What is {index} plus 2?"}])
        for index in range(10)
    ]
    results, again = [], []
    try:
        backend.generate(requests, SamplingParams(temperature=0.8, max_tokens=16), results.append)
        backend.generate(requests[:3], SamplingParams(temperature=0.8, max_tokens=16), again.append)
    finally:
        backend.close()
    assert sorted(result.request.problem["id"] for result in results) == sorted(
        request.problem["id"] for request in requests
    )
    assert all(result.finish_reason in ("stop", "length") and 0 < result.completion_tokens <= 16 for result in results)
    return in_request_order(results), in_request_order(again)


def test_vllm_backend_completes_every_request_once_with_its_seed(tiny_recipe):
    from rdistill.backends.vllm import VLLMBackend

    results, again = complete_twice(VLLMBackend(micro_spec(tiny_recipe), "test"))
    assert [result.text for result in again] == [result.text for result in results[:3]], (
        "a request's seed fixes its sample"
    )


def test_vllm_replicas_on_ray_complete_every_request_once_with_its_seed(tiny_recipe):
    pytest.importorskip("ray")
    from rdistill.backends import make_backend

    spec = micro_spec(tiny_recipe, ray={"replicas": 1})
    results, again = complete_twice(make_backend(spec, "test"))
    assert [result.text for result in again] == [result.text for result in results[:3]], (
        "a request's seed fixes its sample, whichever replica answers it"
    )
