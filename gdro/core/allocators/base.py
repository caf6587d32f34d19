"""The allocator interface: how many rollouts n_i each prompt of the batch gets."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from gdro.core.step import StepResult


class Allocator(Protocol):
    """What `Curriculum` needs of an allocator; `conf/allocator/<name>.yaml` picks the implementation.

    `allocate` returns [M] ints with sum exactly nbar * M, each within [n_min, n_max], or raises a
    ValueError naming the setting to change.
    """

    def allocate(self, bins: np.ndarray) -> np.ndarray: ...

    def update(self, result: StepResult) -> None: ...

    @property
    def shadow_price(self) -> float | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
