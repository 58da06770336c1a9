"""Generation backends: one interface, several implementations, one factory.

Teachers (in `generate`), students (in `evaluate`, the `teachers` stage's proxy students) and
`rdistill serve` all complete chat requests through `make_backend(spec, where)`. Every backend
is built from the same kind of spec (`rdistill.config.ModelSpec`); implementations are imported
only when chosen, so the `vllm` and `openai` stacks cost nothing to a run that does not use them.
"""

from __future__ import annotations

from rdistill.backends.interface import Backend, Completion, Request, join_think, open_think, split_think, think_closed
from rdistill.config import ModelSpec
from rdistill.errors import RecipeError

__all__ = [
    "Backend",
    "Completion",
    "Request",
    "join_think",
    "make_backend",
    "open_think",
    "split_think",
    "think_closed",
]


def make_backend(spec: ModelSpec, where: str) -> Backend:
    """The backend a teacher (or student) spec names; `where` is its recipe key path for errors."""
    if spec.backend == "micro":
        from rdistill.backends.micro import MicroBackend

        return MicroBackend(spec, where)
    if spec.backend == "hf":
        from rdistill.backends.hf import HFBackend

        return HFBackend(spec, where)
    if spec.backend == "openai":
        from rdistill.backends.openai import OpenAIBackend

        return OpenAIBackend(spec, where)
    if spec.backend == "vllm" and spec.ray is not None:
        from rdistill.backends.vllm_ray import RayVLLMBackend

        return RayVLLMBackend(spec, where)
    if spec.backend == "vllm":
        from rdistill.backends.vllm import VLLMBackend

        return VLLMBackend(spec, where)
    raise RecipeError(f"{where}.backend: unknown backend {spec.backend!r}")
