"""`conf/policy/` and `conf/logger/`: where rollouts come from and where records go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gdro.config.checking import ConfigError


@dataclass
class VLLMConfig:
    """`policy.vllm`: the in-process vLLM engine of `policy.engine=vllm` (`gdro.engines.vllm`).

    dtype null: the actor's dtype. max_model_len null: the model config's. kv_cache_memory_bytes null:
    vLLM sizes the KV cache (GPU: from gpu_memory_utilization, a fraction of the whole card; CPU: 4 GiB).
    enforce_eager null: eager on CPU (compiling even the tiny model costs 30-70 s), compiled on GPU.
    Sleep mode (GPU only): level 1 offloads the weights to CPU memory, level 2 drops them (the sync
    after every step restores them).
    """

    dtype: str | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.3
    kv_cache_memory_bytes: int | None = None
    enable_sleep_mode: bool = False
    sleep_level: int = 2
    enforce_eager: bool | None = None

    def validate(self) -> None:
        """Ranges."""
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("policy.vllm.gpu_memory_utilization must lie in (0, 1]")
        if self.sleep_level not in (1, 2):
            raise ConfigError(f"policy.vllm.sleep_level={self.sleep_level}: use 1 or 2")
        for name in ("max_model_len", "kv_cache_memory_bytes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"policy.vllm.{name} must be >= 1 or null")


@dataclass
class HFPolicyConfig:
    """`conf/policy/hf.yaml`: a transformers actor; rollouts from its own `generate` or from vLLM."""

    name: str = "hf"
    engine: Literal["hf", "vllm"] = "hf"  # rollout engine: transformers generate | in-process vLLM
    generation_batch_size: int = 256  # sequences per generate call (engine=hf)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

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
    eval_prompts_per_level: int = 64  # held-out prompts per latent level, scored by the skill model
    # Wall-clock seconds each step takes (sleep): rehearses a cluster job's timing (preemption, time
    # limits, status lines) with a step as slow as a model's; it changes no metric.
    step_seconds: float = 0.0

    def validate(self) -> None:
        """Sizes."""
        if self.num_prompts < 1 or self.num_levels < 1 or self.eval_prompts_per_level < 1:
            raise ConfigError(
                "policy.num_prompts, policy.num_levels and policy.eval_prompts_per_level must be >= 1"
            )
        if self.step_seconds < 0:
            raise ConfigError(f"policy.step_seconds={self.step_seconds} must be >= 0")


@dataclass
class LoggerConfig:
    """`conf/logger/*.yaml`: W&B (offline by default) or metrics.jsonl only."""

    name: Literal["wandb", "none"]  # the choice (its file sets it)
    project: str = "gdro-rl"
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] = "offline"  # offline | online | disabled
