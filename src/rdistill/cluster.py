"""Ray, for the work that outgrows one machine: joining a cluster, or starting a one-machine instance.

The grading executor (`rdistill.grading.executors`) and the vLLM-on-Ray backend
(`rdistill.backends.vllm_ray`) both connect here. Ray is imported inside `ray_session` only:
`import ray` costs one to two seconds, and nothing in the default install needs it
(`pip install 'rdistill[ray]'`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rdistill.errors import RecipeError

# Restarts of one actor (a lost node, a killed process) before the work stops with an error; a
# rerun of the stage then resumes from what was written.
ACTOR_RESTARTS = 4


def import_ray(where: str) -> Any:
    """The `ray` module; a missing Ray is a user error naming the recipe key that asked for it."""
    try:
        import ray
    except ImportError as error:
        raise RecipeError(f"{where}: needs Ray: pip install 'rdistill[ray]' ({error})") from None
    return ray


@contextmanager
def ray_session(address: str | None, num_cpus: int | None, where: str) -> Iterator[Any]:
    """`ray`, connected to the instance this process already runs, to `address`, or to a new local one.

    A new local instance (`address` None) gets `num_cpus` CPUs (None: all), no dashboard, no usage report and
    no token file in the home folder, and is shut down on exit; `address="local"` keeps it from
    joining a cluster that `ray start` left running on this machine. A session this process
    already had (a test's, a notebook's) is used as it is and left running.
    """
    ray = import_ray(where)
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    else:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise RecipeError(f"{where}: could not connect to the Ray cluster at {address!r}: {error}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
