"""No filter: every generated group is trained, in one round of M prompts (GRPO)."""

from __future__ import annotations

import numpy as np

from gdro.core.registry import FILTERS


@FILTERS.register("none")
class KeepAll:
    """keep_i = True for every group: one round of M prompts gives the step's batch as it is."""

    def keep(self, rollouts_per_prompt: np.ndarray, correct_per_prompt: np.ndarray) -> np.ndarray:
        """[m] all True."""
        return np.ones(len(rollouts_per_prompt), dtype=bool)
