"""What the controllers see of one training step: the batch's outcome, prompt by prompt.

Every array is indexed by the batch position i = 0..M-1; prompts are identified by their stable id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class StepResult:
    """Outcome of step t, handed to every controller's `update` after the classifier recorded it.

    prompt_ids: [M] int, the dataset ids of the batch.
    bins: [M] int, the group each prompt was classified into BEFORE this step's results.
    rollouts_per_prompt: [M] int, n_i.
    correct_per_prompt: [M] int, c_i (rollouts with reward +1).
    success_rate: [M] float, the windowed per-rollout success rate p1(x_i), this step included.
    surrogate_loss: [M] float or None, l(x_i): mean over x_i's rollouts of the per-response clipped
        policy-gradient loss with unweighted advantages, averaged over the step's PPO mini-batches.
    """

    prompt_ids: np.ndarray
    bins: np.ndarray
    rollouts_per_prompt: np.ndarray
    correct_per_prompt: np.ndarray
    success_rate: np.ndarray
    surrogate_loss: np.ndarray | None = None

    @property
    def batch_size(self) -> int:
        """M."""
        return len(self.prompt_ids)
