"""Policy models beyond the embedded one: a pretrained causal LM (Qwen3-Base) or a random tiny Qwen3 on bytes.

`load_pretrained(config)` is `AutoModelForCausalLM.from_pretrained(hf_id)` (a hub id or a local folder
with the same files) in the configured dtype, with flash-attention 2 when it imports and sdpa otherwise,
on cuda when available; the tokenizer comes from the same id (`load_tokenizer`: padded on the left for
generation, its eos the Base model's end of text). `build_random_ascii(config)` is the smoke-test model:
`build_tiny_qwen3` on the ASCII byte tokenizer.
"""

from __future__ import annotations

import importlib.util
import logging

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from gdro.config import PretrainedModelConfig, RandomModelConfig
from gdro.models.ascii_tokenizer import build_ascii_tokenizer
from gdro.models.tiny import build_tiny_qwen3

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def resolve_device(device: str) -> torch.device:
    """`auto`: cuda when available, else cpu; anything else as torch reads it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_attention(requested: str, device: torch.device) -> str:
    """`auto`: flash_attention_2 when the package imports and the device is cuda, else sdpa."""
    if requested != "auto":
        return requested
    has_flash = importlib.util.find_spec("flash_attn") is not None
    return "flash_attention_2" if has_flash and device.type == "cuda" else "sdpa"


def load_pretrained(config: PretrainedModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model and tokenizer of `config.hf_id`, ready to train (train mode, checkpointing as configured)."""
    device = resolve_device(config.device)
    attention = resolve_attention(config.attn_implementation, device)
    tokenizer = load_tokenizer(config.hf_id, config.eos_token)
    model = AutoModelForCausalLM.from_pretrained(
        config.hf_id, dtype=DTYPES[config.dtype], attn_implementation=attention
    ).to(device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    log.info("loaded %s (%s, %s attention) on %s", config.hf_id, config.dtype, attention, device)
    return model.train(), tokenizer


def load_tokenizer(source: str, eos_token: str) -> PreTrainedTokenizerBase:
    """`AutoTokenizer.from_pretrained(source)` padded on the left, with `eos_token` as its eos.

    A Base model ends its text with its own end-of-text token (Qwen3: `<|endoftext|>`, 151643), but an
    instruct tokenizer_config names the end of a chat turn (`<|im_end|>`): the engines stop at the
    tokenizer's eos, so it is set here whichever the files name. Without a pad token, eos pads."""
    tokenizer = AutoTokenizer.from_pretrained(source, padding_side="left")
    if eos_token not in tokenizer.get_vocab():
        raise ValueError(f"model.eos_token={eos_token!r} is not one token of the tokenizer of {source}")
    tokenizer.eos_token = eos_token
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_random_ascii(config: RandomModelConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A random tiny Qwen3 of the configured shape on the ASCII byte tokenizer."""
    tokenizer = build_ascii_tokenizer()
    model = build_tiny_qwen3(len(tokenizer), seed=config.seed, tokenizer=tokenizer, **config.architecture())
    model = model.to(device=resolve_device(config.device), dtype=DTYPES[config.dtype])
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train(), tokenizer


def stop_token_ids(tokenizer: PreTrainedTokenizerBase, stop_tokens: list[str]) -> tuple[int, ...]:
    """Ids of the configured stop tokens that the tokenizer knows as single tokens (others are skipped)."""
    vocabulary = tokenizer.get_vocab()
    return tuple(vocabulary[token] for token in stop_tokens if token in vocabulary)
