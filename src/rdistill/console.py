"""Terminal output: one rich console for progress bars and messages, and quiet libraries.

transformers, datasets and TRL each print their own progress bars and advice; inside a
pipeline with its own bars they drown what matters, so the CLI turns them down.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings

from rich.console import Console


def quiet_libraries() -> None:
    """Silence the progress bars and advisory warnings of transformers, datasets and TRL."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("trl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def make_console() -> Console:
    """The console every stage prints to."""
    # A pipe or a CI log has no width of its own; rich's default of 80 columns would squeeze the
    # result table into unreadable ellipses.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def is_terminal(console: Console | None) -> bool:
    """Whether progress goes to a terminal (a live bar) or to a log file, a pipe or a batch job's output."""
    return console.is_terminal if console is not None else sys.stdout.isatty()


class PlainProgress:
    """Progress as a plain line every `every_s` seconds, for output without a terminal (nohup, SLURM, CI).

    A rich bar redraws itself in place, so a log file sees nothing of it until the work ends;
    these lines say how far it is, how fast, and when it should end. `every_s` defaults to
    $RDISTILL_PROGRESS_EVERY_S, else 30 s; the last step is always reported.
    """

    def __init__(
        self, description: str, total: int, completed: int = 0, every_s: float | None = None, console=None
    ) -> None:
        self.description, self.total = description, total
        self.every_s = every_s if every_s is not None else float(os.environ.get("RDISTILL_PROGRESS_EVERY_S", "30"))
        self.write = console.print if console is not None else lambda line: print(line, flush=True)
        self.start_completed = self.completed = completed
        self.started = self.last_line = time.monotonic()
        self.fields: dict[str, str] = {}

    def update(self, completed: int, **fields: str) -> None:
        """Record progress (and fields such as the loss); print a line when one is due."""
        self.completed = completed
        self.fields.update(fields)
        now = time.monotonic()
        if now - self.last_line >= self.every_s or completed >= self.total:
            self.last_line = now
            self.write(self.line(now))

    def line(self, now: float) -> str:
        """`DESCRIPTION: 40/400 (10%), loss 1.234, elapsed 1m05s, ETA 9m45s`."""
        elapsed = now - self.started
        done = self.completed - self.start_completed
        eta = _duration((self.total - self.completed) * elapsed / done) if done > 0 else "?"
        fields = "".join(f", {key} {value}" for key, value in self.fields.items())
        share = self.completed / self.total if self.total else 1.0
        return (
            f"{self.description}: {self.completed}/{self.total} ({share:.0%}){fields}, elapsed {_duration(elapsed)}, "
            f"ETA {eta}"
        )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
