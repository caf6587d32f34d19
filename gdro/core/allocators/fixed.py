"""GRPO's allocation: every prompt gets nbar rollouts (n_i = nbar)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdro.core.allocators.budget import BudgetConfig, integerise
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import ALLOCATORS
from gdro.core.step import StepResult


@ALLOCATORS.register("fixed")
class FixedAllocator:
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

    def update(self, result: StepResult) -> None:
        """No state."""

    @property
    def shadow_price(self) -> float | None:
        """No shadow price."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """No state."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """No state."""
