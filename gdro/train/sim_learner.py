"""The learning simulator behind the learner interface: the whole loop with no model (`policy=sim`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gdro.core.curriculum import StepPlan
from gdro.sim.simulator import LearningSimulator, SimulatorConfig
from gdro.train.learner import GeneratedRound, StepOutcome


class SimLearner:
    """Rollouts are Binomial draws from the simulator; learning is its skill update.

    Surrogate signal: the real clipped surrogate of a prompt is exactly 0 on the first, on-policy
    mini-batch (ratio 1, group advantages summing to 0) and comes from the policy's drift afterwards.
    The simulator makes one update per step, so it reports a proxy of that post-update loss
    (`LearningSimulator.surrogate_loss`): each rollout's ratio drifts by `surrogate_drift` (0.05) in
    the direction of its advantage, giving l_i = -drift * mean_j |A_ij| over the prompt's n_i rollouts
    (c_i correct), plus N(0, surrogate_noise^2 = 0.02^2) noise from the simulator's own seeded stream
    (saved with its state); a group without disagreement gets exactly 0. It lets the paper presets
    (`prompt_gdro_paper`, `rollout_gdro_paper`) run here on a signal of the real one's size. The
    simulator has no loss to report (`loss/*` are None). Evaluation is on the simulator's held-out prompts
    (K per latent level, never trained on) and exact in expectation: per level, mean@k = mean p(x) and
    pass@k = mean 1 - (1 - p(x))^k over the level's K prompts; pooled, the same over all of them (every
    level weighs 1/L).
    """

    def __init__(self, config: SimulatorConfig, eval_samples: int = 8, step_seconds: float = 0.0) -> None:
        self.simulator = LearningSimulator(config)
        self.num_prompts = self.simulator.num_prompts
        self.eval_samples = eval_samples
        self.step_seconds = (
            step_seconds  # wall time a step takes (a sleep), to rehearse a cluster job's timing
        )

    def train_step(self, plan: StepPlan) -> StepOutcome:
        """Roll out n_i per prompt, learn from the advantage-weighted signal, report the surrogate proxy."""
        everything = np.arange(len(plan.prompt_ids))
        return self.update(plan, [self.generate_round(plan, 0)], [everything])

    def generate_round(self, plan: StepPlan, round_index: int) -> GeneratedRound:
        """c_i ~ Binomial(n_i, p(x_i)) for the round's prompts, from the simulator's seeded stream (each
        round draws the next numbers of it: `round_index` changes nothing)."""
        correct = self.simulator.rollout(plan.prompt_ids, plan.rollouts_per_prompt)
        return GeneratedRound(plan, correct, tokens_per_prompt=None)

    def update(self, plan: StepPlan, rounds: list[GeneratedRound], chosen: list[np.ndarray]) -> StepOutcome:
        """The skill update on the trained batch `plan` (round r's positions `chosen[r]`), then the
        surrogate proxy of its groups."""
        correct = np.concatenate(
            [
                generated.correct_per_prompt[positions]
                for generated, positions in zip(rounds, chosen, strict=True)
            ]
        )
        self.simulator.learn(plan.prompt_ids, plan.rollouts_per_prompt, correct, plan.advantage_weights)
        surrogate = self.simulator.surrogate_loss(plan.rollouts_per_prompt, correct)
        if self.step_seconds > 0:
            time.sleep(self.step_seconds)
        return StepOutcome(
            correct_per_prompt=correct,
            surrogate_loss=surrogate,
            generated_tokens=0,
            metrics={"loss/total": None, "loss/policy": None, "loss/kl": None},
        )

    def evaluate(self) -> dict[str, float]:
        """Expected mean@k and pass@k on the held-out prompts, per latent level and pooled."""
        k = self.eval_samples
        p = self.simulator.heldout_success_probability()
        levels = self.simulator.heldout_level
        solved = 1.0 - (1.0 - p) ** k
        metrics = {f"eval/mean@{k}": float(p.mean()), f"eval/pass@{k}": float(solved.mean())}
        for level in np.unique(levels):
            in_level = levels == level
            metrics[f"eval/mean@{k}/level_{level}"] = float(p[in_level].mean())
            metrics[f"eval/pass@{k}/level_{level}"] = float(solved[in_level].mean())
        return metrics

    def save(self, directory: Path) -> None:
        """The simulator's state as JSON."""
        (directory / "simulator.json").write_text(json.dumps(self.simulator.state_dict()))

    def load(self, directory: Path) -> None:
        """Restore the simulator's state."""
        self.simulator.load_state_dict(json.loads((directory / "simulator.json").read_text()))

    def ensure_finite(self) -> None:
        """The simulator's skills are bounded by construction: nothing to check."""

    def export(self, directory: Path, metadata: dict[str, Any]) -> None:
        """The simulator has no weights to export: nothing is written."""

    def close(self) -> None:
        """Nothing to release."""
