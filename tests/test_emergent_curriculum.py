"""The emergent curriculum on the learning simulator (2048 prompts, 10 latent levels, lr 0.05, M = 256,
nbar = 4, 3000 steps, seeds 0-2). Each property is checked for the controller in every seed, and shown to
FAIL for its uniform counterpart (uniform sampler / fixed allocator), so the tests can fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from sim_helpers import build_sim_run

from gdro.core.difficulty import ClassifierConfig
from gdro.sim.loop import run_simulation

STEPS = 3000
BATCH = 256
NBAR = 4.0
SEEDS = (0, 1, 2)


@dataclass
class Trace:
    """Per-step records of one simulated run."""

    weighted_level_gap: list[float] = field(default_factory=list)
    bins: list[np.ndarray] = field(default_factory=list)
    rollouts: list[np.ndarray] = field(default_factory=list)
    success: list[np.ndarray] = field(default_factory=list)
    mu: list[float | None] = field(default_factory=list)
    favourite_mean: list[float] = field(default_factory=list)

    def per_bin(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Time-averaged (prompt-weighted) success and rollouts per prompt per bin, and the prompt counts."""
        bins = np.concatenate(self.bins)
        counts = np.bincount(bins)
        success = np.bincount(bins, weights=np.concatenate(self.success)) / np.maximum(counts, 1)
        rollouts = np.bincount(bins, weights=np.concatenate(self.rollouts)) / np.maximum(counts, 1)
        return success, rollouts, counts


def simulate(sampler: str, allocator: str, seed: int, classifier: ClassifierConfig | None = None) -> Trace:
    simulator, curriculum = build_sim_run(sampler, allocator, seed, classifier=classifier)
    trace = Trace()

    def record(step, plan, correct, report) -> None:
        level = simulator.latent_level[plan.prompt_ids]
        weights = plan.advantage_weights
        trace.weighted_level_gap.append(float((weights * level).sum() / weights.sum() - level.mean()))
        trace.bins.append(plan.bins)
        trace.rollouts.append(plan.rollouts_per_prompt)
        trace.success.append(correct / plan.rollouts_per_prompt)
        trace.mu.append(report.shadow_price)
        if hasattr(curriculum.allocator, "favourite_arms"):
            favourite = curriculum.allocator.favourite_arms(curriculum.allocator.arm_probs)
            trace.favourite_mean.append(float(favourite[plan.bins].mean()))

    run_simulation(simulator, curriculum, STEPS, BATCH, record)
    return trace


def prompt_gdro_violations(trace: Trace) -> list[str]:
    """Over steps T/3..T the advantage-weighted mean latent level exceeds the plain mean by >= 0.15."""
    gap = float(np.mean(trace.weighted_level_gap[STEPS // 3 :]))
    return [] if gap >= 0.15 else [f"weighted-minus-unweighted mean level {gap:.3f} < 0.15"]


def sqrt_optimal_violations(trace: Trace) -> list[str]:
    """Bins near success 0.5 get >= 2 more rollouts per prompt than bins below 0.05 or above 0.95."""
    success, rollouts, counts = trace.per_bin()
    middle = (counts > 0) & (np.abs(success - 0.5) <= 0.15)
    extreme = (counts > 0) & ((success < 0.05) | (success > 0.95))
    if not middle.any() or not extreme.any():
        return ["no bin near 0.5 or no extreme bin"]
    gap = rollouts[middle].min() - rollouts[extreme].max()
    return [] if gap >= 2.0 else [f"middle-minus-extreme rollouts {gap:.2f} < 2"]


def rollout_gdro_violations(trace: Trace) -> list[str]:
    """Shoulder bins get more compute than middle bins; solved/hopeless bins little; mu settles."""
    success, rollouts, counts = trace.per_bin()
    seen = counts > 0
    shoulder = seen & (((success >= 0.05) & (success <= 0.3)) | ((success >= 0.7) & (success <= 0.95)))
    middle = seen & (success >= 0.35) & (success <= 0.65)
    extreme = seen & ((success < 0.03) | (success > 0.97))
    problems = []
    if not shoulder.any() or not middle.any() or not extreme.any():
        return ["a success range holds no bin"]
    shoulder_mean = (counts * rollouts)[shoulder].sum() / counts[shoulder].sum()
    middle_mean = (counts * rollouts)[middle].sum() / counts[middle].sum()
    if shoulder_mean - middle_mean < 0.5:
        problems.append(f"shoulder {shoulder_mean:.2f} vs middle {middle_mean:.2f} rollouts: gap < 0.5")
    if rollouts[extreme].max() > NBAR + 0.75:
        problems.append(f"extreme bins get {rollouts[extreme].max():.2f} > nbar + 0.75 rollouts")
    mu = np.array([np.nan if m is None else m for m in trace.mu])
    late_mu = mu[STEPS // 2 :]
    if not np.any(mu != 0.0):
        problems.append("mu never left 0")
    elif not late_mu.std() < 0.75 * late_mu.mean():
        problems.append(f"mu unsettled: std {late_mu.std():.4f} >= 0.75 x mean {late_mu.mean():.4f}")
    favourite = np.mean(trace.favourite_mean[STEPS // 2 :]) if trace.favourite_mean else np.nan
    if not abs(favourite - NBAR) <= 0.25:
        problems.append(f"favourite arms average {favourite:.3f}, not within 0.25 of nbar")
    return problems


@pytest.mark.parametrize("seed", SEEDS)
def test_prompt_gdro_weights_lean_toward_harder_prompts(seed: int) -> None:
    assert prompt_gdro_violations(simulate("prompt_gdro", "fixed", seed)) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_sqrt_optimal_spends_rollouts_where_variance_is(seed: int) -> None:
    assert sqrt_optimal_violations(simulate("uniform", "sqrt_optimal", seed)) == []


# H = 50 as in the paper's Rollout-GDRO runs.
ROLLOUT_CLASSIFIER = ClassifierConfig(window=50)


@pytest.mark.parametrize("seed", SEEDS)
def test_rollout_gdro_moves_compute_to_the_shoulders_and_mu_settles(seed: int) -> None:
    assert rollout_gdro_violations(simulate("uniform", "rollout_gdro", seed, ROLLOUT_CLASSIFIER)) == []


def test_uniform_counterparts_fail_every_assertion() -> None:
    grpo = simulate("uniform", "fixed", seed=0, classifier=ROLLOUT_CLASSIFIER)
    assert prompt_gdro_violations(grpo)
    assert sqrt_optimal_violations(grpo)
    assert rollout_gdro_violations(grpo)
