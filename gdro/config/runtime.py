"""`conf/policy/` and `conf/logger/`: where rollouts come from and where records go."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gdro.config.checking import ConfigError


@dataclass
class VLLMConfig:
    """`policy.vllm`: the in-process vLLM engine of `policy.engine=vllm` (`gdro.engines.vllm`)."""

    dtype: str | None = None
    """Weights' dtype in vLLM (a vLLM dtype name, e.g. bfloat16); null: the actor's."""
    max_model_len: int | None = None
    """Longest sequence in tokens vLLM plans for; null: the model config's."""
    gpu_memory_utilization: float = 0.3
    """Fraction of the whole GPU's memory vLLM may take (KV cache sizing)."""
    kv_cache_memory_bytes: int | None = None
    """KV cache size in bytes; null: vLLM sizes it (GPU: gpu_memory_utilization; CPU: 4 GiB)."""
    enable_sleep_mode: bool = False
    """GPU only: free vLLM's weights between generations (restored by the weight sync)."""
    sleep_level: int = 2
    """Sleep mode level: 1 offloads the weights to CPU memory, 2 drops them."""
    enforce_eager: bool | None = None
    """Run vLLM eagerly; null: eager on CPU (compiling costs 30-70 s), compiled on GPU."""

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
    """`conf/policy/hf.yaml`: a transformers actor; rollouts from the actor itself or from vLLM."""

    name: str = "hf"
    """The choice (conf/policy/hf.yaml)."""
    engine: Literal["hf", "vllm"] = "hf"
    """Rollout engine: the transformers actor itself (hf), or an in-process vLLM (vllm)."""
    generation_batch_size: int = 256
    """Sequences per sampling batch (engine=hf)."""
    decode: Literal["shrinking", "generate"] = "shrinking"
    """engine=hf's sampling loop: each prompt encoded once and a row leaving the batch at its stop token
    (shrinking), or transformers `generate` (same distribution, other draws)."""
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    """The in-process vLLM engine (engine=vllm)."""

    def validate(self) -> None:
        """Positive batch."""
        if self.generation_batch_size < 1:
            raise ConfigError("policy.generation_batch_size must be >= 1")


@dataclass
class SimPolicyConfig:
    """`conf/policy/sim.yaml`: the learning simulator instead of a model."""

    name: str = "sim"
    """The choice (conf/policy/sim.yaml)."""
    num_prompts: int = 2048
    """N, the simulator's training prompts."""
    num_levels: int = 10
    """L, latent difficulty levels of the prompts."""
    lr: float = 0.05
    """Skill gain per unit of mean |advantage| per rollout."""
    initial_skill: float = 2.0
    """Starting skill (level 0 starts near p = 0.88, level 2 near 0.5, level 9 near 0)."""
    level_jitter: float = 0.5
    """Std of a prompt's difficulty around its level's, in skill units."""
    spread: float = 1.0
    """Transfer kernel exp(-spread |d - d'|) of a skill update across difficulties."""
    eval_prompts_per_level: int = 64
    """Held-out prompts per latent level, scored by the skill model."""
    step_seconds: float = 0.0
    """Wall-clock seconds each step sleeps: rehearses a cluster job's timing; changes no metric."""

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

    name: Literal["wandb", "none"]
    """The choice (its file sets it): W&B, or metrics.jsonl only."""
    project: str = "gdro-rl"
    """W&B project."""
    entity: str | None = None
    """W&B entity (user or team); null: the account's default."""
    mode: Literal["offline", "online", "disabled"] = "offline"
    """W&B mode: offline (files synced later), online, or disabled."""
