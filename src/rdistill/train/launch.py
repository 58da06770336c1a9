"""Data-parallel training through `accelerate launch`: rdistill starts no processes of its own.

`rdistill train` with `train.launch.num_processes > 1` writes the train section to
`student/launch.yaml` and runs `accelerate launch -m rdistill.train.launch student/launch.yaml
RUN_DIR`; every rank then runs the same schedule and the main one writes `student/`. On a
cluster, call this module under `accelerate launch` yourself (examples/slurm/train.sbatch).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from rdistill.config import LaunchOptions, TrainOptions, TrainStageOptions
from rdistill.errors import RecipeError

LAUNCH_RECIPE = "launch.yaml"


def in_launched_process() -> bool:
    """True inside a rank started by accelerate launch or torchrun, which must not launch again."""
    return "LOCAL_RANK" in os.environ


def launch_command(options: LaunchOptions, recipe: Path, run_dir: Path, on_gpu: bool) -> list[str]:
    """The `accelerate launch` command line that trains `recipe`'s train section in `run_dir`."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(options.num_processes)]
    command += ["--main_process_port", str(options.main_process_port)]
    if options.accelerate_config:
        command += ["--config_file", options.accelerate_config]
    else:
        command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu" if on_gpu else "--cpu"]
    return command + ["-m", "rdistill.train.launch", str(recipe), str(run_dir)]


def launch(options: LaunchOptions, train: TrainOptions, run_dir: Path) -> None:
    """Train in `options.num_processes` processes and wait for them; a failed rank fails the stage."""
    import torch

    recipe = run_dir / "student" / LAUNCH_RECIPE
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(yaml.safe_dump({"train": train.model_dump(mode="json")}))
    if options.accelerate_config and not Path(options.accelerate_config).exists():
        raise RecipeError(f"train.launch.accelerate_config: {options.accelerate_config} does not exist")
    subprocess.run(launch_command(options, recipe, run_dir, torch.cuda.is_available()), check=True)
    recipe.unlink()


def main(recipe_path: str, run_dir: str) -> None:
    """One rank's work: the recipe's whole train schedule, from its base student."""
    from rdistill.config import load_recipe
    from rdistill.console import quiet_libraries
    from rdistill.train import resolve_base, train_schedule

    quiet_libraries()
    train = load_recipe(Path(recipe_path)).train
    schedule: list[TrainStageOptions] = train.schedule()
    train_schedule(resolve_base(train), schedule, Path(run_dir))


if __name__ == "__main__":
    main(*sys.argv[1:])
