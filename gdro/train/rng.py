"""Side streams of randomness: evaluation (and anything else that samples outside training) never draws
from the training stream, so changing `trainer.eval_every` cannot change the training trajectory (docs/algorithm.md §8).

`isolated_rng(seed, step, purpose)` saves torch's global RNG state (CPU and every visible CUDA device),
seeds it from (seed, step, purpose) and restores the saved state on exit: the code inside is reproducible
on its own, and the training stream continues exactly as if it had never run.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def side_stream_seed(seed: int, step: int, purpose: str) -> int:
    """A 63-bit seed from SeedSequence([seed, step, crc32(purpose)]): distinct per run seed, step and purpose."""
    entropy = [int(seed), int(step), zlib.crc32(purpose.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


@contextmanager
def isolated_rng(seed: int, step: int, purpose: str) -> Iterator[None]:
    """Run the body on its own torch RNG stream derived from (seed, step, purpose); restore the caller's."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(side_stream_seed(seed, step, purpose))
        yield
