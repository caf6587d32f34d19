"""The learner interface the training loop drives, whatever generates the rollouts.

A learner runs the model side of one step (generate n_i rollouts per prompt, reward them, update the
policy) and evaluates the policy; the curriculum side (which prompts, how many rollouts, which weights) is
the loop's. The step comes in two halves so that a filter can run several generation rounds before one
update (`gdro.train.rounds`): `generate_round` (generate and reward one round's plan) and `update` (the
policy update on the groups kept from the rounds); `train_step(plan)` is one round, every group kept. `HFLearner` trains a transformers model (`gdro.train.hf_learner`, the step itself in
`gdro.train.grpo_step`), `SimLearner` the learning simulator (`gdro.train.sim_learner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gdro.core.curriculum import GeneratedGroups, StepPlan


@dataclass
class StepOutcome:
    """What one learner step produced.

    correct_per_prompt: [M] int, c_i, rollouts with reward +1.
    surrogate_loss: [M] float or None, the per-prompt surrogate signal l(x_i) (docs/algorithm.md §3).
    generated_tokens: total completion tokens of the step.
    tokens_per_prompt: [M] completion tokens summed over each prompt's rollouts, or None where a learner
        generates no tokens (the simulator); the curriculum sums them per bin (`bins/tokens`).
    metrics: scalar losses and diagnostics (`loss/total`, `loss/policy`, `loss/kl`, ...); None where a
        learner has no such quantity (the simulator has no loss).
    discarded_rollouts, discarded_tokens: rollouts (and their completion tokens) generated this step but
        not trained (a filter's rejects; 0 today), counted in `compute/*` with the trained ones.
    gen_batches: generation rounds of the step (1 without a filter).
    generated: every group generated this step, kept or not, in generation order, for the classifier;
        None: exactly the trained batch (no filter).
    """

    correct_per_prompt: np.ndarray
    surrogate_loss: np.ndarray | None
    generated_tokens: int
    tokens_per_prompt: np.ndarray | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    discarded_rollouts: int = 0
    discarded_tokens: int = 0
    gen_batches: int = 1
    generated: GeneratedGroups | None = None


@dataclass
class GeneratedRound:
    """One generation round: its plan, each group's outcome over the whole round (every rank's, the same
    on every rank: what a filter decides from), and what the learner keeps for the update.

    correct_per_prompt: [m] int, c_i; tokens_per_prompt: [m] completion tokens per group, or None where
    the learner counts none (the simulator); rollouts: the learner's own record of this rank's rollouts
    (tokens, rewards), None where it needs none.
    """

    plan: StepPlan
    correct_per_prompt: np.ndarray
    tokens_per_prompt: np.ndarray | None
    rollouts: Any = None


class Learner(Protocol):
    """Implemented by `HFLearner` (transformers) and `SimLearner` (the learning simulator): one step (or its
    halves: `generate_round` for round `round_index` = 0, 1, ..., `update` on `plan`, the trained batch,
    made of round r's positions `chosen[r]` in round order), the
    held-out evaluation, the state for checkpoints (`ensure_finite` raises `gdro.train.nonfinite.
    NonFiniteError` before one would hold inf or NaN), the weights for exports."""

    num_prompts: int

    def train_step(self, plan: StepPlan) -> StepOutcome: ...

    def generate_round(self, plan: StepPlan, round_index: int) -> GeneratedRound: ...

    def update(
        self, plan: StepPlan, rounds: list[GeneratedRound], chosen: list[np.ndarray]
    ) -> StepOutcome: ...

    def evaluate(self) -> dict[str, float]: ...

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...

    def ensure_finite(self) -> None: ...

    def export(self, directory: Path, metadata: dict[str, Any]) -> None: ...

    def close(self) -> None: ...
