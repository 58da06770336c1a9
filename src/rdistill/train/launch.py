"""Data-parallel training through `accelerate launch`: rdistill starts no processes of its own.

`rdistill train` with `train.launch.num_processes > 1` writes the train section to
`student/launch.yaml` and runs `accelerate launch -m rdistill.train student/launch.yaml RUN_DIR`
(the package's `__main__`); every rank runs the same schedule and the main one writes
`student/`. On a cluster, start that module under `accelerate launch` on every node
(examples/slurm/train.sbatch).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from rdistill.config import LaunchOptions, TrainOptions
from rdistill.errors import RecipeError

LAUNCH_RECIPE = "launch.yaml"


def in_launched_process() -> bool:
    """True inside a rank started by accelerate launch or torchrun, which must not launch again."""
    return "LOCAL_RANK" in os.environ


def launch_command(options: LaunchOptions, recipe: Path, run_dir: Path) -> list[str]:
    """The `accelerate launch` command line that trains `recipe`'s train section in `run_dir`."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(options.num_processes)]
    command += ["--main_process_port", str(options.main_process_port)]
    if options.accelerate_config:
        command += ["--config_file", options.accelerate_config]
    else:
        # torchrun-style launch on GPUs and CPUs alike: on a CPU the ranks join over gloo
        # (`--cpu` would start one process).
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu"]
    return command + ["-m", "rdistill.train", str(recipe), str(run_dir)]


def launch(options: LaunchOptions, train: TrainOptions, run_dir: Path) -> None:
    """Train in `options.num_processes` processes and wait for them; a failed rank fails the stage."""
    if options.accelerate_config and not Path(options.accelerate_config).exists():
        raise RecipeError(f"train.launch.accelerate_config: {options.accelerate_config} does not exist")
    recipe = run_dir / "student" / LAUNCH_RECIPE
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(yaml.safe_dump({"train": train.model_dump(mode="json")}))
    subprocess.run(launch_command(options, recipe, run_dir), check=True)
    recipe.unlink()
