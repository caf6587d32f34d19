"""Warm-start the embedded base model into the cache (once) and print its held-out mean@k / pass@k per level.

    python scripts/base_model.py [model.warm_start.steps=450] [cache_dir=.cache/gdro]

`train.py` does the same on first use; this shows the frontier RL starts from.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from gdro.config import parse_run_config, register_configs
from gdro.engines.hf import HFEngine
from gdro.models.base_model import ensure_base_model, load_base_model
from gdro.train.evaluator import Evaluator
from gdro.train.task import build_task

register_configs()


@hydra.main(version_base=None, config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Build (or reuse) the base model, then evaluate it."""
    run = parse_run_config(OmegaConf.to_container(cfg, resolve=True))
    torch.set_num_threads(run.trainer.torch_threads)
    torch.manual_seed(run.seed)
    task = run.dataset.task()
    path = ensure_base_model(
        Path(run.cache_dir), task, run.model.architecture(), run.model.warm_start, device="cpu"
    )
    model, tokenizer = load_base_model(path)
    k = run.trainer.eval_samples
    held_out = build_task(run, tokenizer)
    sampling = [("eval", run.trainer.eval_sampling())]
    metrics = Evaluator(HFEngine(model, tokenizer), held_out.eval_sets, k, sampling).evaluate()
    held_out.close()
    print(f"base model: {path}")
    print(f"level  steps  mean@{k}  pass@{k}")
    for level, steps in enumerate(task.level_steps):
        mean, solved = metrics[f"eval/mean@{k}/level_{level}"], metrics[f"eval/pass@{k}/level_{level}"]
        print(f"{level:5d}  {steps:5d}  {mean:6.3f}  {solved:6.3f}")
    print(f"all           {metrics[f'eval/mean@{k}']:6.3f}  {metrics[f'eval/pass@{k}']:6.3f}")


if __name__ == "__main__":
    main()
