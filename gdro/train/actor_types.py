"""What the actor reads (`ActorConfig`: the PPO loss and the memory knobs) and what one update returns
(`ActorStats`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from gdro.config import TrainerConfig


@dataclass
class ActorConfig:
    """What the actor reads: the PPO loss (from `TrainerConfig`) and the memory knobs.

    norm_length: the constant of "seq-mean-token-sum-norm" (the trainer's max_new_tokens).
    max_tokens_per_microbatch: padded tokens (rows x longest prompt + completion) per forward.
    logprob_chunk_tokens: completion tokens per head call in `completion_logprobs`.
    gradient_checkpointing: recompute the decoder layers' activations in the backward.
    compile_forward: run the decoder body of `logprobs` and `update` through torch.compile (inductor,
        dynamic shapes): fused kernels, so the log-probs differ from eager ones in the last bits.
    """

    clip_low: float
    clip_high: float
    clip_ratio_c: float | None
    kl_coef: float
    loss_agg: str
    norm_length: int
    grad_clip: float
    temperature: float
    surrogate_signal_kl: bool
    max_tokens_per_microbatch: int = 16384
    logprob_chunk_tokens: int = 1024
    gradient_checkpointing: bool = False
    compile_forward: bool = False

    @classmethod
    def from_trainer(cls, settings: TrainerConfig, **memory: int | bool) -> ActorConfig:
        """The loss settings of `settings`; `memory` sets the last three fields by name."""
        return cls(
            clip_low=settings.clip_low,
            clip_high=settings.clip_high,
            clip_ratio_c=settings.clip_ratio_c,
            kl_coef=settings.kl_coef,
            loss_agg=settings.loss_agg,
            norm_length=settings.max_new_tokens,
            grad_clip=settings.grad_clip,
            temperature=settings.temperature,
            surrogate_signal_kl=settings.surrogate_signal_kl,
            compile_forward=settings.compile_forward,
            **memory,
        )


@dataclass
class ActorStats:
    """One mini-batch update.

    loss = policy_loss + kl_coef * kl_loss, each the mini-batch aggregate (`loss_agg`) before the
    step; clip fractions are over the mini-batch's response tokens; grad_norm is before clipping.
    skipped: the backend skipped the step (a loss or the gradient norm was not finite), on every rank.
    surrogate_per_row: [S] float64, per response sequence_mean of the clipped loss with the
    `signal_advantages` and no dual clip (+ kl_coef * k3 if surrogate_signal_kl); None without them.
    old_logprobs: [S, Tc] float32 pi_old of the rows, 0 where masked, when the update took it from its
    own forward (on-policy: no `old_logprobs` given); None otherwise.
    """

    loss: float
    policy_loss: float
    kl_loss: float
    clip_fraction: float
    dual_clip_fraction: float
    grad_norm: float
    microbatches: int
    surrogate_per_row: np.ndarray | None
    skipped: bool = False
    old_logprobs: torch.Tensor | None = None
