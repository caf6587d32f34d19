"""GRPO on a transformers causal LM, one step of the algorithm read top to bottom.

Given the curriculum's plan (prompt ids, n_i, advantage multipliers w_i), `train_step` runs
  1. generate: n_i completions per prompt (token ids in, token ids out) from the rollout engine;
  2. reward:   r_ij = +1 / -1 from the task's reward (worker processes for math-verify);
  3. advantages: A_ij = group advantage keyed by prompt id (groups of unequal size), clipped;
     A~_ij = w_i A_ij;
  4. old / ref log-probs of every PPO mini-batch (whole prompt groups), before any update, at the
     rollout temperature T: log softmax(z / T), the distribution the rollouts came from;
  5. PPO: for each epoch and mini-batch, the actor accumulates gradients over token-budget micro-batches
     and steps once: loss = agg(-min(rho A~, clip(rho) A~)) + kl_coef agg(k3), tokens with A~ < 0 capped
     at -A~ c (dual clip); the engine then follows the new weights;
  6. outcome: correct counts, tokens per prompt and the per-prompt surrogate signal l(x_i) = mean over
     x_i's responses of the token-averaged clipped loss with UNweighted advantages and no dual clip (as
     the authors' patch computes it), averaged over epochs. On the first mini-batch the ratio is exactly
     1 and l = 0; only later mini-batches carry drift.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.config import TrainerConfig
from gdro.core.curriculum import StepPlan
from gdro.core.grpo import group_advantages
from gdro.data.dapo_math import check_fingerprint
from gdro.engines.hf import HFEngine
from gdro.train.actor import Actor, ActorConfig, ActorStats
from gdro.train.evaluator import Evaluator
from gdro.train.policy import StepOutcome
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
    ) -> None:
        if settings.kl_coef > 0 and reference is None:
            raise ValueError("trainer.kl_coef > 0 needs the frozen reference model")
        self.model = model
        self.tokenizer = tokenizer
        self.reference = reference
        self.task = task
        self.settings = settings
        self.num_prompts = task.num_prompts
        self.rollout_sampling = settings.rollout_sampling(stop_token_ids)
        self.engine = HFEngine(model, tokenizer, batch_size=generation_batch_size)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        warmup = max(settings.warmup_steps, 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda t: min(1.0, (t + 1) / warmup)
        )
        actor_config = ActorConfig.from_trainer(
            settings,
            max_tokens_per_microbatch=settings.max_tokens_per_microbatch,
            logprob_chunk_tokens=settings.logprob_chunk_tokens,
        )
        self.actor = Actor(model, self.optimizer, actor_config)
        # With eval_at_rollout_temperature the held-out prompts are also sampled like rollouts
        # (eval_rollout/...): RL first improves the distribution it samples from, which the
        # near-greedy validation sampling (temperature 0.6, top-p 0.8) can hide.
        samplings = [("eval", settings.eval_sampling(stop_token_ids))]
        if settings.eval_at_rollout_temperature:
            samplings.append(("eval_rollout", self.rollout_sampling))
        self.evaluator = Evaluator(self.engine, task.eval_sets, settings.eval_samples, samplings)

    def train_step(self, plan: StepPlan) -> StepOutcome:
        """Generate, reward and update on the plan's prompts; see the module docstring."""
        s = self.settings
        batch_size = len(plan.prompt_ids)
        # 1. generate
        prompts = [self.task.prompt_token_ids[i] for i in plan.prompt_ids]
        generations = self.engine.generate(prompts, plan.rollouts_per_prompt.tolist(), self.rollout_sampling)
        owner = generations.prompt_index  # [R] batch position of each rollout
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
            if len(rows := np.flatnonzero(np.isin(owner, part)))
        ]

        def pick(rows: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
            return [prompt_ids[r] for r in rows], [completion_ids[r] for r in rows]

        old = [self.actor.logprobs(*pick(rows))[0] for rows in minibatches]
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
                )
                signal[rows] += update.surrogate_per_row
                stats.append(update)
        self.engine.sync_weights(self.model.named_parameters())
        step_lr = float(self.scheduler.get_last_lr()[0])  # the rate this step's updates used
        self.scheduler.step()
        # 6. outcome
        surrogate = np.bincount(owner, weights=signal / s.ppo_epochs, minlength=batch_size) / np.maximum(
            plan.rollouts_per_prompt, 1
        )
        tokens = np.array([len(c) for c in completion_ids], dtype=np.int64)
        metrics: dict[str, float | None] = {
            "loss/total": float(np.mean([u.loss for u in stats])),
            "loss/policy": float(np.mean([u.policy_loss for u in stats])),
            "loss/kl": float(np.mean([u.kl_loss for u in stats])),
            "loss/clip_fraction": float(np.mean([u.clip_fraction for u in stats])),
            "loss/dual_clip_fraction": float(np.mean([u.dual_clip_fraction for u in stats])),
            "loss/grad_norm": float(np.mean([u.grad_norm for u in stats])),
            "loss/microbatches": float(np.mean([u.microbatches for u in stats])),
            "signal/surrogate_abs_mean": float(np.abs(surrogate).mean()),
            "reward/timeouts": float(self.task.reward.timeouts),
            "rollout/truncation_rate": generations.truncation_rate,
            "optim/lr": step_lr,
        }
        return StepOutcome(
            correct_per_prompt=correct,
            surrogate_loss=surrogate,
            generated_tokens=int(tokens.sum()),
            tokens_per_prompt=np.bincount(owner, weights=tokens, minlength=batch_size).astype(np.int64),
            metrics=metrics,
        )

    def evaluate(self) -> dict[str, float]:
        """mean@k and pass@k of every held-out set (spec section 6): eval/... (and eval_rollout/...)."""
        return self.evaluator.evaluate()

    def save(self, directory: Path) -> None:
        """Model, optimizer and scheduler state (exact, for resume), and the prompts' fingerprint."""
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
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def close(self) -> None:
        """Stop the rewards' worker processes."""
        self.task.close()

    def export(self, directory: Path) -> None:
        """The trained model and tokenizer with `save_pretrained`, loadable by any transformers user."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
