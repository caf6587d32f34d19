"""The rollout budget: sum_i n_i = nbar * M exactly, each n_i in [n_min, n_max] (docs/algorithm.md §4).

Shared by every allocator: the feasibility check, largest-remainder integerisation of continuous
targets, and the exact-budget dynamic program over per-bin arms.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass
class BudgetConfig:
    """nbar rollouts per prompt on average, each prompt within [n_min, n_max]; defaults nbar=4, 2..12."""

    nbar: float = 4.0
    """Mean rollouts per prompt; sum_i n_i = nbar * M exactly."""
    n_min: int = 2
    """Fewest rollouts of a prompt (the smallest arm)."""
    n_max: int = 12
    """Most rollouts of a prompt (the largest arm)."""

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

    counts: [G] prompts per bin; arms: [A] consecutive rollout counts n_min..n_max; log_prob: [G, A]
    (any per-bin arm values: the perturbed log p_b(n) + g_b(n) of `RolloutGDROAllocator` too).
    Returns [G] arm values (0 for bins with no prompt); ties go to the arm nearest nbar. When no
    whole-arm vector meets the total (non-integer nbar), the best vector below it is returned for
    `complete_budget`.

    Dynamic programme over the extra budget s = sum_b count_b (n_b - n_min) in [0, E], bins in
    increasing count order: V_k(s) = max_a V_{k-1}(s - count_k a) + count_k log p_k(a), V_0 = 0 at s = 0
    only. Stage k is evaluated on the window of states that can lie on a path to E (no more than the
    bins so far can add, no less than E minus what the rest can add), narrowed to the states actually
    reachable from s = 0 while those are few (the first stages) and to those from which the remaining
    bins can add exactly E - s while those are few (the last stages, which hold the large bins).
    O(G x A x E) at worst; on the simulator's batches (B = 10) about 0.3 ms at M = 512 and 0.5 ms at
    M = 4096 (without the narrowing and with a per-state argmax: 0.5 and 3 ms).
    """
    extra_total = total - int(arms[0]) * int(counts.sum())
    chosen = _budget_dp(counts, log_prob, extra_total, nbar - arms[0], prune_to_exact=True)
    if chosen is None:
        chosen = _budget_dp(counts, log_prob, extra_total, nbar - arms[0], prune_to_exact=False)
    return np.where(counts > 0, arms[0] + chosen, 0)


# A stage with this many states or fewer is evaluated on those states alone, whatever its window.
SPARSE_MIN = 64


def _sparse_states(
    steps: list[int], num_arms: int, low: list[int], high: list[int], extra_total: int, forward: bool
) -> dict[int, np.ndarray]:
    """Stage k -> the states of V_k worth evaluating, for the stages with at most `SPARSE_MIN` of them or a
    quarter of their window [low_k, high_k]; stops at the first denser stage (that one and those beyond
    use their window). Repeats are kept (they only evaluate a state twice), so the sets cost no sort.

    forward: the states reachable from s = 0, V_k's = V_{k-1}'s + steps[k] a, first stage on;
    backward: the states from which the later stages spend exactly E, V_{k-1}'s = V_k's - steps[k] a,
    from V_K's = {E} back.
    """
    sparse = {}
    offsets = np.arange(num_arms)
    states = np.array([0 if forward else extra_total])
    for row in range(len(steps)) if forward else range(len(steps) - 1, -1, -1):
        if forward:  # V_k's from V_{k-1}'s
            states = (states[:, None] + steps[row] * offsets).ravel()
        states = states[(states >= low[row]) & (states <= high[row])]
        if len(states) > SPARSE_MIN and 4 * len(states) > high[row] - low[row] + 1:
            break
        sparse[row] = states
        if not forward:  # V_{k-1}'s from V_k's
            states = (states[:, None] - steps[row] * offsets).ravel()
    return sparse


def _budget_dp(
    counts: np.ndarray, log_prob: np.ndarray, extra_total: int, extra_nbar: float, prune_to_exact: bool
) -> np.ndarray | None:
    """Arm indices [G] of the DP; None when `prune_to_exact` and no vector spends exactly `extra_total`.

    With `prune_to_exact` only the states that can still reach E exactly are evaluated; otherwise every
    state up to E is, and the path ends at the largest reachable one. The per-stage bookkeeping is in
    Python lists: G is small, and a numpy call per scalar costs more than the arithmetic.
    """
    num_arms = log_prob.shape[1]
    per_bin = counts.tolist()
    order = sorted((b for b, count in enumerate(per_bin) if count > 0), key=per_bin.__getitem__)  # stable
    steps = [per_bin[b] for b in order]  # arm index a of stage k costs steps[k] * a extra rollouts
    added = list(itertools.accumulate(step * (num_arms - 1) for step in steps))  # the most stages 0..k add
    high = [min(most, extra_total) for most in added]
    low = [max(0, extra_total - (added[-1] - most)) if prune_to_exact else 0 for most in added]
    if any(first > last for first, last in zip(low, high, strict=True)):
        return None
    # The first stages hold the smallest bins, so their windows are usually short already.
    long_start = high[0] - low[0] + 1 > 4 * SPARSE_MIN
    reached = _sparse_states(steps, num_arms, low, high, extra_total, forward=True) if long_start else {}
    needed = _sparse_states(steps, num_arms, low, high, extra_total, forward=False) if prune_to_exact else {}
    sparse = {}  # stage -> its smaller known state set
    for known in (reached, needed):
        for row, states in known.items():
            if row not in sparse or len(states) < len(sparse[row]):
                sparse[row] = states
    # table[k, pad + s] = V_k(s); the pad of -inf stands for s < 0, where an arm would overspend.
    pad = max(
        [1] + [steps[row] * (num_arms - 1) - low[row] for row in range(len(steps)) if row not in sparse]
    )
    table = np.full((len(steps) + 1, pad + extra_total + 1), -np.inf)
    table[0, pad] = 0.0
    gains = np.array(steps)[:, None] * log_prob[order]  # [K, A]: count_k log p_k(a)
    gain_columns, offsets = gains[:, :, None], np.arange(num_arms)[:, None]
    size = table.itemsize
    # With `prune_to_exact` the last stage holds one state, E: the way back evaluates it.
    for row, step in enumerate(steps[:-1] if prune_to_exact else steps):
        if row in sparse:
            states = pad + sparse[row]
            source = np.maximum(states - step * offsets, 0)  # below the pad: -inf too
            table[row + 1, states] = (table[row, source] + gain_columns[row]).max(axis=0)
        else:
            first, last = pad + low[row], pad + high[row]
            # shifted[a, j] = V_{k-1}(first - pad + j - step a): a zero-copy strided view of row k - 1.
            shifted = np.ndarray(
                (num_arms, last - first + 1),
                table.dtype,
                buffer=table,
                offset=(row * table.shape[1] + first) * size,
                strides=(-step * size, size),
            )
            np.max(shifted + gain_columns[row], axis=0, out=table[row + 1, first : last + 1])
    spent = extra_total if prune_to_exact else int(np.flatnonzero(np.isfinite(table[-1, pad:]))[-1])
    # The way back recomputes each stage's candidates at `spent` from the same sums as above (so
    # bit-equal), nearest nbar first: the strict > keeps the first maximum.
    by_distance = sorted(range(num_arms), key=lambda arm: abs(arm - extra_nbar))  # stable
    arm_gains = gains[:, by_distance].tolist()
    chosen = np.zeros(len(counts), dtype=np.int64)
    for row in range(len(steps) - 1, -1, -1):
        previous, step, best, pick = table[row], steps[row], -np.inf, by_distance[0]
        for arm, gain in zip(by_distance, arm_gains[row], strict=True):
            if step * arm <= spent and previous.item(pad + spent - step * arm) + gain > best:
                best, pick = previous.item(pad + spent - step * arm) + gain, arm
        if best == -np.inf:  # only at the last stage: no vector spends exactly E
            return None
        chosen[order[row]] = pick
        spent -= step * pick
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
