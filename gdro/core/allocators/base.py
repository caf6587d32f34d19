"""The allocator interface: how many rollouts n_i each prompt of the batch gets."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from gdro.core.difficulty import DifficultyClassifier
from gdro.core.step import StepResult


class Allocator(Protocol):
    """What `Curriculum` needs of an allocator; `conf/allocator/<name>.yaml` picks the implementation.

    `allocate` returns [M] ints with sum exactly nbar * M, each within [n_min, n_max], or raises a
    ValueError naming the setting to change. It gets the batch's bins [M] and, from `Curriculum.plan`, the
    prompt ids [M] and the difficulty classifier (history before this step), for an allocator that reads
    per-prompt estimates (`knapsack`); the per-bin allocators ignore both, so callers without a history
    (unit tests) may leave them out.
    """

    def allocate(
        self,
        bins: np.ndarray,
        prompt_ids: np.ndarray | None = None,
        classifier: DifficultyClassifier | None = None,
    ) -> np.ndarray: ...

    def update(self, result: StepResult) -> None: ...

    @property
    def shadow_price(self) -> float | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class StatelessAllocator:
    """The part of `Allocator` an allocator without state of its own shares: no update, no shadow price,
    an empty state (the curriculum checkpoints the classifier, which holds any history it reads)."""

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
