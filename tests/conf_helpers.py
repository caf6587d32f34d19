"""Compose the project's Hydra config in tests exactly as `train.py` does."""

from __future__ import annotations

import importlib.util
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gdro.config import register_configs
from gdro.train.io.metrics import read_metrics

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# With debug=quick: chains of 1-2 steps and debug=overfit's base model (300 warm-start steps, built once for
# both), which solves about 90% of them: about 1 group of 6 has mixed rewards, where debug=quick's own base
# model (40 steps) solves about 1% and a filter keeps almost nothing.
SOME_GROUPS_MIXED = ["dataset.level_steps=[1,2]", "model.warm_start.steps=300"]


def compose_config(overrides: list[str], conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """The composed, resolved config (without the hydra node) for `overrides`, from `conf_dir`."""
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
        config = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(config, resolve=True)


def run_train_py(
    run_dir: Path, overrides: list[str], timeout: int = 300, ranks: int = 1
) -> list[dict[str, Any]]:
    """`python train.py OVERRIDES` in a fresh process (with ranks > 1: `torchrun --standalone
    --nproc_per_node=RANKS train.py OVERRIDES`), run into `run_dir`; the records of its metrics.jsonl."""
    launcher = [sys.executable]
    if ranks > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    result = subprocess.run(
        [*launcher, "train.py", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=CONF_DIR.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return read_metrics(run_dir / "metrics.jsonl")


def forked_train_py(argv: list[str], log: Path) -> None:
    """The body of `python train.py ARGV > log 2>&1`, for a process forked from a server that has already
    imported torch, transformers and hydra (`multiprocessing.get_context("forkserver")` with
    `set_forkserver_preload(["gdro.train.loop", "hydra"])`: 7+ s per start on 2 busy cores otherwise)."""
    os.chdir(CONF_DIR.parent)
    with log.open("w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    sys.argv = ["train.py", *argv]
    runpy.run_path("train.py", run_name="__main__")


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py imported as a module (the scripts folder is no package)."""
    spec = importlib.util.spec_from_file_location(name, CONF_DIR.parent / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
