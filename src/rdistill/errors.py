"""Errors a user can cause. The CLI turns every `RdistillError` into exit code 2; bugs stay tracebacks."""

from __future__ import annotations


class RdistillError(Exception):
    """Base class of every error that bad input, not a bug, can raise."""


class RecipeError(RdistillError):
    """A recipe or stage config is invalid: names the file, the key path and what was expected."""


class DataError(RdistillError):
    """A data file is missing or malformed: names the file, the row and the field."""


class StageInputError(RdistillError):
    """A stage was run before the stage whose output it needs."""


class BackendError(RdistillError):
    """A model server refused the run (bad key, unknown model) or could not be reached.

    The message names the endpoint, the model and the recipe key.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, `kill`, a container stop), raised where Ctrl-C would be.

    A `KeyboardInterrupt`, so that a stage stopped this way is recorded `failed` and keeps its
    resumable work exactly as one stopped with Ctrl-C, rather than dying with its stage `running`.
    """


def raise_on_sigterm() -> None:
    """From now on, SIGTERM in this process raises `Terminated` in the main thread (where handlers can be set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def terminated(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)
