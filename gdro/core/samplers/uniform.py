"""GRPO's sampler: uniform batches in epoch order, every prompt's advantages weighted 1."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdro.core.bin_stats import bin_counts
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import SAMPLERS
from gdro.core.samplers.base import SamplerPlan
from gdro.core.samplers.data_order import EpochOrder
from gdro.core.step import StepResult


@SAMPLERS.register("uniform")
class UniformSampler:
    """Uniform sampling without replacement within an epoch (spec: GRPO baseline)."""

    def __init__(self, num_prompts: int, num_groups: int, seed: int = 0) -> None:
        self.num_groups = int(num_groups)
        self.order = EpochOrder(num_prompts, seed)

    def plan(self, batch_size: int, classifier: DifficultyClassifier) -> SamplerPlan:
        """Next batch in data order; q is the batch share qhat_t(b) = |bin b in batch| / M."""
        prompt_ids = self.order.next_batch(batch_size)
        bins = classifier.classify(prompt_ids)
        share = bin_counts(bins, self.num_groups) / batch_size
        return SamplerPlan(prompt_ids, bins, share, np.ones(batch_size))

    def update(self, result: StepResult) -> None:
        """GRPO keeps no per-bin state."""

    def bin_scores(self) -> np.ndarray:
        """No scores: NaN per group."""
        return np.full(self.num_groups, np.nan)

    def state_dict(self) -> dict[str, Any]:
        """The data order."""
        return {"order": self.order.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the data order."""
        self.order.load_state_dict(state["order"])
