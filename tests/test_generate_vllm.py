"""The `vllm` backend on the micro student: runs only where vLLM and a GPU are present."""

from __future__ import annotations

import importlib.util

import pytest

from rdistill.backends import Request
from rdistill.config import SamplingParams

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vLLM is not installed (pip install 'rdistill[vllm]')"
)


def test_vllm_backend_completes_every_request_once_with_its_seed(tiny_recipe):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    from rdistill.backends.vllm import VLLMBackend
    from rdistill.base import ensure_micro_base

    model_dir = ensure_micro_base(tiny_recipe.base.micro)
    backend = VLLMBackend(
        str(model_dir),
        batch_size=4,
        engine_args={"gpu_memory_utilization": 0.2, "enforce_eager": True, "max_model_len": 512},
    )
    requests = [
        Request({"id": f"p{index}"}, 0, index, [{"role": "user", "content": f"What is {index} plus 2?"}])
        for index in range(10)
    ]
    results = []
    backend.generate(requests, SamplingParams(temperature=0.8, max_tokens=16), results.append)
    again = []
    backend.generate(requests[:3], SamplingParams(temperature=0.8, max_tokens=16), again.append)
    backend.close()
    assert sorted(result.request.problem["id"] for result in results) == sorted(
        request.problem["id"] for request in requests
    )
    assert all(result.finish_reason in ("stop", "length") and 0 < result.completion_tokens <= 16 for result in results)
    assert [result.text for result in again] == [result.text for result in results[:3]], (
        "a request's seed fixes its sample"
    )
