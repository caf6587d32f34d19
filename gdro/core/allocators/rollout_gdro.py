"""Rollout-GDRO, the compute adversary (docs/algorithm.md §4): a shadow-price controller over per-bin arms.

Arms n in {n_min, ..., n_max}. Per bin b, an EMA (weight beta on the new value) Ubar_b(n) of each arm's
utility; at decision time
    score_b(n) = Ubar_b(n) - mu (n - nbar),
    p_b(n)     = (1 - gamma) softmax(eta score_b)(n) + gamma / |arms|.
Utilities (`utility`):
  `surrogate`   U_b = -(mean per-prompt surrogate loss of bin b), for the arm played only (bandit);
  `informative` U_b(n) = mean over bin b's prompts of 1 - p1(x)^n - (1 - p1(x))^n, the expected fraction
                of groups with both rewards (non-zero advantage), for every arm at once (full information).
An arm never observed in a bin scores the mean of that bin's observed arms (0 when none is).

Joint choice: the arm vector maximising sum_b count_b v_b(n_b) subject to sum_b count_b n_b = nbar M
exactly (the dynamic programme `exact_budget_arms`; ties to the arm nearest nbar), with
  `informative`  v_b(n) = log p_b(n): deterministic, every arm is observed every step anyway;
  `surrogate`    v_b(n) = log p_b(n) + g_b(n), g iid Gumbel(0, 1) per bin and arm, drawn every step from
                 the allocator's seeded generator (perturb-and-MAP; the generator is part of the state).
Why the perturbation: with bandit feedback an arm never played keeps its bin's observed mean, so every
arm of a bin scores alike, p_b is uniform, the tie goes to nbar and no other arm is ever played (the
paper's released code had this fate). Without the budget, argmax_n log p_b(n) + g_b(n) is a draw from
p_b exactly (the Gumbel-max trick); the budget couples the bins, so arms are played roughly in
proportion to p_b while the total stays exact. One g per bin and arm, shared by the bin's prompts: the
spec gives a bin one arm, and scaling g by count_b keeps each bin's balance of log p_b against g as in
Gumbel-max (per-prompt draws would average out over a large bin, which would then never explore).
Other schemes weighed: an optimism bonus for unplayed arms is deterministic and needs a scale in the
loss's unknown units; drawing each bin's arm from p_b and repairing the budget afterwards biases the
large bins and can be infeasible; importance-weighted (EXP3) estimates fight the EMA. Perturb-and-MAP
keeps the DP, its exact budget and its semantics, and costs one [G, A] draw per step. The exact budget
still bounds exploration: a bin holding most of the batch can move only a few arms from nbar, and a
batch of few bins with awkward counts (20 and 44 prompts, nbar 4) admits no vector but nbar for all.

The shadow price moves from the UNconstrained, unperturbed preference, nbar_greedy = count-weighted mean
of argmax_n p_b(n):  mu_{t+1} = max(0, mu_t + alpha (nbar_greedy - nbar)).
Bin labels come from each prompt's own history; advantages are not reweighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gdro.core.allocators.budget import BudgetConfig, complete_budget, exact_budget_arms
from gdro.core.bin_stats import bin_counts, mixed_softmax
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import ALLOCATORS
from gdro.core.state import restore_rng, rng_state
from gdro.core.step import StepResult

UTILITIES = ("surrogate", "informative")
# Stream id of the Gumbel draws: np.random.default_rng([seed, ARM_STREAM]) (the sampler uses seed, [seed, 1]).
ARM_STREAM = 2


@dataclass
class RolloutGDROConfig:
    """Defaults are our preset `rollout_gdro` (informative, alpha 0.005); the paper's is surrogate, 0.05."""

    utility: Literal["surrogate", "informative"] = "informative"
    """Arm utility: informative 1 - p1^n - (1 - p1)^n for every arm (full information), or surrogate (-loss of
    the arm played, the paper's bandit feedback)."""
    eta: float = 0.65
    """Step size of the per-bin softmax over arms."""
    gamma: float = 0.01
    """Uniform mixing over arms, a fraction in [0, 1]."""
    beta: float = 0.4
    """EMA weight on each arm's new utility, in (0, 1]."""
    alpha: float = 0.005
    """Shadow-price step: mu <- max(0, mu + alpha (nbar_greedy - nbar)), per rollout."""
    initial_mu: float = 0.0
    """Shadow price mu at the start, per rollout."""

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


def informative_utility(
    success_rate: np.ndarray, bins: np.ndarray, num_groups: int, arms: np.ndarray
) -> np.ndarray:
    """U_b(n) = mean over bin b's prompts x of 1 - p^n - (1 - p)^n, p = p1(x): the expected fraction of
    bin b's groups whose n rollouts disagree; [G, A], 0 for a bin with no prompt.

    success_rate, bins: [M]; arms: [A] consecutive counts n_min..n_max. s_n = p^n + (1 - p)^n follows
    s_{n+1} = s_n - p (1 - p) s_{n-1} (as p + (1 - p) = 1), so each arm costs a multiply and a subtract
    on [M] (no `**` per entry, no [M, A] temporary).
    """
    p = np.asarray(success_rate, dtype=np.float64)
    q = 1.0 - p
    pq = p * q
    sums = []  # per arm, per bin: sum of s_n over the bin's prompts
    before, current = p ** int(arms[0] - 1) + q ** int(arms[0] - 1), p ** int(arms[0]) + q ** int(arms[0])
    for _ in arms:
        sums.append(np.bincount(bins, weights=current, minlength=num_groups))
        before, current = current, current - pq * before
    counts = bin_counts(bins, num_groups)[:, None]
    return (counts - np.stack(sums, axis=1)) / np.maximum(counts, 1)


@ALLOCATORS.register("rollout_gdro", config=RolloutGDROConfig)
class RolloutGDROAllocator:
    """Exponential weights over rollout arms per bin, priced by mu so the mean budget is nbar."""

    def __init__(
        self,
        num_groups: int,
        budget: BudgetConfig | None = None,
        config: RolloutGDROConfig | None = None,
        seed: int = 0,
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
        self.rng = np.random.default_rng([seed, ARM_STREAM])  # the Gumbel draws of `surrogate`
        self._by_distance = np.argsort(np.abs(self.arms - self.budget.nbar), kind="stable")
        self._all_arms = np.ones(self.utility.shape, dtype=bool)
        self._extra_rollouts = self.arms - self.budget.nbar  # n - nbar, what mu prices

    @property
    def shadow_price(self) -> float | None:
        """mu."""
        return self.mu

    def arm_scores(self) -> np.ndarray:
        """score_b(n) = Ubar_b(n) - mu (n - nbar), unobserved arms at their bin's observed mean; [G, A]."""
        filled = self.utility
        if not self.observed.all():  # `informative` observes every arm from its first update on
            seen = self.observed.sum(axis=1, keepdims=True)
            observed_sum = (self.utility * self.observed).sum(axis=1, keepdims=True)
            filled = np.where(self.observed, self.utility, observed_sum / np.maximum(seen, 1))  # 0 if none
        return filled - self.mu * self._extra_rollouts

    def favourite_arms(self, arm_probs: np.ndarray) -> np.ndarray:
        """argmax_n p_b(n) per bin, ties to the arm nearest nbar; [G]."""
        return self.arms[self._by_distance][np.argmax(arm_probs[:, self._by_distance], axis=1)]

    def allocate(
        self,
        bins: np.ndarray,
        prompt_ids: np.ndarray | None = None,
        classifier: DifficultyClassifier | None = None,
    ) -> np.ndarray:
        """[M] counts from the exact-budget DP over log p_b (+ Gumbel for `surrogate`); then mu steps
        toward the unconstrained preference. Per bin only: `prompt_ids` and `classifier` are not read."""
        bins = np.asarray(bins, dtype=np.int64)
        total = self.budget.total(len(bins))
        counts = bin_counts(bins, self.num_groups)
        self.arm_probs = mixed_softmax(self.arm_scores(), self._all_arms, self.config.eta, self.config.gamma)
        objective = np.log(self.arm_probs)
        if self.config.utility == "surrogate":
            objective = objective + self.rng.gumbel(size=objective.shape)
        per_bin = exact_budget_arms(counts, self.arms, objective, total, self.budget.nbar)
        rollouts = complete_budget(bins, per_bin, self.arms, objective, total)
        greedy_mean = float((counts * self.favourite_arms(self.arm_probs)).sum() / len(bins))
        self.mu = max(0.0, self.mu + self.config.alpha * (greedy_mean - self.budget.nbar))
        return rollouts

    def update(self, result: StepResult) -> None:
        """Ubar_b(n) <- EMA of this step's utilities: every arm (informative) or the arms played (surrogate)."""
        bins = np.asarray(result.bins, dtype=np.int64)
        groups, num_arms = self.utility.shape
        if self.config.utility == "informative":
            p1 = np.asarray(result.success_rate, dtype=np.float64)
            unseen = np.isnan(p1)
            if unseen.any():  # prompts never seen take their bin's pooled rate this step
                correct = np.bincount(bins, weights=result.correct_per_prompt, minlength=groups)
                rollouts = np.bincount(bins, weights=result.rollouts_per_prompt, minlength=groups)
                p1 = np.where(unseen, (correct / np.maximum(rollouts, 1))[bins], p1)
            new = informative_utility(p1, bins, groups, self.arms)
            played = (bin_counts(bins, groups) > 0)[:, None]
        else:
            if result.surrogate_loss is None:
                raise ValueError(
                    "allocator.utility=surrogate needs per-prompt surrogate losses from the trainer; "
                    "use allocator.utility=informative with a policy that provides none"
                )
            arm_index = np.asarray(result.rollouts_per_prompt, dtype=np.int64) - self.budget.n_min
            cell, size = bins * num_arms + arm_index, groups * num_arms  # (bin, arm) of each prompt
            loss = np.asarray(result.surrogate_loss, dtype=np.float64)
            cell_sums = np.bincount(cell, weights=-loss, minlength=size).reshape(groups, num_arms)
            cell_counts = np.bincount(cell, minlength=size).reshape(groups, num_arms)
            played = cell_counts > 0
            new = cell_sums / np.maximum(cell_counts, 1)
        beta = self.config.beta
        blended = np.where(self.observed, (1.0 - beta) * self.utility + beta * new, new)
        self.utility = np.where(played, blended, self.utility)
        self.observed |= played

    def state_dict(self) -> dict[str, Any]:
        """Arm utilities, which arms were observed, mu, the last arm distribution and the Gumbel generator."""
        return {
            "utility": self.utility.tolist(),
            "observed": self.observed.tolist(),
            "mu": self.mu,
            "arm_probs": self.arm_probs.tolist(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        self.utility = np.array(state["utility"], dtype=np.float64)
        self.observed = np.array(state["observed"], dtype=bool)
        self.mu = float(state["mu"])
        self.arm_probs = np.array(state["arm_probs"], dtype=np.float64)
        restore_rng(self.rng, state["rng"])
