"""`conf/policy/` and `conf/logger/`: where rollouts come from and where records go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gdro.config.checking import ConfigError


@dataclass
class HFPolicyConfig:
    """`conf/policy/hf.yaml`: rollouts from transformers `generate`."""

    name: str = "hf"
    generation_batch_size: int = 256  # sequences per generate call

    def validate(self) -> None:
        """Positive batch."""
        if self.generation_batch_size < 1:
            raise ConfigError("policy.generation_batch_size must be >= 1")


@dataclass
class SimPolicyConfig:
    """`conf/policy/sim.yaml`: the learning simulator instead of a model."""

    name: str = "sim"
    num_prompts: int = 2048
    num_levels: int = 10
    lr: float = 0.05
    initial_skill: float = 2.0
    level_jitter: float = 0.5
    spread: float = 1.0

    def validate(self) -> None:
        """Sizes."""
        if self.num_prompts < 1 or self.num_levels < 1:
            raise ConfigError("policy.num_prompts and policy.num_levels must be >= 1")


@dataclass
class LoggerConfig:
    """`conf/logger/*.yaml`: W&B (offline by default) or metrics.jsonl only."""

    name: Literal["wandb", "none"]  # the choice (its file sets it)
    project: str = "gdro-rl"
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] = "offline"  # offline | online | disabled
