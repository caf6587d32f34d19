"""The sampler interface: which prompts a step trains on, and how much each one's advantages count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gdro.core.difficulty import DifficultyClassifier
from gdro.core.step import StepResult


@dataclass
class SamplerPlan:
    """A sampler's decision for one step.

    prompt_ids: [M] int, the batch.
    bins: [M] int, each prompt's group from the classifier (history before this step).
    bin_weights: [G] float, the data adversary's distribution q_t over groups (for the uniform
        sampler, the batch share qhat_t: the empirical distribution GRPO optimises).
    advantage_weights: [M] float, w_i multiplying prompt i's advantages (1 when not reweighting).
    """

    prompt_ids: np.ndarray
    bins: np.ndarray
    bin_weights: np.ndarray
    advantage_weights: np.ndarray


class Sampler(Protocol):
    """What `Curriculum` needs of a sampler; `conf/sampler/<name>.yaml` picks the implementation."""

    def plan(self, batch_size: int, classifier: DifficultyClassifier) -> SamplerPlan: ...

    def update(self, result: StepResult) -> None: ...

    def bin_scores(self) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
