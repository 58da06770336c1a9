"""Terminal output: one rich console for progress bars and messages, and quiet libraries.

transformers, datasets and TRL each print their own progress bars and advice; inside a
pipeline with its own bars they drown what matters, so the CLI turns them down.
"""

from __future__ import annotations

import logging
import os
import sys
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
