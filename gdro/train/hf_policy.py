"""GRPO on a transformers causal LM, one step of the algorithm read top to bottom.

Given the curriculum's plan (prompt ids, n_i, advantage multipliers w_i), `train_step` runs
  1. generate: n_i completions per prompt (token ids in, token ids out) from the rollout engine (HF
     `generate` on the actor, or vLLM, seeded per (run seed, step, prompt id)); the engine then sleeps;
  2. reward:   r_ij = +1 / -1 from the task's reward (worker processes for math-verify);
  3. advantages: A_ij = group advantage keyed by prompt id (groups of unequal size), clipped;
     A~_ij = w_i A_ij;
  4. old / ref log-probs of every PPO mini-batch (whole prompt groups), before any update, at the
     rollout temperature T: log softmax(z / T), the distribution the rollouts came from; with an engine
     that reports its own log-probs (vLLM), truncated importance weights correct its samples to pi_old
     (`trainer.rollout_is`, `gdro.core.rollout_correction`) and rollout/logprob_diff is logged;
  5. PPO: for each epoch and mini-batch, the actor accumulates gradients over token-budget micro-batches
     and steps once: loss = agg(-min(rho A~, clip(rho) A~)) + kl_coef agg(k3), tokens with A~ < 0 capped
     at -A~ c (dual clip); the engine then follows the new weights (all of them, tied head included;
     under ZeRO-3 gathered one parameter at a time, every rank taking part);
  6. outcome: correct counts, tokens per prompt and the per-prompt surrogate signal l(x_i) = mean over
     x_i's responses of the token-averaged clipped loss with UNweighted advantages and no dual clip (as
     the authors' patch computes it), averaged over epochs. On the first mini-batch the ratio is exactly
     1 and l = 0; only later mini-batches carry drift.
With several ranks (`trainer.backend=deepspeed` under torchrun) each rank takes whole prompt groups
(`gdro.train.sharding`, balanced by expected tokens) through steps 1-5, the actor's loss denominators
are the global counts, and the per-prompt results of step 6 are summed over ranks, so every rank
returns the whole batch's outcome and the curriculum sees all of it (every rank's surrogate losses,
not rank 0's alone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.config import TrainerConfig
from gdro.core.curriculum import StepPlan
from gdro.core.grpo import group_advantages
from gdro.core.rollout_correction import rollout_is_weights
from gdro.data.dapo_math import check_fingerprint
from gdro.engines.base import Generations, RolloutEngine
from gdro.engines.hf import HFEngine
from gdro.engines.vllm import full_state
from gdro.train.actor import Actor, ActorConfig, ActorStats
from gdro.train.backends import DeepSpeedBackend, TrainingBackend
from gdro.train.deepspeed_engine import gathered_parameters
from gdro.train.distributed import World
from gdro.train.evaluator import Evaluator
from gdro.train.export import bf16_state, write_export
from gdro.train.policy import StepOutcome
from gdro.train.rng import side_stream_seed
from gdro.train.schedule import WarmupSchedule
from gdro.train.sharding import shard_groups
from gdro.train.task import TaskData


class HFPolicy:
    """A transformers policy: the HF engine generates, the actor trains, the evaluator validates."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        task: TaskData,
        settings: TrainerConfig,
        reference: PreTrainedModel | None = None,
        generation_batch_size: int = 256,
        stop_token_ids: tuple[int, ...] = (),
        engine: RolloutEngine | None = None,
        seed: int = 0,
        backend: TrainingBackend | None = None,
        world: World | None = None,
    ) -> None:
        """`backend`: a `DeepSpeedBackend` around `model` (default: torch AdamW here); `world`: the ranks."""
        if settings.kl_coef > 0 and reference is None:
            raise ValueError("trainer.kl_coef > 0 needs the frozen reference model")
        self.model = model
        self.tokenizer = tokenizer
        self.reference = reference
        self.task = task
        self.settings = settings
        self.num_prompts = task.num_prompts
        self.rollout_sampling = settings.rollout_sampling(stop_token_ids)
        self.seed = seed
        self.engine = engine if engine is not None else HFEngine(model, tokenizer, generation_batch_size)
        self.world = world if world is not None else World()
        self.deepspeed = backend.engine if isinstance(backend, DeepSpeedBackend) else None
        # ZeRO-3: each rank holds shards of the actor, so the engine generates on a whole copy of its own
        self.partitioned = isinstance(backend, DeepSpeedBackend) and backend.partitions_parameters
        self.optimizer = (
            self.deepspeed.optimizer
            if self.deepspeed is not None
            else torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        )
        self.scheduler = WarmupSchedule(self.optimizer, settings.lr, settings.warmup_steps)
        actor_config = ActorConfig.from_trainer(
            settings,
            max_tokens_per_microbatch=settings.max_tokens_per_microbatch,
            logprob_chunk_tokens=settings.logprob_chunk_tokens,
        )
        self.actor = Actor(
            model, None if backend is not None else self.optimizer, actor_config, backend, self.world
        )
        # With eval_at_rollout_temperature the held-out prompts are also sampled like rollouts
        # (eval_rollout/...): RL first improves the distribution it samples from, which the
        # near-greedy validation sampling (temperature 0.6, top-p 0.8) can hide.
        samplings = [("eval", settings.eval_sampling(stop_token_ids))]
        if settings.eval_at_rollout_temperature:
            samplings.append(("eval_rollout", self.rollout_sampling))
        self.evaluator = Evaluator(
            self.engine, task.eval_sets, settings.eval_samples, samplings, world=self.world
        )
        if self.partitioned:  # the copy starts from the actor's weights, whatever it was loaded from
            self.engine.sync_weights(self._actor_weights())

    def train_step(self, plan: StepPlan) -> StepOutcome:
        """Generate, reward and update on the plan's prompts; see the module docstring."""
        s = self.settings
        batch_size = len(plan.prompt_ids)
        # 1. generate this rank's prompt groups (all of them in one process)
        mine = self._my_groups(plan)
        prompts = [self.task.prompt_token_ids[i] for i in plan.prompt_ids[mine]]
        step = self.scheduler.last_epoch + 1  # steps done so far + 1 (restored on resume)
        seeds = [side_stream_seed(self.seed, step, f"rollout/{i}") for i in plan.prompt_ids[mine]]
        generations = self.engine.generate(
            prompts, plan.rollouts_per_prompt[mine].tolist(), self.rollout_sampling, seeds
        )
        self.engine.sleep()
        owner = mine[generations.prompt_index]  # [R] batch position of each of this rank's rollouts
        prompt_ids, completion_ids = generations.prompt_token_ids, generations.completion_token_ids
        # 2. reward
        answers = [self.task.answers[plan.prompt_ids[i]] for i in owner]
        rewards = self.task.reward.rewards(generations.texts, answers)
        correct = np.bincount(owner, weights=rewards > 0, minlength=batch_size).astype(np.int64)
        # 3. advantages x w
        advantages = group_advantages(
            torch.tensor(rewards, dtype=torch.float32),
            torch.as_tensor(plan.prompt_ids[owner]),
            std_mode=s.adv_std,
            clip=s.adv_clip,
        )
        weighted = advantages * torch.as_tensor(plan.advantage_weights[owner], dtype=torch.float32)
        # 4. old / ref log-probs per mini-batch of whole prompt groups, before any update
        minibatches = [
            rows
            for part in np.array_split(np.arange(batch_size), s.ppo_mini_batches)
            # every rank runs every mini-batch (its share may be empty), one process skips empty ones
            if len(rows := np.flatnonzero(np.isin(owner, part))) or self.world.distributed
        ]

        def pick(rows: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
            return [prompt_ids[r] for r in rows], [completion_ids[r] for r in rows]

        old = [self.actor.logprobs(*pick(rows))[0] for rows in minibatches]
        is_weights, correction = self._rollout_correction(generations, minibatches, old)
        ref = (
            [self.actor.logprobs(*pick(rows), model=self.reference)[0] for rows in minibatches]
            if s.kl_coef > 0
            else None
        )
        # 5. PPO epochs over the mini-batches, each an accumulation over token-budget micro-batches
        stats: list[ActorStats] = []
        signal = np.zeros(len(owner))
        for _ in range(s.ppo_epochs):
            for index, rows in enumerate(minibatches):
                update = self.actor.update(
                    *pick(rows),
                    advantages=weighted[rows],
                    old_logprobs=old[index],
                    ref_logprobs=None if ref is None else ref[index],
                    signal_advantages=advantages[rows],
                    is_weights=None if is_weights is None else is_weights[index],
                )
                signal[rows] += update.surrogate_per_row
                stats.append(update)
        self.engine.sync_weights(self._actor_weights())
        step_lr = float(self.scheduler.get_last_lr()[0])  # the rate this step's updates used
        self.scheduler.step()
        # 6. outcome, per prompt summed over ranks (each prompt's rollouts live on one rank)
        tokens = np.array([len(c) for c in completion_ids], dtype=np.int64)
        correct, signal_sum, tokens_per_prompt = self.world.sum_arrays(
            correct,
            np.bincount(owner, weights=signal / s.ppo_epochs, minlength=batch_size),
            np.bincount(owner, weights=tokens, minlength=batch_size),
        )
        correct, tokens_per_prompt = correct.astype(np.int64), tokens_per_prompt.astype(np.int64)
        surrogate = signal_sum / np.maximum(plan.rollouts_per_prompt, 1)
        # each rank's losses and clipped-token counts are its share of the mini-batch's global aggregate
        # (global denominators), so they add up over ranks; so do timeouts and truncated rollouts
        shares = {
            "loss/total": float(np.mean([u.loss for u in stats])),
            "loss/policy": float(np.mean([u.policy_loss for u in stats])),
            "loss/kl": float(np.mean([u.kl_loss for u in stats])),
            "loss/clip_fraction": float(np.mean([u.clip_fraction for u in stats])),
            "loss/dual_clip_fraction": float(np.mean([u.dual_clip_fraction for u in stats])),
            "reward/timeouts": float(self.task.reward.timeouts),
        }
        truncated = sum(reason == "length" for reason in generations.finish_reasons)
        *summed, truncated, rollouts = self.world.sum(
            [*shares.values(), truncated, len(generations.finish_reasons)]
        )
        metrics: dict[str, float | None] = {
            **dict(zip(shares, summed, strict=True)),
            # the same on every rank: the global norm, this step's rate, the whole batch's signal
            "loss/grad_norm": float(np.mean([u.grad_norm for u in stats])),
            "loss/microbatches": float(np.mean([u.microbatches for u in stats])),  # per rank
            "signal/surrogate_abs_mean": float(np.abs(surrogate).mean()),
            "rollout/truncation_rate": truncated / max(rollouts, 1),
            "optim/lr": step_lr,
            **correction,
        }
        return StepOutcome(
            correct_per_prompt=correct,
            surrogate_loss=surrogate,
            generated_tokens=int(tokens_per_prompt.sum()),
            tokens_per_prompt=tokens_per_prompt,
            metrics=self.world.mean_metrics(metrics),
        )

    def _my_groups(self, plan: StepPlan) -> np.ndarray:
        """The batch positions of the prompt groups this rank generates and trains on (all, alone)."""
        if not self.world.distributed:
            return np.arange(len(plan.prompt_ids))
        lengths = np.array([len(self.task.prompt_token_ids[i]) for i in plan.prompt_ids])
        shards = shard_groups(
            plan.rollouts_per_prompt, lengths, self.settings.max_new_tokens / 2, self.world.size
        )
        return shards[self.world.rank]

    def _rollout_correction(
        self, generations: Generations, minibatches: list[np.ndarray], old: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor] | None, dict[str, float]]:
        """Per mini-batch truncated IS weights [rows, Tc] and the step's statistics over all its tokens;
        (None, {}) when the engine reports no log-probs (HF: the trainer's are the sampler's)."""
        if generations.sampler_logprobs is None:
            return None, {}
        lengths = [len(tokens) for tokens in generations.completion_token_ids]
        rows, width = len(lengths), max(lengths, default=0)
        trainer, sampler, mask = (torch.zeros(rows, width) for _ in range(3))
        for part, logprobs in zip(minibatches, old, strict=True):
            trainer[part, : logprobs.shape[1]] = logprobs.cpu()
        for row, values in enumerate(generations.sampler_logprobs):
            sampler[row, : len(values)] = torch.tensor(values)
            mask[row, : len(values)] = 1.0
        weights, metrics = rollout_is_weights(
            trainer, sampler, mask, self.settings.rollout_is, self.settings.rollout_is_cap
        )
        tokens = float(mask.sum())
        units = float((mask.sum(dim=1) > 0).sum()) if self.settings.rollout_is == "sequence" else tokens
        return [weights[part] for part in minibatches], self._pooled_correction(metrics, tokens, units)

    def _pooled_correction(self, metrics: dict[str, float], tokens: float, units: float) -> dict[str, float]:
        """The ranks' rollout-correction statistics as one process over all their rollouts would give them:
        logprob_diff weighted by tokens, the IS mean and capped fraction by weighted units (tokens, or
        sequences for "sequence"), the largest weight of any rank that has one."""
        if not self.world.distributed:
            return metrics
        ranks = self.world.gather((metrics, tokens, units))
        all_tokens = max(sum(t for _, t, _ in ranks), 1.0)
        all_units = max(sum(u for _, _, u in ranks), 1.0)
        pooled = {
            "rollout/logprob_diff": sum(m["rollout/logprob_diff"] * t for m, t, _ in ranks) / all_tokens
        }
        if "rollout_is/mean" in metrics:
            for key in ("rollout_is/mean", "rollout_is/capped"):
                pooled[key] = sum(m[key] * u for m, _, u in ranks) / all_units
            pooled["rollout_is/max"] = max((m["rollout_is/max"] for m, _, u in ranks if u > 0), default=1.0)
        return pooled

    def evaluate(self) -> dict[str, float]:
        """mean@k and pass@k of every held-out set (docs/algorithm.md §6): eval/... (and eval_rollout/...)."""
        return self.evaluator.evaluate()

    def save(self, directory: Path) -> None:
        """Model, optimizer and scheduler state (exact, for resume), and the prompts' fingerprint. Under
        DeepSpeed every rank writes its shards (`deepspeed/`), rank 0 the scheduler and fingerprint."""
        if self.deepspeed is not None:
            self.deepspeed.save_checkpoint(str(directory), tag="deepspeed", save_latest=False)
            if self.world.is_main:
                torch.save({"scheduler": self.scheduler.state_dict()}, directory / "policy.pt")
                (directory / "task.json").write_text(json.dumps({"fingerprint": self.task.fingerprint}))
            return
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
            },
            directory / "policy.pt",
        )
        (directory / "task.json").write_text(json.dumps({"fingerprint": self.task.fingerprint}))

    def load(self, directory: Path) -> None:
        """Restore what `save` wrote, after checking the prompts are the ones the checkpoint saw."""
        check_fingerprint(
            json.loads((directory / "task.json").read_text())["fingerprint"], self.task.fingerprint
        )
        state = torch.load(directory / "policy.pt", weights_only=True)
        if self.deepspeed is not None:
            self.deepspeed.load_checkpoint(str(directory), tag="deepspeed")
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.engine.sync_weights(self._actor_weights())

    def close(self) -> None:
        """Stop the rewards' worker processes."""
        self.task.close()

    def export(self, directory: Path, metadata: dict[str, Any]) -> None:
        """The weights in bfloat16 with the tokenizer, `save_pretrained` style (`gdro.train.export`);
        rank 0 writes (under ZeRO-3 every rank takes part in gathering them)."""
        if not self.world.is_main:
            if self.partitioned:
                for _ in self._actor_weights():  # this rank's part in each gather
                    pass
            return
        state = bf16_state(self._actor_weights())
        write_export(self.model, self.tokenizer, state, directory, metadata)

    def _actor_weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        """The actor's whole weights by name: under ZeRO-3 gathered one parameter at a time (a collective:
        every rank must consume them all; a tied head appears once, under its parameter's name), else
        the module's own tensors under every name, tied head included."""
        if self.partitioned:
            return gathered_parameters(self.model)
        return full_state(self.model)
