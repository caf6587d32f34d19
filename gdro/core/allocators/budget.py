"""The rollout budget: sum_i n_i = nbar * M exactly, each n_i in [n_min, n_max] (spec section 4).

Shared by every allocator: the feasibility check, largest-remainder integerisation of continuous
targets, and the exact-budget dynamic program over per-bin arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BudgetConfig:
    """nbar rollouts per prompt on average, each prompt within [n_min, n_max]; defaults nbar=4, 2..12."""

    nbar: float = 4.0
    n_min: int = 2
    n_max: int = 12

    def validate(self) -> None:
        """n_min <= nbar <= n_max, or a ValueError naming the setting to change."""
        if not 1 <= self.n_min <= self.n_max:
            raise ValueError(f"allocator.n_min={self.n_min}, n_max={self.n_max}: need 1 <= n_min <= n_max")
        if not self.n_min <= self.nbar <= self.n_max:
            raise ValueError(
                f"allocator.nbar={self.nbar} lies outside [allocator.n_min, allocator.n_max] = "
                f"[{self.n_min}, {self.n_max}]: the budget nbar*M cannot be met; change nbar or the bounds"
            )

    def total(self, batch_size: int) -> int:
        """nbar * M as an exact integer, or a ValueError naming the setting to change."""
        self.validate()
        total = self.nbar * batch_size
        if abs(total - round(total)) > 1e-9:
            raise ValueError(
                f"allocator.nbar * trainer.prompts_per_step = {self.nbar} * {batch_size} = {total} is not a "
                "whole number of rollouts; choose nbar or prompts_per_step so the product is an integer"
            )
        return int(round(total))


def integerise(targets: np.ndarray, n_min: int, n_max: int, total: int) -> np.ndarray:
    """Round per-prompt targets to integers in [n_min, n_max] summing exactly to `total`.

    Largest remainder: n_i = floor(clip(x_i)), then the remaining units go one each to the prompts with
    the largest fractional parts (earlier batch positions first on ties) that are still below n_max,
    or are taken from the smallest fractional parts above n_min if the floors overshoot.
    """
    clipped = np.clip(np.asarray(targets, dtype=np.float64), n_min, n_max)
    counts = np.floor(clipped).astype(np.int64)
    fraction = clipped - counts
    short = total - int(counts.sum())
    if short > 0:
        order = np.argsort(-fraction, kind="stable")
        order = order[counts[order] < n_max][:short]
        counts[order] += 1
    elif short < 0:
        order = np.argsort(fraction, kind="stable")
        order = order[counts[order] > n_min][:-short]
        counts[order] -= 1
    if counts.sum() != total:
        raise ValueError(
            f"cannot place {total} rollouts on {len(counts)} prompts within [{n_min}, {n_max}]; "
            "change allocator.nbar, allocator.n_min or allocator.n_max"
        )
    return counts


def exact_budget_arms(
    counts: np.ndarray, arms: np.ndarray, log_prob: np.ndarray, total: int, nbar: float
) -> np.ndarray:
    """Per-bin arms maximising sum_b count_b log p_b(n_b) subject to sum_b count_b n_b == total.

    counts: [G] prompts per bin; arms: [A] consecutive rollout counts n_min..n_max; log_prob: [G, A].
    Returns [G] arm values (0 for bins with no prompt). Dynamic programme over the extra budget E above
    n_min per prompt, bins in increasing count order, each stage evaluated only on the totals that can
    still reach E (O(G x A x E) at worst); ties go to the arm nearest nbar. When no whole-arm vector
    meets the total (non-integer nbar), the best vector below it is returned for `complete_budget`.
    """
    extra_total = total - int(arms[0]) * int(counts.sum())
    chosen = _budget_dp(counts, log_prob, extra_total, nbar - arms[0], prune_to_exact=True)
    if chosen is None:
        chosen = _budget_dp(counts, log_prob, extra_total, nbar - arms[0], prune_to_exact=False)
    return np.where(counts > 0, arms[0] + chosen, 0)


def _budget_dp(
    counts: np.ndarray, log_prob: np.ndarray, extra_total: int, extra_nbar: float, prune_to_exact: bool
) -> np.ndarray | None:
    """Arm indices [G] of the DP; None when `prune_to_exact` and no vector spends exactly `extra_total`."""
    num_arms = log_prob.shape[1]
    order = np.flatnonzero(counts)
    order = order[np.argsort(counts[order], kind="stable")]
    by_distance = np.argsort(
        np.abs(np.arange(num_arms) - extra_nbar), kind="stable"
    )  # argmax keeps the first
    capacity = counts[order] * (num_arms - 1)  # the most extra rollouts each stage can add
    reachable_after = np.cumsum(capacity)
    value = np.full(extra_total + 1, -np.inf)
    value[0] = 0.0
    choice = np.zeros((len(order), extra_total + 1), dtype=np.int64)
    for row, b in enumerate(order):
        step = int(counts[b])  # arm index a costs step * a extra rollouts
        still_to_come = int(reachable_after[-1] - reachable_after[row])
        low = max(0, extra_total - still_to_come) if prune_to_exact else 0
        high = min(extra_total, int(reachable_after[row]))
        reach = step * (num_arms - 1)
        padded = np.concatenate([np.full(reach, -np.inf), value])
        # shifted[a, s] = value[low + s - step * a]: a zero-copy strided view over the padded values.
        shifted = np.lib.stride_tricks.as_strided(
            padded[reach + low :],
            shape=(num_arms, high - low + 1),
            strides=(-step * padded.itemsize, padded.itemsize),
        )
        candidates = shifted[by_distance] + step * log_prob[b, by_distance][:, None]  # [A, high - low + 1]
        best = np.argmax(candidates, axis=0)
        value = np.full(extra_total + 1, -np.inf)
        value[low : high + 1] = candidates[best, np.arange(high - low + 1)]
        choice[row, low : high + 1] = by_distance[best]
    finite = np.flatnonzero(np.isfinite(value))
    if prune_to_exact and (len(finite) == 0 or finite[-1] != extra_total):
        return None
    spent = int(finite[-1])  # extra_total itself whenever an exact vector exists
    chosen = np.zeros(len(counts), dtype=np.int64)
    for row in range(len(order) - 1, -1, -1):
        chosen[order[row]] = choice[row, spent]
        spent -= int(counts[order[row]]) * int(choice[row, spent])
    return chosen


def complete_budget(
    bins: np.ndarray, per_bin_arm: np.ndarray, arms: np.ndarray, log_prob: np.ndarray, total: int
) -> np.ndarray:
    """Per-prompt counts from per-bin arms, topped up one prompt at a time until the total is exact.

    Each extra rollout goes to a prompt of the bin whose next arm loses least log-probability,
    log p_b(n_b + 1) - log p_b(n_b), so counts inside a bin differ by at most one.
    """
    per_prompt = per_bin_arm[bins].astype(np.int64)
    missing = total - int(per_prompt.sum())
    if missing <= 0:
        return per_prompt
    n_max = int(arms[-1])
    present = np.flatnonzero(np.bincount(bins, minlength=len(per_bin_arm)))
    index = np.searchsorted(arms, per_bin_arm[present])
    can_grow = per_bin_arm[present] < n_max
    gain = np.full(len(present), -np.inf)
    gain[can_grow] = (
        log_prob[present[can_grow], index[can_grow] + 1] - log_prob[present[can_grow], index[can_grow]]
    )
    for b in present[np.argsort(-gain, kind="stable")]:
        if missing == 0 or per_bin_arm[b] >= n_max:
            break
        members = np.flatnonzero(bins == b)[:missing]
        per_prompt[members] += 1
        missing -= len(members)
    return per_prompt
