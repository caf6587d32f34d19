"""A training step as generation rounds and one update: the driver of a group filter (`gdro.core.filters`).

    selection = RoundSelection(M, rounds)
    while not selection.done:                       one round r = 0, 1, ...
        round_plan = curriculum.plan(gen_batch_size) the sampler's prompts, each with the allocator's n_i
        generated = learner.generate_round(round_plan, r)   generate and reward (gathered over ranks)
        selection.add(filter.keep(n_i, c_i))         the same decision on every rank
    chosen = selection.selection()                  the first M kept in generation order (or an error)
    outcome = learner.update(trained, rounds, chosen)   PPO on the kept groups only

The trained batch `trained` is the rounds' chosen groups in generation order (prompt ids, bins, n_i, w_i;
the bin weights q of the first round, as every round plans from the same controller state); GRPO's
advantages are per group, so a kept group trains exactly as it would have in its own round. The outcome
counts the rest (`discarded_rollouts`, `discarded_tokens`: the rejected groups and the surplus past the
M-th kept), the rounds (`gen_batches`) and, when some group was not trained, every group generated
(`generated`), which the classifier records (`Curriculum.observe`); the sampler and the allocator update
on the trained batch, whose surrogate losses exist. With a filter other than `none` the record also gets
`filter/kept_groups` (groups that passed, before the cut) and `filter/exhausted` (1 when the step hit
`filter.max_gen_batches` and trained on fewer than M groups under `on_exhausted: train`).

Each round plans as a step does: an allocator whose `allocate` moves its own state (Rollout-GDRO's
shadow price mu takes its dual step there) moves it once per round.

With `filter=none` this is one round of M prompts, every group kept: `learner.train_step(plan)` exactly
(the same calls in the same order, the same random streams).
"""

from __future__ import annotations

import numpy as np

from gdro.core.curriculum import Curriculum, GeneratedGroups, StepPlan
from gdro.core.filters import GroupFilter, RoundsConfig, RoundSelection
from gdro.train.learner import GeneratedRound, Learner, StepOutcome


class StepRounds:
    """Runs one step's rounds for `group_filter` (registered as `filter_name`) with `rounds` settings and M
    = `batch_size` trained groups."""

    def __init__(
        self, group_filter: GroupFilter, rounds: RoundsConfig, batch_size: int, filter_name: str = "none"
    ) -> None:
        self.group_filter = group_filter
        self.rounds = rounds
        self.batch_size = batch_size
        self.filtering = filter_name != "none"

    def step(self, curriculum: Curriculum, learner: Learner) -> tuple[StepPlan, StepOutcome]:
        """The trained batch and its outcome (module docstring)."""
        selection = RoundSelection(self.batch_size, self.rounds)
        generated: list[GeneratedRound] = []
        while not selection.done:
            plan = curriculum.plan(self.rounds.round_size(self.batch_size))
            generated.append(learner.generate_round(plan, len(generated)))
            selection.add(self.group_filter.keep(plan.rollouts_per_prompt, generated[-1].correct_per_prompt))
        chosen = selection.selection()
        trained = trained_plan(generated, chosen)
        outcome = learner.update(trained, generated, chosen)
        outcome.gen_batches = len(generated)
        outcome.discarded_rollouts = sum(
            int(g.plan.rollouts_per_prompt.sum() - g.plan.rollouts_per_prompt[c].sum())
            for g, c in zip(generated, chosen, strict=True)
        )
        outcome.discarded_tokens = sum(
            int(g.tokens_per_prompt.sum() - g.tokens_per_prompt[c].sum())
            for g, c in zip(generated, chosen, strict=True)
            if g.tokens_per_prompt is not None
        )
        if outcome.discarded_rollouts > 0:
            outcome.generated = GeneratedGroups(
                prompt_ids=np.concatenate([g.plan.prompt_ids for g in generated]),
                rollouts_per_prompt=np.concatenate([g.plan.rollouts_per_prompt for g in generated]),
                correct_per_prompt=np.concatenate([g.correct_per_prompt for g in generated]),
            )
        if self.filtering:
            outcome.metrics["filter/kept_groups"] = float(selection.kept)
            outcome.metrics["filter/exhausted"] = float(selection.exhausted)
        return trained, outcome


def trained_plan(generated: list[GeneratedRound], chosen: list[np.ndarray]) -> StepPlan:
    """The rounds' chosen groups as one plan, in generation order; one round wholly chosen is its plan."""
    first = generated[0].plan
    if len(generated) == 1 and len(chosen[0]) == len(first.prompt_ids):
        return first

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(g.plan, name)[c] for g, c in zip(generated, chosen, strict=True)])

    return StepPlan(
        prompt_ids=joined("prompt_ids"),
        bins=joined("bins"),
        rollouts_per_prompt=joined("rollouts_per_prompt"),
        advantage_weights=joined("advantage_weights"),
        bin_weights=first.bin_weights,
    )
