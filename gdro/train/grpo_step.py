"""One GRPO step on a transformers model, read top to bottom (docs/algorithm.md §1, §3, §4b).

Given the curriculum's plan (prompt ids, n_i, advantage multipliers w_i), `grpo_step` runs
`generate_round` (steps 1-2) then `update` (steps 3-6); a filter's round driver (`gdro.train.rounds`)
calls `generate_round` once per round and `update` once on the groups it kept:
  1. generate: n_i completions per prompt (token ids in, token ids out) from the rollout engine (HF
     `generate` on the actor, or vLLM, seeded per (run seed, step, prompt id), and the round from the
     second on: `rollout_stream`);
  2. reward:   r_ij = +1 / -1 from the task's reward (worker processes for math-verify); each group's
     correct and token counts, gathered from every rank; the engine sleeps when `update` begins;
  3. advantages: A_ij = group advantage keyed by prompt id (groups of unequal size; a prompt drawn again
     in a later round is a group of its own), clipped; A~_ij = w_i A_ij;
  4. old / ref log-probs of every PPO mini-batch (whole prompt groups), before any update, at the
     rollout temperature T: log softmax(z / T), the distribution the rollouts came from; with an engine
     that reports its own log-probs (vLLM), truncated importance weights correct its samples to pi_old
     (`trainer.rollout_is`, `gdro.core.rollout_correction`) and rollout/logprob_diff is logged. The
     first mini-batch's pi_old is the policy before its update, so without a rollout correction (which
     needs every pi_old before the first update) the first update takes it from its own forward
     (`on_policy_shortcut`): one forward fewer, every loss, gradient and metric bitwise the same (the
     same micro-batches through the same kernels, tests/test_on_policy_shortcut.py);
  5. PPO: for each epoch and mini-batch, the actor accumulates gradients over token-budget micro-batches
     and steps once: loss = agg(-min(rho A~, clip(rho) A~)) + kl_coef agg(k3), tokens with A~ < 0 capped
     at -A~ c (dual clip); the engine then follows the new weights (all of them, tied head included;
     under ZeRO-3 gathered one parameter at a time, every rank taking part); an update whose loss or
     gradient norm is not finite is skipped (`gdro.train.nonfinite`: counted, warned, and the run stops
     after trainer.max_nonfinite_skips in a row) and adds nothing to the surrogate signal;
  6. outcome: correct counts, tokens per prompt and the per-prompt surrogate signal l(x_i) = mean over
     x_i's responses of the token-averaged clipped loss with UNweighted advantages and no dual clip (as
     the authors' patch computes it), averaged over epochs. On the first mini-batch the ratio is exactly
     1 and l = 0; only later mini-batches carry drift.
With several ranks (`trainer.backend=deepspeed` under torchrun) each rank takes whole prompt groups
(`gdro.train.parallel.sharding`, balanced by expected tokens) through steps 1-5, the actor's loss
denominators are the global counts, and step 6 gathers every rank's share in one call and adds them up
(`whole_batch`), so every rank returns the whole batch's outcome and the curriculum sees all of it
(every rank's surrogate losses, not rank 0's alone). With a filter, a kept group is trained on the rank
that generated it: the ranks' shares of the trained batch are then balanced only as far as the filter
keeps the same share of each rank's groups (a rank may train more groups than another in a step).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import add
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gdro.config import TrainerConfig
from gdro.core.curriculum import StepPlan
from gdro.core.grpo import group_advantages
from gdro.core.rollout_correction import rollout_is_weights
from gdro.engines.base import Generations
from gdro.train.actor import ActorStats
from gdro.train.learner import GeneratedRound, StepOutcome
from gdro.train.nonfinite import require_finite
from gdro.train.parallel.sharding import rank_groups
from gdro.train.rng import side_stream_seed

if TYPE_CHECKING:
    from gdro.train.hf_learner import HFLearner


def grpo_step(learner: HFLearner, plan: StepPlan, on_policy_shortcut: bool = True) -> StepOutcome:
    """Generate, reward and update on the plan's prompts (one round, every group trained); see the module
    docstring. on_policy_shortcut=False scores the first mini-batch's pi_old in a pass of its own as well."""
    everything = np.arange(len(plan.prompt_ids))
    return update(learner, plan, [generate_round(learner, plan, 0)], [everything], on_policy_shortcut)


def rollout_stream(prompt_id: int, round_index: int) -> str:
    """The side stream of a prompt's rollouts in a step: `rollout/<id>` in the first round (round_index 0),
    `rollout/<id>/round<r>` in round r >= 2, so a step with one round draws what it always drew."""
    return f"rollout/{prompt_id}" if round_index == 0 else f"rollout/{prompt_id}/round{round_index + 1}"


@dataclass
class RankRollouts:
    """This rank's rollouts of one round: its generations, the round batch position of each ([R]), their
    rewards ([R], +-1) and the reward's deadline hits."""

    generations: Generations
    owner: np.ndarray
    rewards: np.ndarray
    timeouts: float


def generate_round(learner: HFLearner, plan: StepPlan, round_index: int) -> GeneratedRound:
    """Steps 1-2 of the module docstring for one generation round: this rank's prompt groups generated and
    rewarded; every rank's correct and token counts per group gathered, so a filter decides the same on
    every rank. The engine stays awake for a further round (`update` puts it to sleep)."""
    s, task, world = learner.settings, learner.task, learner.world
    batch_size = len(plan.prompt_ids)
    # 1. generate this rank's prompt groups (all of them in one process)
    lengths = np.array([len(task.prompt_token_ids[i]) for i in plan.prompt_ids])
    mine = rank_groups(plan.rollouts_per_prompt, lengths, s.max_new_tokens / 2, world)
    prompts = [task.prompt_token_ids[i] for i in plan.prompt_ids[mine]]
    step = learner.scheduler.last_epoch + 1  # steps done so far + 1 (restored on resume)
    seeds = [
        side_stream_seed(learner.seed, step, rollout_stream(i, round_index)) for i in plan.prompt_ids[mine]
    ]
    generations = learner.engine.generate(
        prompts, plan.rollouts_per_prompt[mine].tolist(), learner.rollout_sampling, seeds
    )
    owner = mine[generations.prompt_index]  # [R] batch position of each of this rank's rollouts
    # 2. reward
    answers = [task.answers[plan.prompt_ids[i]] for i in owner]
    rewards = task.reward.rewards(generations.texts, answers)
    require_finite([torch.as_tensor(rewards, dtype=torch.float64)], "the rewards are")
    tokens = np.array([len(c) for c in generations.completion_token_ids], dtype=np.int64)
    counts = world.gather(
        (
            np.bincount(owner, weights=rewards > 0, minlength=batch_size).astype(np.int64),
            np.bincount(owner, weights=tokens, minlength=batch_size).astype(np.int64),
        )
    )
    return GeneratedRound(
        plan,
        correct_per_prompt=sum(correct for correct, _ in counts),
        tokens_per_prompt=sum(tokens for _, tokens in counts),
        rollouts=RankRollouts(generations, owner, np.asarray(rewards), float(task.reward.timeouts)),
    )


def _trained_rollouts(rounds: list[GeneratedRound], chosen: list[np.ndarray]) -> RankRollouts:
    """This rank's rollouts of the trained groups, round after round in generation order, each owned by
    its position in the trained batch (round r's `chosen[r]`, after the earlier rounds' groups); the
    deadline hits of every round. One round with every group chosen gives its rollouts as they are."""
    parts: list[RankRollouts] = []
    offset = 0
    for generated, positions in zip(rounds, chosen, strict=True):
        mine: RankRollouts = generated.rollouts
        trained_position = np.full(len(generated.plan.prompt_ids), -1)
        trained_position[positions] = offset + np.arange(len(positions))
        rows = np.flatnonzero(trained_position[mine.owner] >= 0)
        parts.append(_rows(mine, rows, trained_position[mine.owner[rows]]))
        offset += len(positions)
    if len(parts) == 1:
        return parts[0]
    generations = [part.generations for part in parts]
    logprobs = [g.sampler_logprobs for g in generations]
    return RankRollouts(
        Generations(
            prompt_index=np.concatenate([g.prompt_index for g in generations]),
            prompt_token_ids=[row for g in generations for row in g.prompt_token_ids],
            completion_token_ids=[row for g in generations for row in g.completion_token_ids],
            texts=[text for g in generations for text in g.texts],
            finish_reasons=[reason for g in generations for reason in g.finish_reasons],
            sampler_logprobs=None if logprobs[0] is None else [row for rows in logprobs for row in rows],
        ),
        owner=np.concatenate([part.owner for part in parts]),
        rewards=np.concatenate([part.rewards for part in parts]),
        timeouts=sum(generated.rollouts.timeouts for generated in rounds),
    )


def _rows(rollouts: RankRollouts, rows: np.ndarray, owner: np.ndarray) -> RankRollouts:
    """The rollouts `rows` of one round, owned by `owner`; all of them, in order, as they are."""
    if len(rows) == len(rollouts.owner):
        return RankRollouts(rollouts.generations, owner, rollouts.rewards, rollouts.timeouts)
    g = rollouts.generations
    return RankRollouts(
        Generations(
            prompt_index=g.prompt_index[rows],
            prompt_token_ids=[g.prompt_token_ids[r] for r in rows],
            completion_token_ids=[g.completion_token_ids[r] for r in rows],
            texts=[g.texts[r] for r in rows],
            finish_reasons=[g.finish_reasons[r] for r in rows],
            sampler_logprobs=None if g.sampler_logprobs is None else [g.sampler_logprobs[r] for r in rows],
        ),
        owner,
        rollouts.rewards[rows],
        rollouts.timeouts,
    )


def update(
    learner: HFLearner,
    plan: StepPlan,
    rounds: list[GeneratedRound],
    chosen: list[np.ndarray],
    on_policy_shortcut: bool = True,
) -> StepOutcome:
    """Steps 3-6 of the module docstring on the trained batch `plan`: round r's positions `chosen[r]`, in
    round order (each kept group stays on the rank that generated it)."""
    s, world = learner.settings, learner.world
    actor, engine = learner.actor, learner.engine
    engine.sleep()
    batch_size = len(plan.prompt_ids)
    step = learner.scheduler.last_epoch + 1
    trained = _trained_rollouts(rounds, chosen)
    generations, owner, rewards = trained.generations, trained.owner, trained.rewards
    prompt_ids, completion_ids = generations.prompt_token_ids, generations.completion_token_ids
    # 3. advantages x w, per group: keyed by prompt id, and by round when a prompt came back in a later one
    round_of = np.repeat(np.arange(len(chosen)), [len(positions) for positions in chosen])[owner]
    advantages = group_advantages(
        torch.tensor(rewards, dtype=torch.float32),
        torch.as_tensor(round_of * learner.num_prompts + plan.prompt_ids[owner]),
        std_mode=s.adv_std,
        clip=s.adv_clip,
    )
    weighted = advantages * torch.as_tensor(plan.advantage_weights[owner], dtype=torch.float32)
    # 4. old / ref log-probs per mini-batch of whole prompt groups, before any update
    minibatches = [
        rows
        for part in np.array_split(np.arange(batch_size), s.ppo_mini_batches)
        # every rank runs every mini-batch (its share may be empty), one process skips empty ones
        if len(rows := np.flatnonzero(np.isin(owner, part))) or world.distributed
    ]

    def pick(rows: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
        return [prompt_ids[r] for r in rows], [completion_ids[r] for r in rows]

    # pi_old of the first mini-batch comes from its update's forward (None here) unless IS weights need it
    shortcut = on_policy_shortcut and generations.sampler_logprobs is None
    old = [
        None if shortcut and index == 0 else actor.logprobs(*pick(rows))[0]
        for index, rows in enumerate(minibatches)
    ]
    is_weights, correction = _rollout_correction(generations, minibatches, old, s)
    ref = (
        [actor.logprobs(*pick(rows), model=learner.reference)[0] for rows in minibatches]
        if s.kl_coef > 0
        else None
    )
    # 5. PPO epochs over the mini-batches, each an accumulation over token-budget micro-batches
    stats: list[ActorStats] = []
    signal = np.zeros(len(owner))
    skips_before = learner.guard.total
    for _ in range(s.ppo_epochs):
        for index, rows in enumerate(minibatches):
            update = actor.update(
                *pick(rows),
                advantages=weighted[rows],
                old_logprobs=old[index],
                ref_logprobs=None if ref is None else ref[index],
                signal_advantages=advantages[rows],
                is_weights=None if is_weights is None else is_weights[index],
            )
            learner.guard.observe(
                step, index + 1, len(minibatches), update.loss, update.grad_norm, update.skipped
            )
            if old[index] is None:  # kept for the later epochs
                old[index] = update.old_logprobs
            if not update.skipped:
                signal[rows] += update.surrogate_per_row
            stats.append(update)
    engine.sync_weights(learner.backend.weights())
    step_lr = float(learner.scheduler.get_last_lr()[0])  # the rate this step's updates used
    learner.scheduler.step()
    # 6. outcome: this rank's share, per prompt and in sums; every rank's, gathered in one call, add up
    tokens = np.array([len(c) for c in completion_ids], dtype=np.int64)
    share = RankShare(
        correct=np.bincount(owner, weights=rewards > 0, minlength=batch_size).astype(np.int64),
        signal=np.bincount(owner, weights=signal / s.ppo_epochs, minlength=batch_size),
        tokens=np.bincount(owner, weights=tokens, minlength=batch_size),
        # each rank's losses and clipped-token counts are its share of the mini-batch's global aggregate
        # (global denominators), so they add up over ranks; so do timeouts and truncated rollouts
        sums={
            "loss/total": float(np.mean([u.loss for u in stats])),
            "loss/policy": float(np.mean([u.policy_loss for u in stats])),
            "loss/kl": float(np.mean([u.kl_loss for u in stats])),
            "loss/clip_fraction": float(np.mean([u.clip_fraction for u in stats])),
            "loss/dual_clip_fraction": float(np.mean([u.dual_clip_fraction for u in stats])),
            "reward/timeouts": trained.timeouts,
        },
        truncated=sum(reason == "length" for reason in generations.finish_reasons),
        rollouts=len(generations.finish_reasons),
        # averaged over ranks: the global norm and this step's rate (the same on every rank), micro-batches
        means={
            "loss/grad_norm": float(np.mean([u.grad_norm for u in stats])),
            "loss/microbatches": float(np.mean([u.microbatches for u in stats])),
            "optim/lr": step_lr,
            "optim/nonfinite_skips": float(learner.guard.total - skips_before),  # the same on every rank
            "optim/nonfinite_skips_total": float(learner.guard.total),
        },
        correction=correction,
    )
    return whole_batch(world.gather(share), plan.rollouts_per_prompt)


@dataclass
class RankShare:
    """One rank's part of a step's outcome (the whole of it in one process).

    correct, signal, tokens: [M] per batch position, zero for the groups of other ranks: rollouts with
        reward +1, the surrogate signal summed over the group's rollouts (averaged over epochs), and
        completion tokens.
    sums: scalars that add up over ranks; means: scalars averaged over ranks.
    truncated, rollouts: this rank's rollouts cut at max_new_tokens, and all of them.
    correction: (rollout-correction statistics, tokens, IS units) of this rank, or None without them.
    """

    correct: np.ndarray
    signal: np.ndarray
    tokens: np.ndarray
    sums: dict[str, float]
    truncated: int
    rollouts: int
    means: dict[str, float]
    correction: tuple[dict[str, float], float, float] | None


def whole_batch(shares: list[RankShare], rollouts_per_prompt: np.ndarray) -> StepOutcome:
    """The step's outcome from every rank's share (each prompt's rollouts live on one rank): per-prompt
    arrays and `sums` added, `means` averaged; l(x_i) = signal_i / max(n_i, 1)."""

    def total(values: list) -> Any:  # one rank's value as it is
        return reduce(add, values)

    def mean(key: str) -> float:
        return float(np.mean([share.means[key] for share in shares]))

    correct, tokens_per_prompt = total([r.correct for r in shares]), total([r.tokens for r in shares])
    surrogate = total([r.signal for r in shares]) / np.maximum(rollouts_per_prompt, 1)
    truncated, rollouts = total([r.truncated for r in shares]), total([r.rollouts for r in shares])
    metrics: dict[str, float | None] = {
        **{key: float(total([share.sums[key] for share in shares])) for key in shares[0].sums},
        **{key: mean(key) for key in shares[0].means},
        "signal/surrogate_abs_mean": float(np.abs(surrogate).mean()),
        "rollout/truncation_rate": truncated / max(rollouts, 1),
        **_pooled_correction([share.correction for share in shares]),
    }
    return StepOutcome(
        correct_per_prompt=correct.astype(np.int64),
        surrogate_loss=surrogate,
        generated_tokens=int(tokens_per_prompt.sum()),
        tokens_per_prompt=tokens_per_prompt.astype(np.int64),
        metrics=metrics,
    )


def _rollout_correction(
    generations: Generations, minibatches: list[np.ndarray], old: list[torch.Tensor], s: TrainerConfig
) -> tuple[list[torch.Tensor] | None, tuple[dict[str, float], float, float] | None]:
    """Per mini-batch truncated IS weights [rows, Tc], and this rank's statistics over all its tokens with
    the token and IS-unit counts that weigh them across ranks; (None, None) when the engine reports no
    log-probs (HF: the trainer's are the sampler's)."""
    if generations.sampler_logprobs is None:
        return None, None
    lengths = [len(tokens) for tokens in generations.completion_token_ids]
    rows, width = len(lengths), max(lengths, default=0)
    trainer, sampler, mask = (torch.zeros(rows, width) for _ in range(3))
    for part, logprobs in zip(minibatches, old, strict=True):
        trainer[part, : logprobs.shape[1]] = logprobs.cpu()
    for row, values in enumerate(generations.sampler_logprobs):
        sampler[row, : len(values)] = torch.tensor(values)
        mask[row, : len(values)] = 1.0
    weights, metrics = rollout_is_weights(trainer, sampler, mask, s.rollout_is, s.rollout_is_cap)
    tokens = float(mask.sum())
    units = float((mask.sum(dim=1) > 0).sum()) if s.rollout_is == "sequence" else tokens
    return [weights[part] for part in minibatches], (metrics, tokens, units)


def _pooled_correction(ranks: list[tuple[dict[str, float], float, float] | None]) -> dict[str, float]:
    """The ranks' rollout-correction statistics as one process over all their rollouts would give them:
    logprob_diff weighted by tokens, the IS mean and capped fraction by weighted units (tokens, or
    sequences for "sequence"), the largest weight of any rank that has one; one rank's as they are."""
    present = [rank for rank in ranks if rank is not None]  # all or none: every rank has the same engine
    if not present:
        return {}
    if len(present) == 1:
        return present[0][0]
    all_tokens = max(sum(t for _, t, _ in present), 1.0)
    all_units = max(sum(u for _, _, u in present), 1.0)
    pooled = {"rollout/logprob_diff": sum(m["rollout/logprob_diff"] * t for m, t, _ in present) / all_tokens}
    if "rollout_is/mean" in present[0][0]:
        for key in ("rollout_is/mean", "rollout_is/capped"):
            pooled[key] = sum(m[key] * u for m, _, u in present) / all_units
        pooled["rollout_is/max"] = max((m["rollout_is/max"] for m, _, u in present if u > 0), default=1.0)
    return pooled
