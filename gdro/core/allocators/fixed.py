"""GRPO's allocation: every prompt gets nbar rollouts (n_i = nbar)."""

from __future__ import annotations

import numpy as np

from gdro.core.allocators.base import StatelessAllocator
from gdro.core.allocators.budget import BudgetConfig, integerise
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import ALLOCATORS


@ALLOCATORS.register("fixed")
class FixedAllocator(StatelessAllocator):
    """n_i = nbar; for a non-integer nbar, floor(nbar) with the first prompts rounded up so the sum is exact."""

    def __init__(self, num_groups: int, budget: BudgetConfig | None = None) -> None:
        self.num_groups = int(num_groups)
        self.budget = budget or BudgetConfig()

    def allocate(
        self,
        bins: np.ndarray,
        prompt_ids: np.ndarray | None = None,
        classifier: DifficultyClassifier | None = None,
    ) -> np.ndarray:
        """[M] counts, all nbar (floor/ceil for non-integer nbar), summing to nbar * M; ids and classifier unused."""
        total = self.budget.total(len(bins))
        return integerise(np.full(len(bins), self.budget.nbar), self.budget.n_min, self.budget.n_max, total)
