"""Rollout-GDRO, the compute adversary (spec section 4): a shadow-price controller over per-bin arms.

Arms n in {n_min, ..., n_max}. Per bin b, an EMA (weight beta on the new value) Ubar_b(n) of each arm's
utility; at decision time
    score_b(n) = Ubar_b(n) - mu (n - nbar),
    p_b(n)     = (1 - gamma) softmax(eta score_b)(n) + gamma / |arms|,
and the joint choice maximises sum_b count_b log p_b(n_b) subject to sum_b count_b n_b = nbar M exactly
(dynamic programme; ties to the arm nearest nbar). The shadow price moves from the UNconstrained
preference, nbar_greedy = count-weighted mean of argmax_n p_b(n):
    mu_{t+1} = max(0, mu_t + alpha (nbar_greedy - nbar)).
Utilities (`utility`):
  `surrogate`   U_b = -(mean per-prompt surrogate loss of bin b), for the arm played only (bandit);
  `informative` U_b(n) = mean over bin b's prompts of 1 - p1(x)^n - (1 - p1(x))^n, the expected fraction
                of groups with both rewards (non-zero advantage), for every arm at once (full information).
An arm never observed in a bin scores the mean of that bin's observed arms (0 when none is).
Bin labels come from each prompt's own history; advantages are not reweighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gdro.core.allocators.budget import BudgetConfig, complete_budget, exact_budget_arms
from gdro.core.bin_stats import bin_counts, mixed_softmax
from gdro.core.step import StepResult

UTILITIES = ("surrogate", "informative")


@dataclass
class RolloutGDROConfig:
    """Defaults are our preset `rollout_gdro` (informative, alpha 0.005); the paper's is surrogate, 0.05."""

    utility: Literal["surrogate", "informative"] = "informative"
    eta: float = 0.65
    gamma: float = 0.01
    beta: float = 0.4
    alpha: float = 0.005  # step size of the shadow price mu
    initial_mu: float = 0.0

    def validate(self) -> None:
        """Fail early with the key and accepted values."""
        if self.utility not in UTILITIES:
            raise ValueError(f"allocator.utility={self.utility!r}: use one of {UTILITIES}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"allocator.gamma={self.gamma}: must lie in [0, 1]")
        if not 0.0 < self.beta <= 1.0:
            raise ValueError(f"allocator.beta={self.beta}: must lie in (0, 1]")
        if self.alpha < 0 or self.initial_mu < 0:
            raise ValueError("allocator.alpha and allocator.initial_mu must be >= 0")


def informative_utility(success_rate: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """U(x, n) = 1 - p^n - (1 - p)^n: probability that n rollouts of x disagree; [M, A]."""
    p = success_rate[:, None]
    return 1.0 - p ** arms[None, :] - (1.0 - p) ** arms[None, :]


class RolloutGDROAllocator:
    """Exponential weights over rollout arms per bin, priced by mu so the mean budget is nbar."""

    def __init__(
        self, num_groups: int, budget: BudgetConfig | None = None, config: RolloutGDROConfig | None = None
    ) -> None:
        self.num_groups = int(num_groups)
        self.budget = budget or BudgetConfig()
        self.config = config or RolloutGDROConfig()
        self.config.validate()
        self.budget.validate()
        self.arms = np.arange(self.budget.n_min, self.budget.n_max + 1)
        self.utility = np.zeros((self.num_groups, len(self.arms)))  # Ubar_b(n)
        self.observed = np.zeros((self.num_groups, len(self.arms)), dtype=bool)
        self.mu = float(self.config.initial_mu)
        self.arm_probs = np.full((self.num_groups, len(self.arms)), 1.0 / len(self.arms))  # last p_b(n)

    @property
    def shadow_price(self) -> float | None:
        """mu."""
        return self.mu

    def arm_scores(self) -> np.ndarray:
        """score_b(n) = Ubar_b(n) - mu (n - nbar), unobserved arms at their bin's observed mean; [G, A]."""
        seen = self.observed.sum(axis=1, keepdims=True)
        bin_mean = np.where(
            seen > 0, (self.utility * self.observed).sum(axis=1, keepdims=True) / np.maximum(seen, 1), 0.0
        )
        filled = np.where(self.observed, self.utility, bin_mean)
        return filled - self.mu * (self.arms[None, :] - self.budget.nbar)

    def favourite_arms(self, arm_probs: np.ndarray) -> np.ndarray:
        """argmax_n p_b(n) per bin, ties to the arm nearest nbar; [G]."""
        by_distance = np.argsort(np.abs(self.arms - self.budget.nbar), kind="stable")
        return self.arms[by_distance][np.argmax(arm_probs[:, by_distance], axis=1)]

    def allocate(self, bins: np.ndarray) -> np.ndarray:
        """[M] counts from the exact-budget DP over p_b; then mu steps toward the unconstrained preference."""
        bins = np.asarray(bins, dtype=np.int64)
        total = self.budget.total(len(bins))
        counts = bin_counts(bins, self.num_groups)
        all_arms = np.ones((self.num_groups, len(self.arms)), dtype=bool)
        self.arm_probs = mixed_softmax(self.arm_scores(), all_arms, self.config.eta, self.config.gamma)
        log_prob = np.log(self.arm_probs)
        per_bin = exact_budget_arms(counts, self.arms, log_prob, total, self.budget.nbar)
        rollouts = complete_budget(bins, per_bin, self.arms, log_prob, total)
        greedy_mean = float((counts * self.favourite_arms(self.arm_probs)).sum() / len(bins))
        self.mu = max(0.0, self.mu + self.config.alpha * (greedy_mean - self.budget.nbar))
        return rollouts

    def update(self, result: StepResult) -> None:
        """Ubar_b(n) <- EMA of this step's utilities: every arm (informative) or the arms played (surrogate)."""
        bins = np.asarray(result.bins, dtype=np.int64)
        if self.config.utility == "informative":
            p1 = np.asarray(result.success_rate, dtype=np.float64)
            pooled = np.bincount(
                bins, weights=result.correct_per_prompt, minlength=self.num_groups
            ) / np.maximum(
                np.bincount(bins, weights=result.rollouts_per_prompt, minlength=self.num_groups), 1
            )
            p1 = np.where(np.isnan(p1), pooled[bins], p1)
            per_prompt = informative_utility(p1, self.arms)  # [M, A]
            one_hot = (bins[None, :] == np.arange(self.num_groups)[:, None]).astype(np.float64)  # [G, M]
            cell_sums = one_hot @ per_prompt
            cell_counts = np.repeat(bin_counts(bins, self.num_groups)[:, None], len(self.arms), axis=1)
        else:
            if result.surrogate_loss is None:
                raise ValueError(
                    "allocator.utility=surrogate needs per-prompt surrogate losses from the trainer; "
                    "use allocator.utility=informative with a policy that provides none"
                )
            arm_index = np.asarray(result.rollouts_per_prompt, dtype=np.int64) - self.budget.n_min
            cell_sums = np.zeros((self.num_groups, len(self.arms)))
            cell_counts = np.zeros((self.num_groups, len(self.arms)))
            np.add.at(cell_sums, (bins, arm_index), -np.asarray(result.surrogate_loss, dtype=np.float64))
            np.add.at(cell_counts, (bins, arm_index), 1.0)
        played = cell_counts > 0
        new = cell_sums / np.maximum(cell_counts, 1)
        beta = self.config.beta
        blended = np.where(self.observed, (1.0 - beta) * self.utility + beta * new, new)
        self.utility = np.where(played, blended, self.utility)
        self.observed |= played

    def state_dict(self) -> dict[str, Any]:
        """Arm utilities, which arms were observed, mu and the last arm distribution."""
        return {
            "utility": self.utility.tolist(),
            "observed": self.observed.tolist(),
            "mu": self.mu,
            "arm_probs": self.arm_probs.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        self.utility = np.array(state["utility"], dtype=np.float64)
        self.observed = np.array(state["observed"], dtype=bool)
        self.mu = float(state["mu"])
        self.arm_probs = np.array(state["arm_probs"], dtype=np.float64)
