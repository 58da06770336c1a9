"""One rank of a launched training: `accelerate launch -m rdistill.train RECIPE RUN_DIR`.

Runs the recipe's whole train schedule from the run's base student (`base.json`); the main rank
writes `student/`.
`rdistill train` starts this itself when `train.launch.num_processes > 1`; on a cluster, start it
under `accelerate launch` on every node (examples/slurm/train.sbatch).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rdistill.config import load_recipe
from rdistill.console import quiet_libraries
from rdistill.data import read_base
from rdistill.train import train_schedule


def main(recipe_path: str, run_dir: str) -> None:
    """Train the recipe's schedule in `run_dir` as one of the launched ranks."""
    quiet_libraries()
    train = load_recipe(Path(recipe_path)).train
    train_schedule(read_base(Path(run_dir)), train.schedule(), Path(run_dir))


if __name__ == "__main__":
    main(*sys.argv[1:])
