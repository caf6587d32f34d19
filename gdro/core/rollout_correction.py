"""Truncated importance sampling between the rollout sampler and the trainer (verl's `rollout_is`).

A separate engine (vLLM) samples from pi_sampler, its own kernels' version of the policy, while PPO's
ratio is taken against the trainer's pi_old of the same weights. The two differ by numerics (and by a
stale sync). Each token's policy loss is multiplied by a detached weight that corrects the sampling
distribution back to pi_old, truncated from above so that a rare token cannot dominate:
    token:    w_t = min(exp(log pi_old(y_t) - log pi_sampler(y_t)), cap)
    sequence: w_t = min(exp(sum_t' (log pi_old(y_t') - log pi_sampler(y_t'))), cap) on every token
(verl's truncated IS, `rollout_is_threshold` 2.0). Log-ratios are clamped to +-20 before exp, like
the PPO ratio. `logprob_diff` = mean |log pi_old - log pi_sampler| over tokens is the sync's health
signal: about 1e-6 in float32 when the engine follows the actor, order 1 when it does not.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gdro.core.grpo import LOG_RATIO_LIMIT

ROLLOUT_IS_MODES = ("none", "token", "sequence")


class RolloutCorrection(NamedTuple):
    """weights [S, T] (1 on masked positions and with mode "none"), and the logged statistics."""

    weights: torch.Tensor
    metrics: dict[str, float]


def rollout_is_weights(
    old_logprobs: torch.Tensor,
    sampler_logprobs: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    cap: float,
) -> RolloutCorrection:
    """The truncated IS weights of the module docstring and their statistics.

    Args:
        old_logprobs: [S, T] the trainer's log-probs of the sampled tokens before the update.
        sampler_logprobs: [S, T] the sampler's log-probs of the same tokens.
        mask: [S, T] 1 on completion tokens.
        mode: "none" | "token" | "sequence".
        cap: the truncation threshold (> 0).

    Returns:
        weights [S, T], detached; metrics rollout/logprob_diff (mean |difference|), and, unless the mode
        is "none", rollout_is/mean and rollout_is/max of the untruncated weights and rollout_is/capped,
        the fraction truncated (over tokens, or over sequences for "sequence").
    """
    if mode not in ROLLOUT_IS_MODES:
        raise ValueError(f"rollout_is mode must be one of {ROLLOUT_IS_MODES}, got {mode!r}")
    mask = mask.float()
    tokens = mask.sum().clamp(min=1.0)
    log_ratio = ((old_logprobs - sampler_logprobs) * mask).detach()
    metrics = {"rollout/logprob_diff": float(log_ratio.abs().sum() / tokens)}
    if mode == "none":
        return RolloutCorrection(torch.ones_like(mask), metrics)
    if mode == "token":
        raw = torch.exp(log_ratio.clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT))
        units, unit_mask = raw, mask
    else:
        sequence = torch.exp(log_ratio.sum(dim=-1).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT))  # [S]
        raw = sequence[:, None].expand_as(mask)
        units, unit_mask = sequence, (mask.sum(dim=-1) > 0).float()
    count = unit_mask.sum().clamp(min=1.0)
    metrics |= {
        "rollout_is/mean": float((units * unit_mask).sum() / count),
        "rollout_is/max": float((units * unit_mask).max()) if unit_mask.any() else 1.0,
        "rollout_is/capped": float(((units > cap).float() * unit_mask).sum() / count),
    }
    weights = torch.where(mask > 0, raw.clamp(max=cap), torch.ones_like(raw))
    return RolloutCorrection(weights, metrics)
