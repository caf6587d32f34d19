"""`torchrun --nproc_per_node=2 train.py experiment=paper_shape_smoke`: the paper's stack at the real vocabulary.

A random Qwen3-1.7B-Base shape cut to 2 layers of width 64 (151,936-row head, head dim 128, Qwen3's tokenizer,
<|endoftext|> as eos), the DAPO-Math fixture under the 3,200-token filter counted in Qwen3 tokens, vLLM rollouts
(one engine per rank, synced from the ZeRO-3 actor), math-verify in its pool, two benchmark fixtures, 3 steps;
then `hf/final` reloads with `from_pretrained` and its saved tokenizer, and generates. And the engine's memory at
V = 151,936 (the actor's chunked log-probs: tests/test_real_vocab_memory.py).

Runs in .venv-vllm (`make test` builds it).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conf_helpers import run_train_py
from test_real_vocab_memory import probe
from transformers import AutoModelForCausalLM, AutoTokenizer

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[1]
SMOKE = [
    "experiment=paper_shape_smoke",
    f"dataset.path={REPO / 'tests/fixtures/open-r1/DAPO-Math-17k-Processed'}",
    f"eval.local_root={REPO / 'tests/fixtures'}",
    "trainer.torch_threads=1",
]


def test_the_paper_stack_runs_at_the_real_vocabulary_and_exports(tmp_path: Path) -> None:
    records = run_train_py(tmp_path, SMOKE, timeout=600, ranks=2)
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    # Qwen3's tokenizer keeps the 830-token prompt (3,735 bytes) and drops the 3,411-token one (bytes would drop both)
    assert "7 rows -> 6 prompts; too long (> 3200 tokens): 1;" in (tmp_path / "train.log").read_text()
    for record in records[1:]:
        assert record["rollouts/prompts"] == 4 and record["tokens/generated"] > 0
        assert record["rollout/logprob_diff"] < 1e-4  # each rank's engine follows the partitioned actor
        assert record["reward/timeouts"] == 0
        assert all(math.isfinite(record[key]) for key in ("loss/total", "loss/grad_norm", "reward/mean"))
    for record in (records[0], records[3]):
        assert (
            0.0 <= record["eval/math500/pass@2"] <= 1.0 and 0.0 <= record["eval/gpqa_diamond/pass@2"] <= 1.0
        )

    final = tmp_path / "hf" / "final"
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert (model.config.vocab_size, model.config.head_dim, model.config.num_key_value_heads) == (
        151936,
        128,
        2,
    )
    assert (tokenizer.eos_token, tokenizer.eos_token_id, len(tokenizer)) == ("<|endoftext|>", 151643, 151669)
    prompt = tokenizer(["What is 7 * 6?"], return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    new_tokens = output[0, prompt["input_ids"].shape[1] :]
    assert 1 <= len(new_tokens) <= 6 and isinstance(tokenizer.decode(new_tokens), str)


def test_the_engine_at_the_real_vocabulary_holds_its_kv_cache_and_little_else() -> None:
    """A vLLM engine of the cut model with a 64 MiB KV cache, 8 prompts x 4 samples of 32 tokens: the process's
    peak grows by the KV cache and less than 704 MiB besides (measured: +523 MiB in all; +971 MiB with a 512 MiB
    cache: the cache is resident in full). The bound rejects vLLM's CPU default cache of 4 GiB (what
    policy.vllm.kv_cache_memory_bytes=null gives) and [samples, tokens, V] float32 logits (32 x 96 x V: 1.7 GiB)."""
    assert probe("vllm", 64)["added_mib"] < 64 + 704
