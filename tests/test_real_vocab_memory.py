"""Memory at Qwen3's real vocabulary (V = 151,936) on the CPU: the chunked log-probs of `gdro.train.actor`.

Each figure is the peak RSS the job adds over the resident memory at its start (`tests/memory_probe.py`, VmHWM),
on `model=qwen3_shape` (1.7b) cut to 2 layers of width 64, so every [tokens, V] tensor is the real size. The
engine's KV cache is measured in .venv-vllm (tests/test_paper_shape_smoke.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

V = 151936
FLOAT32 = 4
MIB = 1 << 20
REPO = Path(__file__).resolve().parents[1]


def probe(*args: str | int) -> dict[str, float]:
    """tests/memory_probe.py ARGS in a fresh process: its before/peak/added MiB."""
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "memory_probe.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_chunked_logprobs_stay_within_a_few_chunks_of_the_real_head() -> None:
    """512 completion tokens, forward and backward: at 64 rows a head call the peak grows by less than 4 chunks of
    [64, V] float32 logits (37 MiB each) plus 64 MiB (measured: +165 MiB); the one-call variant, the [512, V] logits
    at once (297 MiB each), breaks that bound (measured: +910 MiB)."""
    bound = 4 * 64 * V * FLOAT32 / MIB + 64
    chunked = probe("logprobs", 64, 512)["added_mib"]
    assert chunked < bound, (chunked, bound)
    assert probe("logprobs", 512, 512)["added_mib"] > bound
