"""Peak resident memory of one job at Qwen3's real vocabulary (V = 151,936), run in a fresh process by the tests.

    python tests/memory_probe.py logprobs CHUNK_TOKENS COMPLETION_TOKENS
    python tests/memory_probe.py vllm KV_CACHE_MIB

Prints one JSON line: `before_mib` (the process's resident memory once the model and inputs are built),
`peak_mib` (its peak resident memory during the job) and their difference `added_mib`. The peak is the
kernel's high-water mark (`VmHWM` of /proc/self/status), reset when the job starts (writing 5 to
/proc/self/clear_refs), so a transient peak while building the model (the tokenizer's parse, the random
init) does not hide the job's. The
model is `model=qwen3_shape` (1.7b) cut to 2 layers of width 64: its 151,936-row head is the real one, so
the [tokens, V] tensors the job makes are the real size.
- logprobs: `completion_logprobs` over 4 rows of 64 prompt and COMPLETION_TOKENS / 4 completion tokens, then
  the backward of their sum, at CHUNK_TOKENS rows per head call;
- vllm: a `VLLMEngine` (vLLM imported first; max_model_len 4096) with a KV cache of KV_CACHE_MIB built from that
  model, then 8 prompts x 4 samples of 32 tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from gdro.config import Qwen3ShapeConfig
from gdro.models.qwen3_shape import build_qwen3_shape

CUT = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
       "num_key_value_heads": 2}  # fmt: skip


def status_mib(field: str) -> float:
    """A `Vm*` line of /proc/self/status (kB) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def start_peak() -> float:
    """Reset the high-water mark to the resident memory now, and return that."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_mib("VmRSS")


def token_rows(count: int, length: int, generator: torch.Generator) -> list[list[int]]:
    return [torch.randint(0, 151643, (length,), generator=generator).tolist() for _ in range(count)]


def main(argv: list[str]) -> dict[str, float]:
    torch.set_num_threads(1)
    model, tokenizer = build_qwen3_shape(Qwen3ShapeConfig(size="1.7b", device="cpu", **CUT))
    generator = torch.Generator().manual_seed(0)
    if argv[0] == "logprobs":
        from gdro.train.actor import completion_logprobs

        chunk_tokens, completion_tokens = int(argv[1]), int(argv[2])
        prompts, completions = token_rows(4, 64, generator), token_rows(4, completion_tokens // 4, generator)
        before = start_peak()
        logprobs, mask = completion_logprobs(model, prompts, completions, 1.0, chunk_tokens)
        (logprobs * mask).sum().backward()
    else:
        from gdro.config.runtime import VLLMConfig
        from gdro.engines.base import Decoding
        from gdro.engines.vllm import VLLMEngine, import_vllm

        import_vllm()  # vLLM's own modules are not the engine's memory
        before = start_peak()
        settings = VLLMConfig(max_model_len=4096, kv_cache_memory_bytes=int(argv[1]) << 20)
        engine = VLLMEngine.from_actor(model, tokenizer, settings)
        engine.generate(
            token_rows(8, 64, generator), [4] * 8, Decoding(max_new_tokens=32), seeds=list(range(8))
        )
    peak = status_mib("VmHWM")
    return {"before_mib": before, "peak_mib": peak, "added_mib": peak - before}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
