"""Square-root-optimal (Neyman) allocation, the ablation of Rollout-GDRO (docs/algorithm.md §4, Theorem 4.2).

v_b = EMA (beta 0.2) of the batch mean over bin b's prompts of p1(x)(1 - p1(x)), floored at 0.01, with
prior 0.25 for a bin never seen. The continuous optimum of
    min sum_b qhat(b) v_b / n_b  s.t.  sum_b qhat(b) n_b = nbar
is n*_b = nbar sqrt(v_b) / sum_j qhat(j) sqrt(v_j) (= sqrt(v_b / mu)). With bounds, n_b = clip(lambda
sqrt(v_b), n_min, n_max) with lambda solving the budget exactly; per-prompt targets are then rounded by
largest remainder so the batch total is exactly nbar * M.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gdro.core.allocators.budget import BudgetConfig, integerise
from gdro.core.bin_stats import bin_counts, bin_means, ema_update
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import ALLOCATORS
from gdro.core.step import StepResult


@dataclass
class SqrtOptimalConfig:
    """EMA weight on the new variance, its floor, and the prior of an unseen bin."""

    beta: float = 0.2
    """EMA weight on the bin's new variance p1 (1 - p1), in (0, 1]."""
    variance_floor: float = 0.01
    """Least variance v_b of a bin."""
    variance_prior: float = 0.25
    """Variance of a bin never seen (0.25: p1 = 0.5)."""


def clipped_scale_solution(
    counts: np.ndarray, root_v: np.ndarray, n_min: int, n_max: int, total: int
) -> np.ndarray:
    """n_b = clip(lambda sqrt(v_b), n_min, n_max) with sum_b count_b n_b = total, solved exactly; [G].

    f(lambda) = sum_b count_b clip(lambda s_b) is piecewise linear and non-decreasing; evaluate it at
    every breakpoint n_min/s_b, n_max/s_b and interpolate inside the segment holding `total`.
    """
    present = counts > 0
    s, c = root_v[present], counts[present]
    breakpoints = np.unique(np.concatenate([n_min / s, n_max / s]))
    spent = (np.clip(breakpoints[:, None] * s[None, :], n_min, n_max) * c[None, :]).sum(axis=1)
    right = min(int(np.searchsorted(spent, total, side="left")), len(spent) - 1)
    if right == 0 or spent[right] <= total:
        lam = float(breakpoints[right])
    else:  # spent[right - 1] < total < spent[right]: f is linear in between
        t = (total - spent[right - 1]) / (spent[right] - spent[right - 1])
        lam = float(breakpoints[right - 1] + t * (breakpoints[right] - breakpoints[right - 1]))
    solution = np.zeros(len(counts))
    solution[present] = np.clip(lam * s, n_min, n_max)
    return solution


@ALLOCATORS.register("sqrt_optimal", config=SqrtOptimalConfig)
class SqrtOptimalAllocator:
    """Neyman allocation n_b proportional to sqrt(v_b) under the exact budget."""

    def __init__(
        self, num_groups: int, budget: BudgetConfig | None = None, config: SqrtOptimalConfig | None = None
    ) -> None:
        self.num_groups = int(num_groups)
        self.budget = budget or BudgetConfig()
        self.config = config or SqrtOptimalConfig()
        self.variance = np.full(self.num_groups, np.nan)  # EMA of p1(1 - p1); NaN = bin never seen

    def bin_variance(self) -> np.ndarray:
        """v_b used for allocation: EMA floored at `variance_floor`, `variance_prior` where unseen; [G]."""
        floored = np.maximum(self.variance, self.config.variance_floor)
        return np.where(np.isnan(self.variance), self.config.variance_prior, floored)

    def allocate(
        self,
        bins: np.ndarray,
        prompt_ids: np.ndarray | None = None,
        classifier: DifficultyClassifier | None = None,
    ) -> np.ndarray:
        """[M] counts: the bounded Neyman solution per bin, integerised to the exact total (bins only)."""
        total = self.budget.total(len(bins))
        counts = bin_counts(bins, self.num_groups)
        per_bin = clipped_scale_solution(
            counts, np.sqrt(self.bin_variance()), self.budget.n_min, self.budget.n_max, total
        )
        return integerise(per_bin[bins], self.budget.n_min, self.budget.n_max, total)

    def update(self, result: StepResult) -> None:
        """v_b <- EMA of the batch mean of p1(1 - p1) over bin b's prompts."""
        p1 = result.success_rate
        self.variance = ema_update(
            self.variance, bin_means(p1 * (1.0 - p1), result.bins, self.num_groups), self.config.beta
        )

    @property
    def shadow_price(self) -> float | None:
        """Implicit in lambda; not a controller state."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """The variance EMAs (None for unseen bins)."""
        return {"variance": [None if np.isnan(v) else float(v) for v in self.variance]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the variance EMAs."""
        self.variance = np.array([np.nan if v is None else v for v in state["variance"]], dtype=np.float64)
