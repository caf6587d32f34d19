"""Epoch-shuffled data order: each epoch is a fresh permutation of the N prompt ids, read M at a time."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdro.core.state import decode_array, encode_array, restore_rng, rng_state


class EpochOrder:
    """Draws batches of distinct ids without replacement; a tail shorter than M is dropped (drop-last)."""

    def __init__(self, num_prompts: int, seed: int) -> None:
        self.num_prompts = int(num_prompts)
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self._permutation = self.rng.permutation(self.num_prompts)
        self._cursor = 0

    def next_batch(self, batch_size: int) -> np.ndarray:
        """The next `batch_size` ids of the current epoch, starting a new epoch when too few remain."""
        if batch_size > self.num_prompts:
            raise ValueError(
                f"trainer.prompts_per_step={batch_size} exceeds the dataset's {self.num_prompts} prompts; "
                "lower trainer.prompts_per_step"
            )
        if self._cursor + batch_size > self.num_prompts:
            self.epoch += 1
            self._permutation = self.rng.permutation(self.num_prompts)
            self._cursor = 0
        batch = self._permutation[self._cursor : self._cursor + batch_size]
        self._cursor += batch_size
        return batch.astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        """RNG, epoch, permutation and cursor: the exact data order of a resumed run."""
        return {
            "rng": rng_state(self.rng),
            "epoch": self.epoch,
            "permutation": encode_array(self._permutation),
            "cursor": self._cursor,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        restore_rng(self.rng, state["rng"])
        self.epoch = int(state["epoch"])
        self._permutation = decode_array(state["permutation"])
        self._cursor = int(state["cursor"])
