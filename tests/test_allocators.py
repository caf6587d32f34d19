"""The allocators (docs/algorithm.md §4): `fixed`, `sqrt_optimal` and Rollout-GDRO's utilities, scores, shadow
price, state, and the exploration of its `surrogate` (bandit) mode by perturb-and-MAP. The budget and the
DP they share are tested in `test_budget.py`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sim_helpers import build_sim_run

from gdro.core.allocators import (
    BudgetConfig,
    FixedAllocator,
    RolloutGDROAllocator,
    RolloutGDROConfig,
    SqrtOptimalAllocator,
    clipped_scale_solution,
    exact_budget_arms,
    informative_utility,
)
from gdro.core.step import StepResult
from gdro.sim.loop import simulate_step

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
    p1 = np.array([0.5, 0.25, 0.0, 1.0, 0.5, 0.25])
    u = informative_utility(p1, np.array([0, 1, 2, 3, 4, 4]), 6, np.array([2, 3]))
    expected = [
        [1 - 0.25 - 0.25, 1 - 0.125 - 0.125],  # p = 0.5: 0.5, 0.75
        [1 - 0.0625 - 0.5625, 1 - 0.25**3 - 0.75**3],  # p = 0.25: 0.375, 0.5625
        [0.0, 0.0],  # never correct: no informative group
        [0.0, 0.0],  # always correct
        [(0.5 + 0.375) / 2, (0.75 + 0.5625) / 2],  # a bin's mean over its prompts
        [0.0, 0.0],  # no prompt
    ]
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(u[2:4], 0.0)  # exactly 0, not rounding noise
    arms = np.arange(2, 13)  # the running powers against ** over the spec's arms
    p1 = np.linspace(0.0, 1.0, 101)
    direct = 1.0 - p1[:, None] ** arms - (1.0 - p1[:, None]) ** arms
    np.testing.assert_allclose(informative_utility(p1, np.arange(101), 101, arms), direct, rtol=0, atol=1e-15)


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


# ---------------------------------------------------------------- rollout_gdro: shadow price and state


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


def test_rollout_state_round_trip() -> None:
    allocator = RolloutGDROAllocator(3)
    allocator.update(result([0, 1, 1, 2], [4] * 4, [0.1, 0.5, 0.7, 0.9]))
    allocator.allocate(np.array([0, 1, 1, 2]))
    restored = RolloutGDROAllocator(3)
    restored.load_state_dict(json.loads(json.dumps(allocator.state_dict())))
    bins = np.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(restored.allocate(bins), allocator.allocate(bins))
    assert restored.mu == allocator.mu


# ---------------------------------------------------------------- rollout_gdro: exploration (surrogate)


class FixedGumbel:
    """Stands in for the allocator's generator: every draw returns `g` (zeros = no perturbation)."""

    def __init__(self, g: np.ndarray) -> None:
        self.g = g

    def gumbel(self, size: tuple[int, int]) -> np.ndarray:
        assert size == self.g.shape
        return self.g


def surrogate_allocator(num_groups: int, seed: int = 0) -> RolloutGDROAllocator:
    return RolloutGDROAllocator(num_groups, config=RolloutGDROConfig(utility="surrogate"), seed=seed)


def test_surrogate_choice_maximises_the_gumbel_perturbed_objective() -> None:
    rng = np.random.default_rng(4)
    bins = np.repeat(np.arange(4), [3, 5, 9, 15])
    for _ in range(10):
        allocator = surrogate_allocator(4)
        allocator.utility, allocator.observed[:] = rng.uniform(-1, 1, size=(4, 11)), True
        g = rng.gumbel(size=(4, 11))
        allocator.rng = FixedGumbel(g)
        rollouts = allocator.allocate(bins)
        # sum_b count_b (log p_b(n_b) + g_b(n_b)) at the exact budget: one g per bin and arm.
        expected = exact_budget_arms(
            np.bincount(bins), allocator.arms, np.log(allocator.arm_probs) + g, 128, 4.0
        )
        np.testing.assert_array_equal(rollouts, expected[bins])


def test_surrogate_explores_from_uniform_scores_where_informative_stays_at_nbar() -> None:
    """Nothing observed: every arm scores alike and p_b is uniform. Unperturbed (the old behaviour, and
    `informative`, which needs no exploration) the tie goes to nbar every step; perturbed, arms vary."""
    bins = np.repeat(np.arange(5), [20, 20, 20, 20, 20])
    informative, explorer = RolloutGDROAllocator(5), surrogate_allocator(5)
    unperturbed = surrogate_allocator(5)
    unperturbed.rng = FixedGumbel(np.zeros((5, 11)))
    arms_played = [set() for _ in range(5)]
    for _ in range(50):
        np.testing.assert_array_equal(informative.allocate(bins), 4)
        np.testing.assert_array_equal(unperturbed.allocate(bins), 4)
        rollouts = explorer.allocate(bins)
        assert rollouts.sum() == 400
        for b in range(5):
            arms_played[b].add(int(rollouts[bins == b][0]))
    # Five equal bins at mean 4: an arm far above nbar needs the other bins near n_min, so it is rarer.
    assert all(len(played) >= 6 and {2, 3, 4, 5, 6} <= played for played in arms_played)


def test_gumbel_draws_follow_the_seed_and_the_saved_state() -> None:
    bins = np.repeat(np.arange(3), [10, 20, 30])
    first, twin, other = (surrogate_allocator(3, seed=seed) for seed in (1, 1, 2))
    runs = [[allocator.allocate(bins).tolist() for _ in range(5)] for allocator in (first, twin, other)]
    assert runs[0] == runs[1] != runs[2]
    restored = surrogate_allocator(3, seed=7)
    restored.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert [restored.allocate(bins).tolist() for _ in range(5)] == [
        first.allocate(bins).tolist() for _ in range(5)
    ]


def paper_preset_violations(
    seed: int, perturbed: bool = True, steps: int = 300, batch: int = 256
) -> list[str]:
    """`rollout_gdro_paper` on the simulator (its surrogate proxy, `LearningSimulator.surrogate_loss`):
    the budget is exact every step; every arm the budget allows a bin in at least a third of the steps
    is played at least once; most steps depart from nbar; mu leaves 0."""
    simulator, curriculum = build_sim_run("uniform", "rollout_gdro_paper", seed=seed)
    allocator = curriculum.allocator
    if not perturbed:  # the old choice: argmax of log p_b alone
        allocator.rng = FixedGumbel(np.zeros(allocator.utility.shape))
    groups, arms = allocator.num_groups, allocator.arms
    played = np.zeros((groups, len(arms)), dtype=bool)
    allowed = np.zeros((groups, len(arms)))
    departed, mu, problems = 0, [], []
    for _ in range(steps):
        plan, _, report = simulate_step(simulator, curriculum, batch)
        if plan.rollouts_per_prompt.sum() != 4 * batch:
            problems.append(f"budget {plan.rollouts_per_prompt.sum()} != {4 * batch}")
        played[plan.bins, plan.rollouts_per_prompt - 2] = True
        counts = np.bincount(plan.bins, minlength=groups)[:, None]
        # arm n fits when the other prompts can absorb it within [2, 12]: count (n - 4) <= (M - count) 2
        # and count (4 - n) <= (M - count) 8.
        allowed += (
            (counts > 0)
            & (counts * (arms - 4) <= (batch - counts) * 2)
            & (counts * (4 - arms) <= (batch - counts) * 8)
        )
        departed += int(np.any(plan.rollouts_per_prompt != 4))
        mu.append(report.shadow_price)
    never = np.nonzero((allowed >= steps / 3) & ~played)
    missing = [(int(b), int(arms[a])) for b, a in zip(*never, strict=True)]
    if missing:
        problems.append(f"(bin, arm) allowed but never played: {missing[:8]}")
    if departed < steps / 2:
        problems.append(f"only {departed} of {steps} steps depart from nbar")
    if max(mu) == 0.0:
        problems.append("mu never left 0")
    return problems


@pytest.mark.parametrize("seed", [0, 1])
def test_rollout_gdro_paper_plays_every_allowed_arm_on_the_simulator(seed: int) -> None:
    assert paper_preset_violations(seed) == []


def test_rollout_gdro_paper_without_the_perturbation_is_stuck_at_nbar() -> None:
    """The negative control: the same run with g = 0 plays nbar only and never moves mu."""
    problems = paper_preset_violations(0, perturbed=False)
    assert len(problems) == 3 and "never played" in problems[0] and problems[2] == "mu never left 0"
