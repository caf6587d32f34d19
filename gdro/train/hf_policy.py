"""GRPO on a transformers causal LM: generate, reward, group advantages, PPO mini-batch updates.

One step, given the curriculum's plan (prompt ids, n_i, advantage multipliers w_i):
  1. n_i completions per prompt at the training temperature;
  2. reward r_ij = +1 / -1 from the task's verifier;
  3. A_ij = group advantage keyed by prompt id (groups of unequal size), clipped; A~_ij = w_i A_ij;
  4. old log-probs (and the frozen reference's, when the KL coefficient is > 0) per mini-batch, from
     the policy before any update; every log-prob is taken at the rollout temperature T,
     log softmax(z / T), the distribution the rollouts came from;
  5. for each PPO epoch and mini-batch of prompts: loss = agg(-min(rho A~, clip(rho) A~)) + kl_coef agg(k3),
     the loss of tokens with A~ < 0 capped at -A~ c (dual clip, `clip_ratio_c`); one AdamW step with
     gradient clipping;
  6. the per-prompt surrogate signal l(x_i): mean over x_i's responses of the token-averaged clipped loss
     with UNweighted advantages and no dual clip, as the authors' patch computes it (plus the KL term if
     `surrogate_signal_kl`), averaged over epochs. On
     the first mini-batch the ratio is exactly 1 and l = 0; only later mini-batches carry drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.config import TrainerConfig
from gdro.core.curriculum import StepPlan
from gdro.core.grpo import aggregate_loss, clipped_surrogate_loss, group_advantages, kl_k3, sequence_mean
from gdro.engines.hf import HFEngine, sequence_logprobs
from gdro.evaluation import evaluate_by_level
from gdro.train.policy import StepOutcome

RewardFn = Callable[[str, str], float]


@dataclass
class TaskData:
    """Training prompts and answers indexed by prompt id, the eval split, and the verifier."""

    prompts: Sequence[str]
    answers: Sequence[str]
    eval_split: object  # a datasets.Dataset with prompt, answer, level
    reward: RewardFn


class HFPolicy:
    """A transformers policy trained in-process with GRPO/PPO updates."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        task: TaskData,
        settings: TrainerConfig,
        reference: PreTrainedModel | None = None,
        generation_batch_size: int = 256,
    ) -> None:
        if settings.kl_coef > 0 and reference is None:
            raise ValueError("trainer.kl_coef > 0 needs the frozen reference model")
        self.model = model
        self.tokenizer = tokenizer
        self.reference = reference
        self.task = task
        self.settings = settings
        self.rollout_sampling = settings.rollout_sampling()
        self.eval_sampling = settings.eval_sampling()
        self.num_prompts = len(task.prompts)
        self.engine = HFEngine(model, tokenizer, batch_size=generation_batch_size)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        warmup = max(settings.warmup_steps, 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda t: min(1.0, (t + 1) / warmup)
        )

    def _rewards(self, texts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        return np.array([self.task.reward(text, answer) for text, answer in zip(texts, answers, strict=True)])

    def train_step(self, plan: StepPlan) -> StepOutcome:
        """Generate, reward and update on the plan's prompts; see the module docstring."""
        s = self.settings
        batch_size = len(plan.prompt_ids)
        prompts = [self.task.prompts[i] for i in plan.prompt_ids]
        generations = self.engine.generate(prompts, plan.rollouts_per_prompt.tolist(), self.rollout_sampling)
        owner = generations.prompt_index  # [R] batch position of each rollout
        rewards = self._rewards(generations.texts, [self.task.answers[plan.prompt_ids[i]] for i in owner])
        correct = np.bincount(owner, weights=(rewards > 0).astype(np.float64), minlength=batch_size).astype(
            np.int64
        )

        advantages = group_advantages(
            torch.tensor(rewards, dtype=torch.float32),
            torch.as_tensor(plan.prompt_ids[owner]),
            std_mode=s.adv_std,
            clip=s.adv_clip,
        )
        weighted = advantages * torch.as_tensor(plan.advantage_weights[owner], dtype=torch.float32)
        chunks = [
            np.flatnonzero(np.isin(owner, part))
            for part in np.array_split(np.arange(batch_size), s.ppo_mini_batches)
        ]
        chunks = [rows for rows in chunks if len(rows)]

        def tokens(rows: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
            return [generations.prompt_token_ids[r] for r in rows], [
                generations.completion_token_ids[r] for r in rows
            ]

        temperature = self.rollout_sampling.temperature

        with torch.no_grad():
            old = [sequence_logprobs(self.model, *tokens(rows), temperature)[0] for rows in chunks]
            ref = (
                [sequence_logprobs(self.reference, *tokens(rows), temperature)[0] for rows in chunks]
                if s.kl_coef > 0
                else None
            )

        signal_sum = np.zeros(len(owner))
        totals = {
            "loss/total": 0.0,
            "loss/policy": 0.0,
            "loss/kl": 0.0,
            "loss/clip_fraction": 0.0,
            "loss/dual_clip_fraction": 0.0,
            "loss/grad_norm": 0.0,
        }
        self.model.train()
        for _ in range(s.ppo_epochs):
            for index, rows in enumerate(chunks):
                logprobs, mask = sequence_logprobs(self.model, *tokens(rows), temperature)
                token_loss, clipped, dual_clipped = clipped_surrogate_loss(
                    logprobs,
                    old[index],
                    weighted[rows],
                    clip_low=s.clip_low,
                    clip_high=s.clip_high,
                    clip_ratio_c=s.clip_ratio_c,
                )
                policy_loss = aggregate_loss(
                    token_loss, mask, s.loss_agg, norm_length=self.rollout_sampling.max_new_tokens
                )
                kl_tokens = kl_k3(logprobs, ref[index]) if ref is not None else torch.zeros_like(logprobs)
                kl_loss = aggregate_loss(
                    kl_tokens, mask, s.loss_agg, norm_length=self.rollout_sampling.max_new_tokens
                )
                loss = policy_loss + s.kl_coef * kl_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
                self.optimizer.step()
                with torch.no_grad():
                    unweighted, _, _ = clipped_surrogate_loss(
                        logprobs.detach(),
                        old[index],
                        advantages[rows],
                        clip_low=s.clip_low,
                        clip_high=s.clip_high,
                        clip_ratio_c=None,  # the authors' per-response signal l_b has no dual clip
                    )
                    if s.surrogate_signal_kl:
                        unweighted = unweighted + s.kl_coef * kl_tokens.detach()
                    signal_sum[rows] += sequence_mean(unweighted, mask).double().numpy()
                    totals["loss/total"] += float(loss)
                    totals["loss/policy"] += float(policy_loss)
                    totals["loss/kl"] += float(kl_loss)
                    totals["loss/clip_fraction"] += float((clipped * mask).sum() / mask.sum().clamp_min(1))
                    totals["loss/dual_clip_fraction"] += float(
                        (dual_clipped * mask).sum() / mask.sum().clamp_min(1)
                    )
                    totals["loss/grad_norm"] += float(grad_norm)
        step_lr = float(self.scheduler.get_last_lr()[0])  # the rate this step's updates used
        self.scheduler.step()
        updates = s.ppo_epochs * len(chunks)
        metrics: dict[str, float | None] = {key: value / updates for key, value in totals.items()}
        per_response = signal_sum / s.ppo_epochs
        surrogate = np.bincount(owner, weights=per_response, minlength=batch_size) / np.maximum(
            plan.rollouts_per_prompt, 1
        )
        metrics["signal/surrogate_abs_mean"] = float(np.abs(surrogate).mean())
        metrics["optim/lr"] = step_lr
        return StepOutcome(
            correct_per_prompt=correct,
            surrogate_loss=surrogate,
            generated_tokens=int(sum(len(c) for c in generations.completion_token_ids)),
            tokens_per_prompt=np.bincount(
                owner, [len(c) for c in generations.completion_token_ids], batch_size
            ),
            metrics=metrics,
        )

    def evaluate(self) -> dict[str, float]:
        """mean@k and pass@k per level and pooled on the held-out split (spec section 6): eval/...

        With `eval_at_rollout_temperature`, the same prompts are also sampled with the rollout
        settings (eval_rollout/...): RL first improves the distribution it samples from, which the
        near-greedy validation sampling (temperature 0.6, top-p 0.8) can hide.
        """
        s = self.settings
        samplings = [("eval", self.eval_sampling)]
        if s.eval_at_rollout_temperature:
            samplings.append(("eval_rollout", self.rollout_sampling))
        metrics: dict[str, float] = {}
        for prefix, params in samplings:
            metrics |= evaluate_by_level(
                self.engine,
                self.task.eval_split,
                self.task.reward,
                samples=s.eval_samples,
                params=params,
                prefix=prefix,
            )
        return metrics

    def save(self, directory: Path) -> None:
        """Model, optimizer and scheduler state (exact, for resume)."""
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
            },
            directory / "policy.pt",
        )

    def load(self, directory: Path) -> None:
        """Restore what `save` wrote."""
        state = torch.load(directory / "policy.pt", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def export(self, directory: Path) -> None:
        """The trained model and tokenizer with `save_pretrained`, loadable by any transformers user."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
