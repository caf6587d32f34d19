"""Knapsack RL's per-prompt rollout allocation (Li et al., arXiv 2509.25849), a baseline allocator.

Source: github.com/liziniu/KnapsackRL, `verl/trainer/ppo/exploration_utils.py`
(`sampling_budget_by_knapsack`, `solve_by_dp`) and the per-prompt estimate of
`verl/utils/dataset/rl_dataset.py` (`get_sample_state`). The value of giving prompt x, success rate p
(q = 1 - p), n rollouts is the chance its group carries a gradient times the expected information gain:
    V(n, p) = (1 - p^n - q^n) p q^2,
which is 0 for p in {0, 1} and concave in n (its increment p q^2 (p^(n-1) q + q^(n-1) p) shrinks with n).
The allocation maximises sum_i V(n_i, p_i) subject to sum_i n_i = nbar M exactly, each n_i in its range:
  known prompts (the classifier's window holds >= `min_rollouts` rollouts; the source's
      `min_buffer_length`, 8): p = the windowed per-rollout rate p1(x), range [n_min, n_max];
  unknown prompts: the source gives them its default group size n; here floor(nbar)..ceil(nbar).
Fallback (the source's `allow_fallback`, on by default): a prompt with 0 < p < 1 ("effective") needs about
cost(p) = ln(1 - confidence) / ln(max(p, q)) rollouts to see both outcomes with probability `confidence`
(0.9). The effective prompts together get at most C = sum_i clip(floor(cost(p_i)), n_min, n_max)
rollouts while prompts that never succeeded (p = 0) can still take more: the surplus explores them.
Solver: the source runs a dynamic programme over the extra budget. V is concave in n, so taking extra
rollouts one at a time, largest increment first, reaches the same optimum (Fox 1966, marginal allocation
for separable concave objectives), in O(U log U) for U = M (n_max - n_min) candidate rollouts. The
candidates are taken in four tiers until the budget is spent:
  1. effective prompts' increments, largest first, up to the fallback cap C (no cap without fallback);
  2. prompts with p = 0, evenly (their V is 0: the fallback's exploration);
  3. effective prompts' remaining increments, largest first;
  4. prompts with p = 1 and unknown prompts, evenly.
Ties (equal increments, or the even tiers): fewer rollouts first, then earlier batch position.
Where we depart from the source (each for the exact budget and bounds every allocator keeps): its DP
scores an effective prompt left at n_min as 0 instead of V(n_min, p), which pushes at least one extra
rollout onto every effective prompt; its fallback hands the surplus to p = 0 prompts beyond n_max and
compares the effective prompts' total cost with the extra budget above n_min; it estimates p from the
last visit (or its last 16 rewards) rather than the classifier's window of H visits. Advantages are not
reweighted; no state besides the classifier's, which the curriculum checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdro.core.allocators.base import StatelessAllocator
from gdro.core.allocators.budget import BudgetConfig
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import ALLOCATORS


@dataclass
class KnapsackConfig:
    """Defaults are the source's: success rates trusted after 8 rollouts, fallback on at confidence 0.9."""

    min_rollouts: int = 8
    """Rollouts a prompt's classifier window must hold before its success rate is used; fewer: nbar."""
    fallback: bool = True
    """Cap the effective prompts (0 < p < 1) at their cost so the surplus explores prompts never solved."""
    confidence: float = 0.9
    """Chance of a group with both outcomes that an effective prompt's cost ln(1 - confidence) /
    ln(max(p, 1 - p)) buys."""

    def validate(self) -> None:
        """Fail early, naming the key."""
        if self.min_rollouts < 1:
            raise ValueError(f"allocator.min_rollouts={self.min_rollouts}: must be >= 1")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"allocator.confidence={self.confidence}: must lie in (0, 1)")


def knapsack_value(rollouts: np.ndarray, success_rate: np.ndarray) -> np.ndarray:
    """V(n, p) = (1 - p^n - (1 - p)^n) p (1 - p)^2, elementwise (broadcast)."""
    p = np.asarray(success_rate, dtype=np.float64)
    q = 1.0 - p
    return (1.0 - p**rollouts - q**rollouts) * p * q * q


def rollout_cost(success_rate: np.ndarray, confidence: float) -> np.ndarray:
    """ln(1 - confidence) / ln(max(p, 1 - p)), the rollouts that show both outcomes with probability
    about `confidence`; for 0 < p < 1 only (inf at p in {0, 1})."""
    p = np.asarray(success_rate, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(1.0 - confidence) / np.log(np.maximum(p, 1.0 - p))


def knapsack_allocation(
    success_rate: np.ndarray, known: np.ndarray, budget: BudgetConfig, config: KnapsackConfig
) -> np.ndarray:
    """[M] rollout counts: sum exactly budget.total(M), each within its range (module docstring).

    success_rate: [M] p per prompt (read where `known` only); known: [M] bool.
    """
    batch_size = len(success_rate)
    total = budget.total(batch_size)
    p = np.where(known, success_rate, 0.5)
    effective = known & (p > 0.0) & (p < 1.0)
    never_solved = known & (p == 0.0)
    lowest = np.where(known, budget.n_min, int(np.floor(budget.nbar)))
    highest = np.where(known, budget.n_max, int(np.ceil(budget.nbar)))
    # Candidate rollouts: prompt i's (lowest_i + k)-th for k = 1..highest_i - lowest_i.
    width = int((highest - lowest).max(initial=0))
    steps = np.arange(1, width + 1)
    rollouts = lowest[:, None] + steps[None, :]  # [M, K]
    exists = rollouts <= highest[:, None]
    raw_gain = knapsack_value(rollouts, p[:, None]) - knapsack_value(rollouts - 1, p[:, None])
    # V is concave, so the increments fall with n; the running minimum keeps rounding from breaking that.
    gain = np.where(effective[:, None], np.minimum.accumulate(raw_gain, axis=1), 0.0)
    position = np.broadcast_to(np.arange(batch_size)[:, None], rollouts.shape)
    level = np.broadcast_to(steps[None, :], rollouts.shape)
    by_gain = np.lexsort((position.ravel(), level.ravel(), -gain.ravel()))
    by_gain = by_gain[(effective[:, None] & exists).ravel()[by_gain]]
    cap = len(by_gain)
    if config.fallback and effective.any():
        cost = np.clip(np.floor(rollout_cost(p[effective], config.confidence)), budget.n_min, budget.n_max)
        cap = int(cost.sum()) - budget.n_min * int(effective.sum())
    evenly = np.lexsort((position.ravel(), level.ravel()))
    explore = (never_solved[:, None] & exists).ravel()[evenly]
    rest = ((~effective & ~never_solved)[:, None] & exists).ravel()[evenly]
    take = np.concatenate(  # flat candidate indices i * width + k - 1, in the order they are spent
        [by_gain[:cap], evenly[explore], by_gain[cap:], evenly[rest]]
    )
    spare = total - int(lowest.sum())
    if not 0 <= spare <= len(take):
        raise ValueError(
            f"cannot place {total} rollouts on {batch_size} prompts within [{budget.n_min}, {budget.n_max}]; "
            "change allocator.nbar, allocator.n_min or allocator.n_max"
        )
    chosen = take[:spare] // max(width, 1)
    return lowest + np.bincount(chosen, minlength=batch_size).astype(np.int64)


@ALLOCATORS.register("knapsack", config=KnapsackConfig)
class KnapsackAllocator(StatelessAllocator):
    """Per-prompt rollout counts maximising the summed Knapsack-RL value under the exact budget."""

    def __init__(
        self, num_groups: int, budget: BudgetConfig | None = None, config: KnapsackConfig | None = None
    ) -> None:
        self.num_groups = int(num_groups)
        self.budget = budget or BudgetConfig()
        self.config = config or KnapsackConfig()
        self.config.validate()
        self.budget.validate()

    def allocate(
        self,
        bins: np.ndarray,
        prompt_ids: np.ndarray | None = None,
        classifier: DifficultyClassifier | None = None,
    ) -> np.ndarray:
        """[M] counts from each prompt's windowed success rate in `classifier` (bins are not used)."""
        if prompt_ids is None or classifier is None:
            raise ValueError("allocator=knapsack needs the batch's prompt ids and the difficulty classifier")
        prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
        known = classifier.recorded_rollouts(prompt_ids) >= self.config.min_rollouts
        return knapsack_allocation(classifier.success_rate(prompt_ids), known, self.budget, self.config)
