"""Hand-computed values and properties for the rollout budget and the allocators (spec section 4)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.allocators import (
    BudgetConfig,
    FixedAllocator,
    RolloutGDROAllocator,
    RolloutGDROConfig,
    SqrtOptimalAllocator,
    clipped_scale_solution,
    exact_budget_arms,
    informative_utility,
    integerise,
)
from gdro.core.step import StepResult

NAN = float("nan")


def result(bins, rollouts, success_rate, correct=None, surrogate_loss=None) -> StepResult:
    m = len(bins)
    return StepResult(
        prompt_ids=np.arange(m),
        bins=np.asarray(bins, dtype=np.int64),
        rollouts_per_prompt=np.asarray(rollouts, dtype=np.int64),
        correct_per_prompt=np.zeros(m, dtype=np.int64) if correct is None else np.asarray(correct),
        success_rate=np.asarray(success_rate, dtype=np.float64),
        surrogate_loss=None if surrogate_loss is None else np.asarray(surrogate_loss, dtype=np.float64),
    )


def arm_index(n: int, n_min: int = 2) -> int:
    return n - n_min


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


# ---------------------------------------------------------------- fixed


def test_fixed_gives_nbar_to_everyone() -> None:
    counts = FixedAllocator(10).allocate(np.array([0, 3, 3, 9, 1]))
    np.testing.assert_array_equal(counts, [4, 4, 4, 4, 4])
    assert FixedAllocator(10).shadow_price is None


def test_fixed_with_non_integer_nbar() -> None:
    counts = FixedAllocator(3, BudgetConfig(nbar=4.5)).allocate(np.array([0, 1, 2, 0, 1, 2]))
    assert counts.sum() == 27  # 4.5 * 6
    assert set(counts.tolist()) == {4, 5}
    assert int((counts == 5).sum()) == 3  # 6 * 4 = 24, 3 short


# ---------------------------------------------------------------- sqrt_optimal


def test_sqrt_optimal_unclipped_solution() -> None:
    allocator = SqrtOptimalAllocator(2)
    allocator.variance = np.array([0.04, 0.16])  # sqrt v = (0.2, 0.4)
    bins = np.array([0, 0, 1, 1])
    # qhat = (0.5, 0.5); sum_j qhat_j sqrt(v_j) = 0.1 + 0.2 = 0.3; n* = 4 * (0.2, 0.4) / 0.3 = (8/3, 16/3).
    solution = clipped_scale_solution(np.array([2, 2]), np.array([0.2, 0.4]), 2, 12, 16)
    np.testing.assert_allclose(solution, [8 / 3, 16 / 3])
    # Per-prompt targets (2.667, 2.667, 5.333, 5.333): floors 14, the two 0.667 fractions round up.
    np.testing.assert_array_equal(allocator.allocate(bins), [3, 3, 5, 5])


def test_sqrt_optimal_lower_bound_binds() -> None:
    allocator = SqrtOptimalAllocator(2)
    allocator.variance = np.array([0.01, 0.25])  # sqrt v = (0.1, 0.5)
    # Unclipped: qhat = (1/4, 3/4), 0.025 + 0.375 = 0.4, n* = 4 * (0.1, 0.5) / 0.4 = (1, 5): 1 < n_min.
    # Clipped: bin 0 at 2, bin 1 takes the rest: 3 n_1 = 16 - 2 -> n_1 = 14/3.
    solution = clipped_scale_solution(np.array([1, 3]), np.array([0.1, 0.5]), 2, 12, 16)
    np.testing.assert_allclose(solution, [2, 14 / 3])
    # Targets (2, 4.667, 4.667, 4.667): floors 14, 2 short -> the first two 0.667 fractions.
    np.testing.assert_array_equal(allocator.allocate(np.array([0, 1, 1, 1])), [2, 5, 5, 4])


def test_sqrt_optimal_upper_bound_binds() -> None:
    # sqrt v = (0.5, 0.1), counts (1, 9), nbar 4, n_max 6: unclipped n*_0 = 4 * 0.5 / (0.05 + 0.09) = 14.3,
    # clipped to 6; bin 1: 9 n_1 = 40 - 6 -> n_1 = 34/9.
    solution = clipped_scale_solution(np.array([1, 9]), np.array([0.5, 0.1]), 2, 6, 40)
    np.testing.assert_allclose(solution, [6, 34 / 9])
    allocator = SqrtOptimalAllocator(2, BudgetConfig(nbar=4, n_min=2, n_max=6))
    allocator.variance = np.array([0.25, 0.01])
    counts = allocator.allocate(np.array([0] + [1] * 9))
    assert counts[0] == 6 and counts.sum() == 40
    assert set(counts[1:].tolist()) == {3, 4}  # 34/9 = 3.78: floors 27, 7 round up


def test_sqrt_optimal_floor_prior_and_ema() -> None:
    allocator = SqrtOptimalAllocator(3)
    np.testing.assert_allclose(allocator.bin_variance(), [0.25, 0.25, 0.25])  # prior for unseen bins
    # Bin 0: mean of p1 (1 - p1) over (0.5, 0.2) = (0.25 + 0.16) / 2 = 0.205 initialises the EMA.
    # Bin 1: 0.999 * 0.001 = 0.000999, floored at 0.01 when used. Bin 2 unseen: prior 0.25.
    allocator.update(result([0, 0, 1], [4, 4, 4], [0.5, 0.2, 0.999]))
    np.testing.assert_allclose(allocator.variance, [0.205, 0.000999, NAN])
    np.testing.assert_allclose(allocator.bin_variance(), [0.205, 0.01, 0.25])
    allocator.update(result([0], [4], [0.1]))  # 0.8 * 0.205 + 0.2 * 0.09 = 0.182
    np.testing.assert_allclose(allocator.variance, [0.182, 0.000999, NAN])
    restored = SqrtOptimalAllocator(3)
    restored.load_state_dict(json.loads(json.dumps(allocator.state_dict())))
    np.testing.assert_array_equal(restored.bin_variance(), allocator.bin_variance())


def test_sqrt_optimal_equal_variances_give_nbar() -> None:
    counts = SqrtOptimalAllocator(4).allocate(np.array([0, 1, 1, 3, 3, 3]))  # all at the prior
    np.testing.assert_array_equal(counts, [4] * 6)


# ---------------------------------------------------------------- rollout_gdro: utilities and scores


def test_informative_utility_hand_values() -> None:
    u = informative_utility(np.array([0.5, 0.25, 0.0, 1.0]), np.array([2, 3]))
    expected = [
        [1 - 0.25 - 0.25, 1 - 0.125 - 0.125],  # p = 0.5: 0.5, 0.75
        [1 - 0.0625 - 0.5625, 1 - 0.25**3 - 0.75**3],  # p = 0.25: 0.375, 0.5625
        [0.0, 0.0],  # never correct: no informative group
        [0.0, 0.0],  # always correct
    ]
    np.testing.assert_allclose(u, expected)
    assert u[1, 1] == pytest.approx(0.5625)


def test_arm_scores_with_mu_and_unobserved_arms() -> None:
    allocator = RolloutGDROAllocator(3)  # arms 2..12, nbar 4
    allocator.utility[0, arm_index(2)] = 0.3
    allocator.utility[0, arm_index(5)] = 0.6
    allocator.observed[0, [arm_index(2), arm_index(5)]] = True
    allocator.utility[1] = np.linspace(0.0, 1.0, 11)
    allocator.observed[1] = True
    allocator.mu = 0.1
    arms = np.arange(2, 13)
    penalty = 0.1 * (arms - 4)
    bin0 = np.full(11, (0.3 + 0.6) / 2)  # unobserved arms take the bin's observed mean 0.45
    bin0[[0, 3]] = [0.3, 0.6]
    scores = allocator.arm_scores()
    np.testing.assert_allclose(scores[0], bin0 - penalty)
    np.testing.assert_allclose(scores[1], np.linspace(0.0, 1.0, 11) - penalty)
    np.testing.assert_allclose(scores[2], -penalty)  # nothing observed: 0 - mu (n - nbar)


def test_informative_update_fills_every_arm() -> None:
    allocator = RolloutGDROAllocator(3)
    allocator.update(result([0, 0, 1], [4, 4, 4], [0.5, 0.25, 0.0]))
    # Bin 0, arm 2: (0.5 + 0.375) / 2 = 0.4375; arm 3: (0.75 + 0.5625) / 2 = 0.65625. Bin 1 (p1 = 0): 0.
    assert allocator.utility[0, arm_index(2)] == pytest.approx(0.4375)
    assert allocator.utility[0, arm_index(3)] == pytest.approx(0.65625)
    np.testing.assert_array_equal(allocator.utility[1], 0.0)
    np.testing.assert_array_equal(allocator.observed, [[True] * 11, [True] * 11, [False] * 11])
    allocator.update(result([0], [4], [0.5]))  # arm 2: 0.6 * 0.4375 + 0.4 * 0.5 = 0.4625
    assert allocator.utility[0, arm_index(2)] == pytest.approx(0.4625)
    assert allocator.utility[0, arm_index(3)] == pytest.approx(0.6 * 0.65625 + 0.4 * 0.75)


def test_informative_update_uses_the_pooled_rate_for_unseen_prompts() -> None:
    allocator = RolloutGDROAllocator(1)
    # Prompt 0 has no rate (NaN): it takes the bin's pooled rate (1 + 2) / (4 + 4) = 0.375.
    # Arm 2: mean(1 - 0.375^2 - 0.625^2, 1 - 0.5^2 - 0.5^2) = (0.46875 + 0.5) / 2.
    allocator.update(result([0, 0], [4, 4], [NAN, 0.5], correct=[1, 2]))
    assert allocator.utility[0, arm_index(2)] == pytest.approx((0.46875 + 0.5) / 2)


def test_surrogate_update_touches_only_the_played_arms() -> None:
    allocator = RolloutGDROAllocator(2, config=RolloutGDROConfig(utility="surrogate"))
    # U = -(mean loss) per (bin, arm played): bin 0 arm 3: -0.2, bin 0 arm 5: 0.4, bin 1 arm 3: -0.1.
    allocator.update(result([0, 0, 1], [3, 5, 3], [0.5] * 3, surrogate_loss=[0.2, -0.4, 0.1]))
    observed = np.zeros((2, 11), dtype=bool)
    observed[0, [arm_index(3), arm_index(5)]] = True
    observed[1, arm_index(3)] = True
    np.testing.assert_array_equal(allocator.observed, observed)
    assert allocator.utility[0, arm_index(3)] == pytest.approx(-0.2)
    assert allocator.utility[0, arm_index(5)] == pytest.approx(0.4)
    assert allocator.utility[1, arm_index(3)] == pytest.approx(-0.1)
    assert allocator.utility[~observed].tolist() == [0.0] * 19
    # Bin 0 arm 3 again with loss 0.1 and 0.3 (mean 0.2): 0.6 * (-0.2) + 0.4 * (-0.2) = -0.2;
    # bin 1 arm 4 first played: -0.5.
    allocator.update(result([0, 0, 1], [3, 3, 4], [0.5] * 3, surrogate_loss=[0.1, 0.3, 0.5]))
    assert allocator.utility[0, arm_index(3)] == pytest.approx(-0.2)
    assert allocator.utility[1, arm_index(4)] == pytest.approx(-0.5)
    assert allocator.utility[1, arm_index(3)] == pytest.approx(-0.1)  # not played this step
    allocator.update(result([1], [3], [0.5], surrogate_loss=[0.6]))  # 0.6 * (-0.1) + 0.4 * (-0.6) = -0.3
    assert allocator.utility[1, arm_index(3)] == pytest.approx(-0.3)


def test_surrogate_utility_needs_the_loss() -> None:
    allocator = RolloutGDROAllocator(2, config=RolloutGDROConfig(utility="surrogate"))
    with pytest.raises(ValueError, match=r"allocator\.utility=surrogate"):
        allocator.update(result([0, 1], [4, 4], [0.5, 0.5]))


def test_rollout_config_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"allocator\.utility"):
        RolloutGDROAllocator(2, config=RolloutGDROConfig(utility="variance"))
    with pytest.raises(ValueError, match=r"allocator\.alpha"):
        RolloutGDROAllocator(2, config=RolloutGDROConfig(alpha=-0.1))


# ---------------------------------------------------------------- rollout_gdro: the joint choice


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


def test_ties_go_to_nbar() -> None:
    allocator = RolloutGDROAllocator(4)  # no utility observed, mu = 0: every p_b is uniform
    bins = np.array([0, 0, 1, 3, 3, 3, 2])
    np.testing.assert_array_equal(allocator.allocate(bins), [4] * 7)
    counts = np.array([2, 3])
    log_prob = np.full((2, 11), math.log(1 / 11))
    np.testing.assert_array_equal(exact_budget_arms(counts, np.arange(2, 13), log_prob, 30, 6.0), [6, 6])


def test_mu_moves_with_the_favourite_arms() -> None:
    allocator = RolloutGDROAllocator(2)  # alpha 0.005, nbar 4
    arms = np.arange(2, 13)
    allocator.utility = np.stack([arms / 12, -arms / 12])  # bin 0 favours arm 12, bin 1 arm 2
    allocator.observed[:] = True
    bins = np.array([0, 0, 0, 1])
    rollouts = allocator.allocate(bins)
    assert rollouts.sum() == 16
    # nbar_greedy = (3 * 12 + 1 * 2) / 4 = 9.5 (the post-DP mean is 16 / 4 = 4 and would not move mu);
    # mu = max(0, 0 + 0.005 * (9.5 - 4)) = 0.0275.
    assert allocator.shadow_price == pytest.approx(0.0275)
    # Step 2: scores U - 0.0275 (n - 4); bin 0's slope 1/12 - 0.0275 > 0 still favours 12, bin 1 still 2.
    allocator.allocate(bins)
    assert allocator.mu == pytest.approx(0.055)


def test_mu_never_negative() -> None:
    allocator = RolloutGDROAllocator(2, config=RolloutGDROConfig(initial_mu=0.004))
    allocator.utility = np.tile(-np.arange(2, 13) / 12, (2, 1))  # every bin favours arm 2
    allocator.observed[:] = True
    allocator.allocate(np.array([0, 1, 1]))
    # 0.004 + 0.005 * (2 - 4) = -0.006 -> 0.
    assert allocator.mu == 0.0
    allocator.allocate(np.array([0, 1, 1]))
    assert allocator.mu == 0.0


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


def test_rollout_state_round_trip() -> None:
    allocator = RolloutGDROAllocator(3)
    allocator.update(result([0, 1, 1, 2], [4] * 4, [0.1, 0.5, 0.7, 0.9]))
    allocator.allocate(np.array([0, 1, 1, 2]))
    restored = RolloutGDROAllocator(3)
    restored.load_state_dict(json.loads(json.dumps(allocator.state_dict())))
    bins = np.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(restored.allocate(bins), allocator.allocate(bins))
    assert restored.mu == allocator.mu


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
    rollout = RolloutGDROAllocator(num_groups, budget, RolloutGDROConfig(utility="informative"))
    rollout.utility = np.array([[rnd.uniform(-1, 1) for _ in rollout.arms] for _ in range(num_groups)])
    rollout.observed = np.array([[rnd.random() < 0.7 for _ in rollout.arms] for _ in range(num_groups)])
    rollout.mu = rnd.uniform(0, 2)
    return [FixedAllocator(num_groups, budget), sqrt_optimal, rollout]


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
    for build in (FixedAllocator, SqrtOptimalAllocator, RolloutGDROAllocator):
        with pytest.raises(ValueError, match=r"allocator\.n"):
            build(1, budget).allocate(bins)
