"""A tiny but real Qwen3 (transformers' own modelling code), randomly initialised from a seed."""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase, Qwen3Config, Qwen3ForCausalLM


def build_tiny_qwen3(
    vocab_size: int,
    hidden_size: int = 128,
    intermediate_size: int = 512,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    max_position_embeddings: int = 256,
    seed: int = 0,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Qwen3ForCausalLM:
    """A float32 Qwen3ForCausalLM with tied embeddings and head_dim = hidden_size / num_attention_heads.

    The weights depend only on the arguments and `seed`; torch's global RNG is left untouched.
    With a `tokenizer`, its pad/bos/eos ids go into the config (and so the generation config).
    """
    if hidden_size % num_attention_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by {num_attention_heads} heads")
    special_ids = {}
    if tokenizer is not None:
        special_ids = {
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        head_dim=hidden_size // num_attention_heads,
        max_position_embeddings=max_position_embeddings,
        max_window_layers=num_hidden_layers,
        tie_word_embeddings=True,
        **special_ids,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    return model
