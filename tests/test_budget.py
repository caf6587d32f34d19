"""The rollout budget (docs/algorithm.md §4): its checks, largest-remainder integerisation, the exact-budget
dynamic programme (against brute force and against the same DP written plainly, without its pruning),
and every allocator spending exactly nbar * M."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.allocators import (
    BudgetConfig,
    FixedAllocator,
    KnapsackAllocator,
    RolloutGDROAllocator,
    RolloutGDROConfig,
    SqrtOptimalAllocator,
    exact_budget_arms,
    integerise,
)

NAN = float("nan")


# ---------------------------------------------------------------- the budget


@pytest.mark.parametrize(
    ("budget", "match"),
    [
        (
            BudgetConfig(nbar=13.0),
            r"allocator\.nbar=13\.0 .*\[allocator\.n_min, allocator\.n_max\] = \[2, 12\]",
        ),
        (BudgetConfig(nbar=1.5), r"allocator\.nbar=1\.5"),
        (BudgetConfig(n_min=0), r"allocator\.n_min=0"),
        (BudgetConfig(n_min=6, n_max=5), r"allocator\.n_min=6, n_max=5"),
    ],
)
def test_budget_errors_name_the_setting(budget: BudgetConfig, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        budget.validate()
    with pytest.raises(ValueError, match=match):
        budget.total(8)


def test_budget_total_must_be_whole() -> None:
    assert BudgetConfig(nbar=4.5).total(6) == 27
    with pytest.raises(ValueError, match=r"allocator\.nbar \* trainer\.prompts_per_step = 4\.5 \* 5 = 22\.5"):
        BudgetConfig(nbar=4.5).total(5)


def test_integerise_hand_cases() -> None:
    # Floors (2, 3, 4, 5) = 14; 2 short; largest fractions 0.7 (index 1) and 0.6 (index 3) round up.
    np.testing.assert_array_equal(integerise(np.array([2.5, 3.7, 4.2, 5.6]), 2, 12, 16), [2, 4, 4, 6])
    # Floors (3, 3, 3) = 9 > 8: the smallest fraction above n_min (0.1, index 2) rounds down.
    np.testing.assert_array_equal(integerise(np.array([3.9, 3.9, 3.1]), 2, 12, 8), [3, 3, 2])
    # Clipped to (2, 12) first: exactly 14.
    np.testing.assert_array_equal(integerise(np.array([1.0, 20.0]), 2, 12, 14), [2, 12])
    # Floors (11, 2, 2) = 15, 2 short; fractions (0.9, 0.5, 0.5): index 0, then index 1 (earlier tie).
    np.testing.assert_array_equal(integerise(np.array([11.9, 2.5, 2.5]), 2, 12, 17), [12, 3, 2])
    # Bounds win over batch order on ties: (12, 2, 2) -> floors 16, 2 short, every fraction 0; index 0 is
    # first in order but already at n_max, so indices 1 and 2 take the units.
    np.testing.assert_array_equal(integerise(np.array([12.0, 2.0, 2.0]), 2, 12, 18), [12, 3, 3])
    # Likewise downwards: (2, 5) -> floors 7, 1 over; index 0 sits at n_min, so index 1 gives it up.
    np.testing.assert_array_equal(integerise(np.array([2.0, 5.0]), 2, 12, 6), [2, 4])
    with pytest.raises(ValueError, match=r"allocator\.nbar"):
        integerise(np.array([4.0, 4.0]), 2, 5, 11)


# ---------------------------------------------------------------- the exact-budget DP


def brute_force(counts, arms, log_prob, total) -> float:
    """max sum_b count_b log p_b(n_b) over arm vectors with sum_b count_b n_b == total (-inf if none)."""
    active = np.flatnonzero(counts)
    best = -math.inf
    for choice in itertools.product(range(len(arms)), repeat=len(active)):
        if sum(counts[b] * arms[a] for b, a in zip(active, choice, strict=True)) == total:
            best = max(best, sum(counts[b] * log_prob[b, a] for b, a in zip(active, choice, strict=True)))
    return best


def objective(counts, arms, log_prob, chosen) -> float:
    return sum(counts[b] * log_prob[b, np.searchsorted(arms, chosen[b])] for b in np.flatnonzero(counts))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    num_groups=st.integers(1, 4),
    n_min=st.integers(1, 3),
    width=st.integers(0, 6),
)
def test_dp_matches_brute_force(data, num_groups, n_min, width) -> None:
    n_max = n_min + width
    arms = np.arange(n_min, n_max + 1)
    counts = np.array(data.draw(st.lists(st.integers(0, 5), min_size=num_groups, max_size=num_groups)))
    if counts.sum() == 0:
        counts[0] = 1
    # Any whole total in range, so non-integer nbar (where no exact whole-arm vector may exist) is covered.
    total = data.draw(st.integers(n_min * int(counts.sum()), n_max * int(counts.sum())))
    log_prob = np.log(
        np.array(
            data.draw(
                st.lists(
                    st.floats(1e-3, 1.0), min_size=num_groups * len(arms), max_size=num_groups * len(arms)
                )
            )
        )
    ).reshape(num_groups, len(arms))
    chosen = exact_budget_arms(counts, arms, log_prob, total, total / counts.sum())
    np.testing.assert_array_equal(chosen[counts == 0], 0)
    assert np.all((chosen[counts > 0] >= n_min) & (chosen[counts > 0] <= n_max))
    best = brute_force(counts, arms, log_prob, total)
    if math.isfinite(best):  # an exact vector exists: the DP must return an optimal one
        assert int((counts * chosen).sum()) == total
        assert objective(counts, arms, log_prob, chosen) == pytest.approx(best, abs=1e-9)
    else:  # none exists: the DP returns a vector below the total for `complete_budget` to top up
        assert int((counts * chosen).sum()) < total


def test_dp_through_the_allocator_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        allocator = RolloutGDROAllocator(3, BudgetConfig(nbar=4, n_min=2, n_max=8))
        allocator.utility = rng.uniform(0.0, 1.0, size=(3, 7))
        allocator.observed[:] = True
        bins = rng.integers(0, 3, size=int(rng.integers(3, 9)))
        counts = np.bincount(bins, minlength=3)
        rollouts = allocator.allocate(bins)
        # p_b(n) = 0.99 softmax(0.65 U_b)(n) + 0.01 / 7, by hand from the utilities (mu = 0).
        exp = np.exp(0.65 * allocator.utility)
        log_prob = np.log(0.99 * exp / exp.sum(axis=1, keepdims=True) + 0.01 / 7)
        per_bin = np.zeros(3, dtype=np.int64)
        for b in np.flatnonzero(counts):
            assert len(set(rollouts[bins == b].tolist())) == 1  # integer nbar: one arm per bin
            per_bin[b] = rollouts[bins == b][0]
        assert rollouts.sum() == 4 * len(bins)
        best = brute_force(counts, np.arange(2, 9), log_prob, 4 * len(bins))
        assert objective(counts, np.arange(2, 9), log_prob, per_bin) == pytest.approx(best, abs=1e-9)


def plain_dp(counts, arms, log_prob, total, nbar) -> np.ndarray:
    """The DP written plainly, every state 0..E at every stage: bins in increasing count order (stable),
    V_k(s) = max_a V_{k-1}(s - count_k a) + count_k log p_k(a) over arms nearest nbar first (strict >
    keeps the first), back from E, or from the largest reachable total when E is not reachable."""
    extra = int(total - arms[0] * counts.sum())
    order = sorted(np.flatnonzero(counts), key=lambda b: counts[b])
    by_distance = sorted(range(len(arms)), key=lambda a: abs(a - (nbar - arms[0])))
    value, picks = [0.0] + [-math.inf] * extra, []
    for b in order:
        step = int(counts[b])
        gains = step * log_prob[b]
        new, pick = [-math.inf] * (extra + 1), [0] * (extra + 1)
        for s in range(extra + 1):
            for a in by_distance:
                if s >= step * a and value[s - step * a] + gains[a] > new[s]:
                    new[s], pick[s] = value[s - step * a] + gains[a], a
        value = new
        picks.append(pick)
    spent = max(s for s in range(extra + 1) if math.isfinite(value[s]))
    chosen = np.zeros(len(counts), dtype=np.int64)
    for b, pick in zip(reversed(order), reversed(picks), strict=True):
        chosen[b] = arms[pick[spent]]
        spent -= int(counts[b]) * pick[spent]
    return chosen


@settings(max_examples=120, deadline=None)
@given(
    data=st.data(),
    num_groups=st.integers(1, 7),
    n_min=st.integers(1, 3),
    width=st.integers(0, 10),
    ties=st.booleans(),
)
def test_pruned_dp_returns_the_plain_dps_vector(data, num_groups, n_min, width, ties) -> None:
    """The pruning (windows, reachable and needed states) changes nothing, ties included: same vector."""
    arms = np.arange(n_min, n_min + width + 1)
    counts = np.array(data.draw(st.lists(st.integers(0, 40), min_size=num_groups, max_size=num_groups)))
    if counts.sum() == 0:
        counts[0] = 1
    total = data.draw(st.integers(n_min * int(counts.sum()), int(arms[-1]) * int(counts.sum())))
    values = st.sampled_from([0.1, 0.2, 0.3]) if ties else st.floats(1e-3, 1.0)  # few values: many ties
    size = num_groups * len(arms)
    log_prob = np.log(np.array(data.draw(st.lists(values, min_size=size, max_size=size)))).reshape(
        num_groups, len(arms)
    )
    nbar = data.draw(st.sampled_from([total / counts.sum(), float(arms[len(arms) // 2])]))
    chosen = exact_budget_arms(counts, arms, log_prob, total, nbar)
    np.testing.assert_array_equal(chosen, plain_dp(counts, arms, log_prob, total, nbar))


def test_ties_go_to_nbar() -> None:
    allocator = RolloutGDROAllocator(4)  # no utility observed, mu = 0: every p_b is uniform
    bins = np.array([0, 0, 1, 3, 3, 3, 2])
    np.testing.assert_array_equal(allocator.allocate(bins), [4] * 7)
    counts = np.array([2, 3])
    log_prob = np.full((2, 11), math.log(1 / 11))
    np.testing.assert_array_equal(exact_budget_arms(counts, np.arange(2, 13), log_prob, 30, 6.0), [6, 6])


def test_non_integer_nbar_without_an_exact_arm_vector() -> None:
    # nbar 4.5, M = 10, bins of 4 and 6 prompts: 4 a + 6 b = 45 is odd, so no whole-arm vector exists.
    rng = np.random.default_rng(1)
    bins = np.array([0] * 4 + [1] * 6)
    for _ in range(10):
        allocator = RolloutGDROAllocator(2, BudgetConfig(nbar=4.5))
        allocator.utility = rng.uniform(0.0, 1.0, size=(2, 11))
        allocator.observed[:] = True
        rollouts = allocator.allocate(bins)
        assert rollouts.sum() == 45
        assert np.all((rollouts >= 2) & (rollouts <= 12))
        for b in (0, 1):
            assert np.ptp(rollouts[bins == b]) <= 1


# ---------------------------------------------------------------- every allocator keeps the budget


@st.composite
def allocation_cases(draw):
    num_groups = draw(st.integers(1, 11))
    batch_size = draw(st.integers(1, 300))
    used = draw(st.lists(st.integers(0, num_groups - 1), min_size=1, max_size=num_groups, unique=True))
    bins = np.array(draw(st.lists(st.sampled_from(used), min_size=batch_size, max_size=batch_size)))
    n_min = draw(st.integers(1, 4))
    n_max = draw(st.integers(max(n_min, 2), 16))
    if draw(st.booleans()):
        nbar = float(draw(st.sampled_from([n for n in (2, 3, 4, 5, 6) if n_min <= n <= n_max] or [n_min])))
    else:  # any whole total in range: nbar = total / M, often not an integer
        nbar = draw(st.integers(n_min * batch_size, n_max * batch_size)) / batch_size
    return (
        num_groups,
        bins,
        BudgetConfig(nbar=nbar, n_min=n_min, n_max=n_max),
        draw(st.randoms(use_true_random=False)),
    )


def build_allocators(num_groups: int, budget: BudgetConfig, rnd) -> list:
    sqrt_optimal = SqrtOptimalAllocator(num_groups, budget)
    sqrt_optimal.variance = np.array(
        [NAN if rnd.random() < 0.3 else rnd.uniform(0, 0.3) for _ in range(num_groups)]
    )
    rollouts = []
    for utility in ("informative", "surrogate"):  # surrogate: the Gumbel-perturbed choice
        rollout = RolloutGDROAllocator(
            num_groups, budget, RolloutGDROConfig(utility=utility), seed=rnd.randrange(99)
        )
        rollout.utility = np.array([[rnd.uniform(-1, 1) for _ in rollout.arms] for _ in range(num_groups)])
        rollout.observed = np.array([[rnd.random() < 0.7 for _ in rollout.arms] for _ in range(num_groups)])
        rollout.mu = rnd.uniform(0, 2)
        rollouts.append(rollout)
    return [FixedAllocator(num_groups, budget), sqrt_optimal, *rollouts]


@settings(max_examples=100, deadline=None)
@given(case=allocation_cases())
def test_every_allocator_spends_exactly_the_budget(case) -> None:
    num_groups, bins, budget, rnd = case
    total = round(budget.nbar * len(bins))
    for allocator in build_allocators(num_groups, budget, rnd):
        for _ in range(2):  # a second call also runs from the moved mu
            rollouts = allocator.allocate(bins)
            assert rollouts.shape == bins.shape
            assert int(rollouts.sum()) == total, type(allocator).__name__
            assert rollouts.min() >= budget.n_min and rollouts.max() <= budget.n_max, type(allocator).__name__
            for b in np.unique(bins):  # prompts of one bin differ by at most one rollout
                assert np.ptp(rollouts[bins == b]) <= 1, type(allocator).__name__
        if isinstance(allocator, RolloutGDROAllocator):
            assert allocator.mu >= 0.0


@settings(max_examples=50, deadline=None)
@given(
    batch_size=st.integers(1, 50),
    n_min=st.integers(1, 4),
    width=st.integers(0, 8),
    below=st.booleans(),
    gap=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_every_allocator_rejects_an_infeasible_budget(batch_size, n_min, width, below, gap) -> None:
    n_max = n_min + width
    nbar = n_min - gap if below else n_max + gap  # M nbar outside [M n_min, M n_max]
    budget = BudgetConfig(nbar=nbar, n_min=n_min, n_max=n_max)
    bins = np.zeros(batch_size, dtype=np.int64)
    for build in (FixedAllocator, SqrtOptimalAllocator, RolloutGDROAllocator, KnapsackAllocator):
        with pytest.raises(ValueError, match=r"allocator\.n"):
            build(1, budget).allocate(bins)
