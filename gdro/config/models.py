"""`conf/model/`: which policy model a run trains.

- `tiny` (TinyModelConfig): the embedded 0.5M-parameter Qwen3, warm-started on the synthetic task;
- `tiny_ascii` (RandomModelConfig): a tiny random Qwen3 on the ASCII byte tokenizer (smoke tests);
- `qwen3_1.7b`, `qwen3_4b`, `qwen3_8b` (PretrainedModelConfig): `from_pretrained` of a hub id or a
  local folder, bf16, gradient checkpointing, flash-attention 2 when importable else sdpa.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gdro.config.checking import ConfigError

ARCHITECTURE_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
)
"""The shape of a tiny Qwen3, as `gdro.models.tiny.build_tiny_qwen3` takes it."""


@dataclass
class WarmStartConfig:
    """Supervised warm start: AdamW, linear warm-up then cosine decay to 0, gradient clip 1.0.

    Levels are drawn with p(l) proportional to 1 / (l + 1)^level_mix_power, each at least
    level_floor (then renormalised); problems are fresh random chains, never an eval prompt (they
    may repeat RL train prompts: level 0 has only 1,800 distinct problems). The targets are written
    by a careless demonstrator that forgets each carry with probability carry_slip_rate
    (`gdro.data.synthetic.careless_values`); 0 gives the correct worked solutions.
    """

    steps: int = 900
    """Supervised warm-start steps."""
    batch_size: int = 64
    """Problems per warm-start step."""
    lr: float = 2e-3
    """AdamW peak learning rate (warm-up, then cosine decay to 0)."""
    warmup_steps: int = 20
    """Steps of linear learning-rate warm-up."""
    weight_decay: float = 0.01
    """AdamW's decoupled weight decay."""
    level_mix_power: float = 1.0
    """Levels drawn with p(l) proportional to 1 / (l + 1)^level_mix_power."""
    level_floor: float = 0.05
    """Least probability of each level before renormalising."""
    carry_slip_rate: float = 0.6
    """Probability that the careless demonstrator forgets a carry; 0: correct solutions."""
    seed: int = 0
    """Seed of the warm start's problems and initialisation."""


@dataclass
class TinyModelConfig:
    """`conf/model/tiny.yaml`: the tiny Qwen3's shape and its warm-start recipe."""

    name: str = "tiny"
    """The choice (conf/model/tiny.yaml)."""
    hidden_size: int = 128
    """Width of the tiny Qwen3's residual stream."""
    intermediate_size: int = 512
    """Width of its MLP."""
    num_hidden_layers: int = 2
    """Transformer layers."""
    num_attention_heads: int = 4
    """Query heads (divides hidden_size)."""
    num_key_value_heads: int = 2
    """Key/value heads (divides num_attention_heads)."""
    max_position_embeddings: int = 256
    """Longest sequence in tokens (prompt + completion)."""
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)
    """The supervised warm start on the synthetic task."""

    def architecture(self) -> dict[str, int]:
        """Keyword arguments of `build_tiny_qwen3`."""
        return {name: getattr(self, name) for name in ARCHITECTURE_KEYS}

    def validate(self) -> None:
        """Head counts must divide; the warm start's slip rate is a probability below 1."""
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("model.hidden_size must be a multiple of model.num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("model.num_attention_heads must be a multiple of model.num_key_value_heads")
        if not 0.0 <= self.warm_start.carry_slip_rate < 1.0:
            raise ConfigError(
                "model.warm_start.carry_slip_rate must be in [0, 1), e.g. 0.6 (0: correct demonstrations)"
            )


@dataclass
class RandomModelConfig:
    """`conf/model/tiny_ascii.yaml`: a random Qwen3 of this shape on the ASCII byte tokenizer (no warm start)."""

    name: str = "tiny_ascii"
    """The choice (conf/model/tiny_ascii.yaml)."""
    hidden_size: int = 64
    """Width of the tiny Qwen3's residual stream."""
    intermediate_size: int = 128
    """Width of its MLP."""
    num_hidden_layers: int = 2
    """Transformer layers."""
    num_attention_heads: int = 4
    """Query heads (divides hidden_size)."""
    num_key_value_heads: int = 2
    """Key/value heads (divides num_attention_heads)."""
    max_position_embeddings: int = 1024
    """Longest sequence in tokens (prompt + completion)."""
    seed: int = 0
    """Seed of the random initialisation."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Parameter dtype."""
    device: str = "auto"
    """Torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:N."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, more compute)."""

    def architecture(self) -> dict[str, int]:
        """Keyword arguments of `build_tiny_qwen3`."""
        return {name: getattr(self, name) for name in ARCHITECTURE_KEYS}

    def validate(self) -> None:
        """Head counts must divide."""
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("model: hidden_size % num_attention_heads and heads % kv heads must be 0")


@dataclass
class PretrainedModelConfig:
    """`conf/model/qwen3_*.yaml`: a causal LM loaded with `from_pretrained(hf_id)` (hub id or local folder).

    attn_implementation `auto`: flash_attention_2 when the package imports, else sdpa. device `auto`:
    cuda when available, else cpu. The base tokenizer's eos `<|endoftext|>` ends a completion; so do
    `stop_tokens` (Qwen3: `<|im_end|>`, which a base model may still emit).
    """

    name: str
    """The choice, e.g. qwen3_8b (each conf/model/qwen3_*.yaml sets it)."""
    hf_id: str
    """Hub id or local folder of the model, e.g. Qwen/Qwen3-8B-Base."""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Parameter dtype of the actor."""
    attn_implementation: Literal["auto", "flash_attention_2", "sdpa", "eager"] = "auto"
    """Attention kernel; auto: flash_attention_2 when importable, else sdpa."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass (less memory, more compute)."""
    device: str = "auto"
    """Torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:N."""
    stop_tokens: list[str] = field(default_factory=lambda: ["<|im_end|>"])
    """Tokens that end a completion besides eos (a base model may still close a chat turn)."""

    def validate(self) -> None:
        """A non-empty model id."""
        if not self.hf_id:
            raise ConfigError("model.hf_id must name a hub id or a local folder, e.g. Qwen/Qwen3-1.7B-Base")
