"""`conf/deepspeed/`: the DeepSpeed ZeRO settings of `trainer.backend=deepspeed` (zero2, zero3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gdro.config.checking import ConfigError


@dataclass
class DeepSpeedConfig:
    """ZeRO stage and memory knobs; the optimizer, clipping and learning rate come from `trainer`.

    precision `auto`: bf16 on CUDA, fp32 on CPU (gloo reduces no bf16 here). param_persistence_threshold:
    ZeRO-3 keeps parameters smaller than this many elements whole on every rank (0: partition all).
    """

    name: str
    """The choice (its file sets it)."""
    stage: int
    """ZeRO stage: 2 (optimizer states and gradients sharded) or 3 (parameters too)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Training precision: auto (bf16 on CUDA, fp32 on CPU), bf16 or fp32."""
    overlap_comm: bool = False
    """Overlap gradient reduction with the backward pass."""
    reduce_bucket_size: int = 500_000_000
    """Elements per gradient-reduction bucket."""
    param_persistence_threshold: int = 100_000
    """ZeRO-3: parameters smaller than this many elements stay whole on every rank."""

    def validate(self) -> None:
        """A ZeRO stage that shards gradients (2) or parameters (3)."""
        if self.stage not in (2, 3):
            raise ConfigError(f"deepspeed.stage={self.stage}: use 2 (conf/deepspeed/zero2) or 3 (zero3)")
        if self.reduce_bucket_size < 1 or self.param_persistence_threshold < 0:
            raise ConfigError("deepspeed.reduce_bucket_size must be >= 1, param_persistence_threshold >= 0")
