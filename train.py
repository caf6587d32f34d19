"""Train a policy with GRPO, Prompt-GDRO and/or Rollout-GDRO: `python train.py [group=choice] [key=value]`.

python train.py                                         # GRPO on the embedded tiny model (CPU)
python train.py sampler=prompt_gdro allocator=rollout_gdro trainer.steps=100
python train.py policy=sim trainer.steps=2000           # the controllers on the learning simulator
python train.py resume=outputs/DATE/TIME                # continue a run from its latest checkpoint
torchrun --nproc_per_node=8 train.py trainer.backend=deepspeed hydra.run.dir=outputs/RUN   # one node, 8 ranks
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gdro.config import parse_run_config, register_configs
from gdro.train.loop import train
from gdro.train.parallel.world import World

register_configs()  # the groups' schemas, which conf/ extends


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Validate the composed config, then train into Hydra's run folder."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    run = parse_run_config(resolved)
    world = World.from_env()  # torchrun's ranks (a world of one without it)
    run_dir = world.broadcast(Path(HydraConfig.get().runtime.output_dir))  # rank 0's, on every rank
    logging.getLogger(__name__).info("run folder: %s (rank %d of %d)", run_dir, world.rank, world.size)
    train(run, run_dir, resolved, world=world)


if __name__ == "__main__":
    main()
