"""The learning simulator: its prompt mix, GRPO closed form, rollouts, learning rule and state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gdro.core.curriculum import StepPlan
from gdro.sim import LearningSimulator, SimulatorConfig, group_abs_advantage_sum
from gdro.train.sim_learner import SimLearner


def test_level_mix_follows_one_over_d_plus_one() -> None:
    sim = LearningSimulator(SimulatorConfig(num_prompts=20000, seed=1))
    expected = 1.0 / np.arange(1, 11)
    expected /= expected.sum()
    observed = np.bincount(sim.latent_level, minlength=10) / sim.num_prompts
    assert np.abs(observed - expected).max() < 0.01
    assert sim.latent_level.shape == (20000,)


def test_initial_level_success_matches_the_design() -> None:
    level_success = LearningSimulator(SimulatorConfig()).level_success()
    assert 0.8 < level_success[0] < 0.95
    assert 0.4 < level_success[2] < 0.6
    assert level_success[9] < 0.01
    assert np.all(np.diff(level_success) < 0)


def test_group_abs_advantage_sum_matches_brute_force() -> None:
    eps = 1e-6
    ns, cs, expected = [], [], []
    for n in range(1, 13):
        for c in range(n + 1):
            rewards = np.array([1.0] * c + [-1.0] * (n - c))
            if n == 1:
                brute = 0.0
            else:
                brute = np.abs((rewards - rewards.mean()) / (rewards.std(ddof=1) + eps)).sum()
            ns.append(n)
            cs.append(c)
            expected.append(brute)
            assert group_abs_advantage_sum(n, c, eps) == pytest.approx(brute, rel=1e-12, abs=1e-12)
    vectorised = group_abs_advantage_sum(np.array(ns), np.array(cs), eps)
    np.testing.assert_allclose(vectorised, expected, rtol=1e-12, atol=1e-12)


def test_rollout_matches_success_probability() -> None:
    sim = LearningSimulator(SimulatorConfig(num_prompts=512, seed=2))
    prompt_ids = np.arange(512)
    rollouts_per_prompt = np.tile([2, 4, 8, 12], 128)
    probability = sim.success_probability(prompt_ids)
    draws = 400
    correct = sum(sim.rollout(prompt_ids, rollouts_per_prompt) for _ in range(draws))
    trials = draws * rollouts_per_prompt
    variance = trials * probability * (1.0 - probability)
    z = (correct - trials * probability) / np.sqrt(np.maximum(variance, 1e-12))
    informative = variance > 25.0  # the normal approximation holds
    assert informative.sum() > 200
    assert np.abs(z[informative]).max() < 5.0
    # Binomial variance, not just the mean: standardised residuals have unit mean square.
    assert 0.8 < np.mean(z[informative] ** 2) < 1.2
    assert correct.sum() == pytest.approx((trials * probability).sum(), rel=0.01)


def test_rollout_is_reproducible_from_the_seed() -> None:
    prompt_ids = np.arange(0, 2048, 7)
    first, second, other = (LearningSimulator(SimulatorConfig(seed=seed)) for seed in (3, 3, 4))
    for _ in range(5):
        a = first.rollout(prompt_ids, 4)
        np.testing.assert_array_equal(a, second.rollout(prompt_ids, 4))
    assert not np.array_equal(first.rollout(prompt_ids, 8), other.rollout(prompt_ids, 8))


def test_learn_without_signal_leaves_skill_unchanged() -> None:
    sim = LearningSimulator(SimulatorConfig())
    prompt_ids = np.arange(256)
    before = sim.skill.copy()
    correct = sim.rollout(prompt_ids, 4)
    assert np.any((correct > 0) & (correct < 4))
    sim.learn(prompt_ids, 4, correct, np.zeros(256))
    np.testing.assert_array_equal(sim.skill, before)
    rollouts_per_prompt = np.tile([1, 3, 4, 12], 64)
    constant = np.where(np.arange(256) % 2 == 0, 0, rollouts_per_prompt)
    sim.learn(prompt_ids, rollouts_per_prompt, constant, 5.0)
    np.testing.assert_array_equal(sim.skill, before)


def test_one_learn_step_by_hand() -> None:
    config = SimulatorConfig(num_prompts=200, num_levels=3, lr=0.12, spread=np.log(2.0), adv_eps=0.0)
    sim = LearningSimulator(config)
    level_0, level_1, level_2 = (int(np.flatnonzero(sim.latent_level == d)[0]) for d in range(3))
    prompt_ids = np.array([level_0, level_2, level_1])
    rollouts_per_prompt = np.array([4, 2, 6])  # 12 rollouts in all
    correct = np.array([2, 1, 6])
    weights = np.array([1.0, 0.5, 3.0])
    sim.learn(prompt_ids, rollouts_per_prompt, correct, weights)
    # sum|A|: (n=4, c=2) -> 4 / sqrt(4/3) = 2 sqrt(3); (n=2, c=1) -> 2 / sqrt(2) = sqrt(2); c = n -> 0.
    gain = 0.12 / 12 * np.array([2 * np.sqrt(3), 0.0, 0.5 * np.sqrt(2)])
    # Kernel exp(-ln 2 |d - d'|) = 2^-|d - d'|.
    transfer = np.array([gain[0] + gain[2] / 4, (gain[0] + gain[2]) / 2, gain[0] / 4 + gain[2]])
    np.testing.assert_allclose(sim.skill, 2.0 + transfer, rtol=0, atol=1e-14)


def _uniform_batch(rng: np.random.Generator, num_prompts: int, batch_size: int) -> np.ndarray:
    return rng.choice(num_prompts, size=batch_size, replace=False)


def test_frontier_moves_up_under_uniform_training() -> None:
    sim = LearningSimulator(SimulatorConfig())
    sampler = np.random.default_rng(11)
    initial = sim.frontier()
    # The 1/(d+1) mix puts the initial frontier near 1.5 (1.496 here; 1.508 with 200k prompts).
    assert 1.4 <= initial <= 1.6
    for _ in range(3000):
        prompt_ids = _uniform_batch(sampler, sim.num_prompts, 256)
        correct = sim.rollout(prompt_ids, 4)
        sim.learn(prompt_ids, 4, correct, 1.0)
    final = sim.frontier()
    level_success = sim.level_success()
    assert final - initial >= 1.5  # measured: 1.50 -> 4.9
    assert level_success[0] > 0.95
    assert level_success[9] < level_success[0]


def test_state_dict_round_trip_through_json() -> None:
    sampler = np.random.default_rng(5)
    batches = [_uniform_batch(sampler, 2048, 256) for _ in range(50)]
    rollouts_per_prompt = np.tile([2, 4, 6], 86)[:256]

    def run(sim: LearningSimulator, steps: list[np.ndarray]) -> list[np.ndarray]:
        outputs = []
        for prompt_ids in steps:  # `step`: rollouts, learning and the surrogate proxy (its own stream)
            correct, surrogate = sim.step(prompt_ids, rollouts_per_prompt, np.ones(len(prompt_ids)))
            outputs += [correct, surrogate, sim.skill.copy()]
        return outputs

    original = LearningSimulator(SimulatorConfig(seed=7))
    run(original, batches[:20])
    saved = json.loads(json.dumps(original.state_dict()))
    continued = run(original, batches[20:])

    restored = LearningSimulator(SimulatorConfig(seed=8))
    restored.load_state_dict(saved)
    np.testing.assert_array_equal(
        restored.latent_level, LearningSimulator(SimulatorConfig(seed=7)).latent_level
    )
    resumed = run(restored, batches[20:])
    assert len(resumed) == len(continued) == 90
    for expected, actual in zip(continued, resumed, strict=True):
        np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(restored.level_success(), original.level_success())


def test_load_state_dict_rejects_another_shape() -> None:
    state = LearningSimulator(SimulatorConfig(num_levels=5)).state_dict()
    with pytest.raises(ValueError, match="levels"):
        LearningSimulator(SimulatorConfig()).load_state_dict(state)


def test_surrogate_loss_proxy_by_hand() -> None:
    sim = LearningSimulator(SimulatorConfig(surrogate_drift=0.05, surrogate_noise=0.0))
    rollouts_per_prompt = np.array([4, 2, 4, 4, 1, 12])
    correct = np.array([2, 1, 0, 4, 1, 3])
    # -drift * mean_j |A_ij|: (n=4, c=2) sum|A| = 2 sqrt(3) -> mean sqrt(3)/2; (n=2, c=1) sqrt(2) -> sqrt(2)/2;
    # constant groups and n = 1 -> exactly 0; (12, 3) from the closed form.
    expected = -0.05 * np.array(
        [np.sqrt(3) / 2, np.sqrt(2) / 2, 0.0, 0.0, 0.0, group_abs_advantage_sum(12, 3)[()] / 12]
    )
    np.testing.assert_allclose(sim.surrogate_loss(rollouts_per_prompt, correct), expected, rtol=1e-6)
    assert np.all(sim.surrogate_loss(rollouts_per_prompt, correct)[2:5] == 0.0)


def test_surrogate_noise_spares_constant_groups_and_leaves_rollouts_alone() -> None:
    noisy, quiet = (LearningSimulator(SimulatorConfig(seed=4, surrogate_noise=0.02)) for _ in range(2))
    prompt_ids = np.arange(2048)
    correct = noisy.rollout(prompt_ids, 4)
    np.testing.assert_array_equal(quiet.rollout(prompt_ids, 4), correct)
    loss = noisy.surrogate_loss(4, correct)
    mixed = (correct > 0) & (correct < 4)
    assert mixed.sum() > 300 and np.all(loss[~mixed] == 0.0)
    residual = loss[mixed] + 0.05 * group_abs_advantage_sum(4, correct[mixed]) / 4
    assert 0.017 < residual.std() < 0.023 and abs(residual.mean()) < 0.004
    # The noise has its own stream: the next rollouts match those of a simulator that drew none.
    np.testing.assert_array_equal(noisy.rollout(prompt_ids, 4), quiet.rollout(prompt_ids, 4))


def test_sim_learner_reports_the_surrogate_proxy() -> None:
    """`policy=sim` gives the paper presets a signal: the proxy, not zeros (the old, inert behaviour)."""
    policy, twin = SimLearner(SimulatorConfig(seed=6)), LearningSimulator(SimulatorConfig(seed=6))
    prompt_ids, rollouts = np.arange(0, 2048, 8), np.full(256, 4)
    plan = StepPlan(prompt_ids, np.zeros(256, dtype=np.int64), rollouts, np.ones(256), np.ones(10) / 10)
    outcome = policy.train_step(plan)
    correct, surrogate = twin.step(prompt_ids, rollouts, np.ones(256))
    np.testing.assert_array_equal(outcome.correct_per_prompt, correct)
    np.testing.assert_array_equal(outcome.surrogate_loss, surrogate)
    assert np.count_nonzero(surrogate) > 50 and np.all(surrogate[(correct == 0) | (correct == 4)] == 0.0)


def test_sim_learner_evaluates_held_out_prompts_per_level() -> None:
    """Rejects the old evaluation on the training prompts: its pooled value weighed the levels 1/(d+1),
    so it sat far above the mean of the per-level values (0.77 against 0.51 for pass@8 at the start)."""
    policy = SimLearner(SimulatorConfig(seed=5, eval_prompts_per_level=32))
    simulator = policy.simulator
    assert np.array_equal(np.bincount(simulator.heldout_level), np.full(10, 32))
    # Not the training prompts, and fixed by the seed alone (a stream of their own).
    assert not np.isin(simulator.heldout_difficulty, simulator.difficulty).any()
    other = LearningSimulator(SimulatorConfig(seed=5, num_prompts=100, eval_prompts_per_level=32))
    np.testing.assert_array_equal(other.heldout_difficulty, simulator.heldout_difficulty)
    simulator.skill += np.linspace(0.0, 3.0, 10)  # some training
    metrics = policy.evaluate()
    for level in range(10):
        in_level = simulator.heldout_level == level
        p = 1.0 / (1.0 + np.exp(-(simulator.skill[level] - simulator.heldout_difficulty[in_level])))
        assert metrics[f"eval/mean@8/level_{level}"] == pytest.approx(p.mean())
        assert metrics[f"eval/pass@8/level_{level}"] == pytest.approx((1.0 - (1.0 - p) ** 8).mean())
    for kind in ("mean", "pass"):
        levels = [metrics[f"eval/{kind}@8/level_{level}"] for level in range(10)]
        assert metrics[f"eval/{kind}@8"] == pytest.approx(np.mean(levels))
