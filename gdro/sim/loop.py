"""The curriculum loop on the learning simulator: plan -> rollout -> learn -> observe, no model.

This is the controllers' whole closed loop at thousands of steps per second, used by the simulator
tests; `SimLearner` (`policy=sim`) and the controller benchmark run the same `LearningSimulator.step`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gdro.core.curriculum import BinReport, Curriculum, StepPlan
from gdro.sim.simulator import LearningSimulator

StepCallback = Callable[[int, StepPlan, np.ndarray, BinReport], None]


def simulate_step(
    simulator: LearningSimulator, curriculum: Curriculum, batch_size: int
) -> tuple[StepPlan, np.ndarray, BinReport]:
    """One step: the curriculum plans, the simulator rolls out, learns from the weighted signal and
    reports its surrogate-loss proxy (`LearningSimulator.surrogate_loss`), the curriculum observes."""
    plan = curriculum.plan(batch_size)
    correct, surrogate = simulator.step(plan.prompt_ids, plan.rollouts_per_prompt, plan.advantage_weights)
    report = curriculum.observe(plan, correct, surrogate_loss=surrogate)
    return plan, correct, report


def run_simulation(
    simulator: LearningSimulator,
    curriculum: Curriculum,
    steps: int,
    batch_size: int,
    on_step: StepCallback | None = None,
) -> None:
    """Run `steps` simulated steps, calling `on_step(step, plan, correct, report)` after each."""
    for step in range(steps):
        plan, correct, report = simulate_step(simulator, curriculum, batch_size)
        if on_step is not None:
            on_step(step, plan, correct, report)
