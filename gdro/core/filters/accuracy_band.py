"""Keep a group when its accuracy lies in a band: PRIME's accuracy filter and DAPO's dynamic sampling.

A group (prompt i: n_i rollouts, c_i of them correct) has accuracy a_i = c_i / n_i. It is kept when

    inclusive: low <= a_i <= high        exclusive: low < a_i < high,

or when n_i = 1 (whatever the band). Sources:
- PRIME (verl-recipe `prime/prime_ray_trainer.py`, `filter_and_downsample`; `data.filter_accuracy`,
  `accuracy_lower_bound` 0.2, `accuracy_upper_bound` 0.8 in `prime/config/prime_trainer.yaml`) drops a
  group when mean accuracy > upper or < lower: the inclusive band [0.2, 0.8] (`conf/filter/accuracy_band.yaml`).
  PRIME oversamples once (`oversample_factor`) and keeps rejected groups when too few pass; here the
  rounds of `gdro.core.filters.base` replace that, so every trained group passes.
- DAPO's dynamic sampling (verl-recipe `dapo/dapo_ray_trainer.py`, `algorithm.filter_groups`) keeps a
  group when the std of its rewards is > 0 or it has one trajectory: for 0/1 (or +-1) rewards, the band
  (0, 1) exclusive plus the group-of-one rule (`conf/filter/dynamic_sampling.yaml`). The group-of-one
  rule is DAPO's; PRIME, whose groups all have the same n >= 2, never meets it, and we apply it in every
  band (a lone rollout has no group to compare with, so its accuracy says nothing of its signal).
a_i is computed as c_i / n_i in float64 and compared with the bounds as given (0.2 is the float 0.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdro.core.registry import FILTERS


@dataclass
class AccuracyBandConfig:
    """The band on a group's accuracy c_i / n_i; defaults: PRIME's [0.2, 0.8]."""

    low: float = 0.2
    """Lower edge of the band, in [0, 1)."""
    high: float = 0.8
    """Upper edge of the band, in (low, 1]."""
    inclusive: bool = True
    """true: keep low <= c_i/n_i <= high (PRIME); false: low < c_i/n_i < high (DAPO with 0, 1)."""

    def validate(self) -> None:
        """0 <= low < high <= 1, and a band that can reject a group; else a ValueError naming the keys."""
        if not 0.0 <= self.low < self.high <= 1.0:
            raise ValueError(f"filter.low={self.low}, filter.high={self.high}: need 0 <= low < high <= 1")
        if self.inclusive and self.low == 0.0 and self.high == 1.0:
            raise ValueError(
                "filter.low=0, filter.high=1 with filter.inclusive=true keeps every group: use filter=none, "
                "or filter.inclusive=false for dynamic sampling"
            )


@FILTERS.register("accuracy_band", config=AccuracyBandConfig)
class AccuracyBand:
    """keep_i = (a_i in the band) or n_i = 1 (module docstring)."""

    def __init__(self, config: AccuracyBandConfig | None = None) -> None:
        self.config = config or AccuracyBandConfig()
        self.config.validate()

    def keep(self, rollouts_per_prompt: np.ndarray, correct_per_prompt: np.ndarray) -> np.ndarray:
        """[m] bool for a round's n_i >= 1 and c_i (arrays [m])."""
        rollouts = np.asarray(rollouts_per_prompt, dtype=np.int64)
        if np.any(rollouts < 1):
            raise ValueError("accuracy_band: every group needs at least one rollout")
        accuracy = np.asarray(correct_per_prompt, dtype=np.float64) / rollouts
        low, high = self.config.low, self.config.high
        if self.config.inclusive:
            inside = (accuracy >= low) & (accuracy <= high)
        else:
            inside = (accuracy > low) & (accuracy < high)
        return inside | (rollouts == 1)
