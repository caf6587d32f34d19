"""Resume equivalence: save every controller at step 20, restore into fresh objects, replay 21-50."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sim_helpers import build_sim_run

from gdro.core.difficulty import ClassifierConfig
from gdro.sim.loop import simulate_step

CONTROLLERS = [
    ("uniform", "fixed", {}),
    ("prompt_gdro", "fixed", {}),
    ("prompt_gdro", "fixed", {"mode": "resample"}),
    ("prompt_gdro", "fixed", {"score_signal": "failure", "share_norm": True, "score_norm": "none"}),
    ("uniform", "rollout_gdro", {}),
    ("uniform", "rollout_gdro_paper", {}),
    ("prompt_gdro_paper", "rollout_gdro_paper", {}),
    ("uniform", "sqrt_optimal", {}),
    ("prompt_gdro", "rollout_gdro", {}),
    ("spo", "fixed", {}),
    ("uniform", "knapsack", {}),
]


def _trace(simulator, curriculum, steps: int) -> list[tuple]:
    out = []
    for _ in range(steps):
        plan, correct, report = simulate_step(simulator, curriculum, batch_size=64)
        out.append(
            (
                plan.prompt_ids.tolist(),
                plan.bins.tolist(),
                plan.rollouts_per_prompt.tolist(),
                plan.advantage_weights.tolist(),
                correct.tolist(),
                np.nan_to_num(report.score, nan=-1.0).tolist(),
                report.shadow_price,
            )
        )
    return out


@pytest.mark.parametrize(("sampler", "allocator", "options"), CONTROLLERS)
def test_resume_at_step_20_replays_steps_21_to_50(sampler: str, allocator: str, options: dict) -> None:
    classifier = ClassifierConfig(exclude_extremes=True, window=10)
    simulator, curriculum = build_sim_run(
        sampler, allocator, seed=3, num_prompts=256, classifier=classifier, sampler_options=options
    )
    _trace(simulator, curriculum, 20)
    saved = json.loads(json.dumps({"sim": simulator.state_dict(), "curriculum": curriculum.state_dict()}))
    straight = _trace(simulator, curriculum, 30)

    fresh_sim, fresh_curriculum = build_sim_run(
        sampler, allocator, seed=99, num_prompts=256, classifier=classifier, sampler_options=options
    )
    fresh_sim.load_state_dict(saved["sim"])
    fresh_curriculum.load_state_dict(saved["curriculum"])
    resumed = _trace(fresh_sim, fresh_curriculum, 30)

    assert resumed == straight
    # The run did something worth replaying: bins moved and (for Rollout-GDRO) allocations varied.
    assert len({b for step in straight for b in step[1]}) > 2
    rollout_counts = {n for step in straight for n in step[2]}
    if allocator != "fixed":
        assert len(rollout_counts) > 1
    if allocator == "rollout_gdro_paper":  # the Gumbel draws and mu moved, and were replayed
        assert len({step[6] for step in straight}) > 1


def test_rollout_gdro_paper_replays_only_with_its_gumbel_state() -> None:
    """The negative control of the replay above: the same restore with the Gumbel generator left fresh."""
    classifier = ClassifierConfig(window=10)
    simulator, curriculum = build_sim_run(
        "uniform", "rollout_gdro_paper", seed=3, num_prompts=256, classifier=classifier
    )
    _trace(simulator, curriculum, 20)
    saved = json.loads(json.dumps({"sim": simulator.state_dict(), "curriculum": curriculum.state_dict()}))
    straight = _trace(simulator, curriculum, 30)

    fresh_sim, fresh_curriculum = build_sim_run(
        "uniform", "rollout_gdro_paper", seed=99, num_prompts=256, classifier=classifier
    )
    fresh_sim.load_state_dict(saved["sim"])
    unrestored = dict(saved["curriculum"])
    unrestored["allocator"] = {
        **saved["curriculum"]["allocator"],
        "rng": fresh_curriculum.allocator.rng.bit_generator.state,
    }
    fresh_curriculum.load_state_dict(unrestored)
    assert [step[2] for step in _trace(fresh_sim, fresh_curriculum, 30)] != [step[2] for step in straight]
