"""GRPO math as pure functions on tensors (docs/algorithm.md §1).

Notation follows docs/algorithm.md: prompt i has n_i rollouts with rewards r_ij; groups are keyed by
prompt id, never by reshaping, because n_i varies. Shapes: N rollouts in a flat batch, S sequences
by T tokens for per-token quantities. Nothing here holds state; the trainer calls these functions
and picks modes by the names in `ADVANTAGE_STD_MODES` and `LOSS_AGGREGATIONS`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

ADVANTAGE_STD_MODES = ("unbiased", "population", "none")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")

LOG_RATIO_LIMIT = 20.0  # |log pi/pi'| cap before exp, in the surrogate and in k3 (verl's value)
K3_LIMIT = 10.0  # |k3| cap per token (verl's value)


def group_advantages(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    std_mode: str = "unbiased",
    eps: float = 1e-6,
    clip: float | None = 5.0,
) -> torch.Tensor:
    """Group-normalised advantages A_ij = (r_ij - mean_i) / (std_i + eps), clipped to [-clip, clip].

    mean_i and std_i are taken over prompt i's own n_i rollouts, found by `group_ids`.
    std_mode "unbiased": std_i = sqrt(sum_j (r_ij - mean_i)^2 / (n_i - 1)) (verl, the default);
    "population": divide by n_i instead; "none" (Dr.GRPO): A_ij = r_ij - mean_i, no division.
    A group of size 1, or one whose rewards are all equal, gets A_ij = 0 exactly. `clip=None`
    skips the clipping.

    Args:
        rewards: [N] float, r_ij for every rollout in the batch.
        group_ids: [N] int64 prompt ids; any values, any order, groups of unequal sizes.

    Returns:
        [N] advantages, same dtype as `rewards`.
    """
    if std_mode not in ADVANTAGE_STD_MODES:
        raise ValueError(f"std_mode must be one of {ADVANTAGE_STD_MODES}, got {std_mode!r}")
    if rewards.ndim != 1 or rewards.shape != group_ids.shape:
        raise ValueError(
            f"rewards and group_ids must be 1-D of equal length, got {tuple(rewards.shape)} "
            f"and {tuple(group_ids.shape)}"
        )
    _, group_index = torch.unique(group_ids, return_inverse=True)
    num_groups = int(group_index.max()) + 1 if group_index.numel() else 0

    def group_sum(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(num_groups, dtype=values.dtype, device=values.device).index_add_(
            0, group_index, values
        )

    group_size = group_sum(torch.ones_like(rewards))
    group_mean = group_sum(rewards) / group_size
    deviation = rewards - group_mean[group_index]
    if std_mode == "none":
        advantages = deviation
    else:
        divisor = group_size - 1 if std_mode == "unbiased" else group_size
        group_std = (group_sum(deviation.square()) / divisor.clamp_min(1)).sqrt()
        advantages = deviation / (group_std[group_index] + eps)

    # The mean of equal floats need not equal them exactly, so constant groups are found by
    # max == min and zeroed explicitly; this also covers groups of size 1.
    empty = torch.empty(num_groups, dtype=rewards.dtype, device=rewards.device)
    group_max = empty.scatter_reduce(0, group_index, rewards, reduce="amax", include_self=False)
    group_min = empty.scatter_reduce(0, group_index, rewards, reduce="amin", include_self=False)
    constant = (group_max == group_min)[group_index]
    advantages = torch.where(constant, torch.zeros_like(advantages), advantages)
    if clip is not None:
        advantages = advantages.clamp(-clip, clip)
    return advantages


class SurrogateLoss(NamedTuple):
    """Per-token output of `clipped_surrogate_loss`, each [S, T].

    loss_tok: the loss. clipped: 1 where clip(rho) won the min (verl's pg_clipfrac).
    dual_clipped: 1 where the dual-clip cap -A * c replaced the loss (verl's pg_clipfrac_lower).
    The two flags never overlap, and a flagged token gives no gradient to the log-probs.
    """

    loss_tok: torch.Tensor
    clipped: torch.Tensor
    dual_clipped: torch.Tensor


def clipped_surrogate_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    clip_ratio_c: float | None = 3.0,
) -> SurrogateLoss:
    """Token-level PPO clipped surrogate with clip-higher and dual clip (verl's "vanilla" loss).

    rho = exp(clamp(logprobs - old_logprobs, -20, 20)) = pi_theta / pi_old per token, and
    l = -min(rho * A, clip(rho, 1 - clip_low, 1 + clip_high) * A),
    with the sequence's advantage A broadcast over its tokens. Dual clip: for A < 0,
    loss_tok = min(l, -A * c) with c = clip_ratio_c > 1, which bounds the loss of a token whose
    ratio has grown far past 1 + clip_high; for A >= 0, or c = None, loss_tok = l. A log-ratio
    beyond +-20 is clamped, so its token gets no gradient and exp cannot overflow.

    Args:
        logprobs: [S, T] log pi_theta of the sampled tokens.
        old_logprobs: [S, T] log pi_old of the same tokens.
        advantages: [S] one advantage per sequence.
        clip_ratio_c: the dual-clip constant c (verl's default 3.0); None turns dual clip off.

    Returns:
        SurrogateLoss(loss_tok, clipped, dual_clipped), each [S, T]; the flags are 0/1 in
        loss_tok's dtype.

    Raises:
        ValueError: if clip_ratio_c is not None and <= 1.
    """
    if clip_ratio_c is not None and clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1 or None, got {clip_ratio_c}")
    ratio = torch.exp((logprobs - old_logprobs).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT))
    advantage_tok = advantages.unsqueeze(-1)
    unclipped_objective = ratio * advantage_tok
    clipped_objective = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantage_tok
    loss_tok = -torch.minimum(unclipped_objective, clipped_objective)
    clipped = (clipped_objective < unclipped_objective).to(loss_tok.dtype)
    if clip_ratio_c is None:
        return SurrogateLoss(loss_tok, clipped, torch.zeros_like(loss_tok))
    dual_cap = -advantage_tok * clip_ratio_c
    dual_clipped = (advantage_tok < 0) & (loss_tok > dual_cap)
    loss_tok = torch.where(dual_clipped, dual_cap.to(loss_tok.dtype), loss_tok)
    return SurrogateLoss(loss_tok, clipped, dual_clipped.to(loss_tok.dtype))


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Low-variance k3 estimator of KL(pi_theta || pi_ref), per token, clamped as verl does.

    With log_ratio = clamp(ref_logprobs - logprobs, -20, 20) = log(pi_ref / pi_theta),
    k3 = clamp(exp(log_ratio) - log_ratio - 1, -10, 10). k3 >= 0, so the clamp is in effect
    min(k3, 10): a token with log_ratio above about 2.61 or below about -11.0 contributes 10 and
    no gradient, and exp cannot overflow.

    Args:
        logprobs: [S, T] log pi_theta of the sampled tokens.
        ref_logprobs: [S, T] log pi_ref of the same tokens.

    Returns:
        [S, T] per-token k3 values in [0, 10].
    """
    log_ratio = (ref_logprobs - logprobs).clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)
    return (torch.exp(log_ratio) - log_ratio - 1.0).clamp(-K3_LIMIT, K3_LIMIT)


def aggregate_loss(
    token_loss: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    norm_length: int | None = None,
) -> torch.Tensor:
    """Reduce per-token losses l_st over the mini-batch to a scalar; m_st is the response mask.

    With R = {s : sum_t m_st > 0} the rows that hold at least one token:
    "token-mean": sum_{s,t} l_st m_st / sum_{s,t} m_st (verl's default; long responses weigh more).
    "seq-mean-token-mean": (1/|R|) sum_{s in R} [ sum_t l_st m_st / sum_t m_st ] (every response
    weighs the same; as verl, empty rows are left out, not counted as zeros).
    "seq-mean-token-sum-norm" (Dr.GRPO): (1/|R|) sum_{s in R} [ sum_t l_st m_st ] / norm_length, a
    constant normaliser; norm_length defaults to T (the padded length) when None. verl's version
    (volcengine/verl b178a3c, `agg_loss`) sums over the rows without dividing by any row count,
    so its scale grows with the batch; we divide by |R| as Dr.GRPO's mean over responses does.
    Denominators are clamped to at least 1, so an all-zero mask gives exactly 0 (and a zero
    gradient), never NaN. It is `aggregate_loss_share` with the whole batch as its one micro-batch.

    Args:
        token_loss: [S, T] per-token loss.
        mask: [S, T] 1 for response tokens, 0 for padding (bool or float).

    Returns:
        Scalar tensor.
    """
    mask = mask.to(token_loss.dtype)
    return aggregate_loss_share(
        token_loss,
        mask,
        mode,
        batch_tokens=float(mask.sum()),
        batch_rows=int((mask.sum(dim=-1) > 0).sum()),
        norm_length=token_loss.shape[-1] if norm_length is None else norm_length,
    )


def aggregate_loss_share(
    token_loss: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    batch_tokens: float,
    batch_rows: int,
    norm_length: int | None = None,
) -> torch.Tensor:
    """One micro-batch's term of `aggregate_loss` over a mini-batch cut into micro-batches.

    The denominators come from the WHOLE mini-batch: N = `batch_tokens`, its response tokens
    (sum of its mask), and R = `batch_rows`, its rows holding at least one token. For this
    micro-batch's rows s (l, m as in `aggregate_loss`):
    "token-mean": sum_{s,t} l_st m_st / max(N, 1);
    "seq-mean-token-mean": sum_s [ sum_t l_st m_st / max(sum_t m_st, 1) ] / max(R, 1)
    (an empty row adds 0);
    "seq-mean-token-sum-norm": sum_{s,t} l_st m_st / max(R, 1) / norm_length.
    Summed over micro-batches that partition the mini-batch's rows, the terms give
    aggregate_loss(l, m, mode, norm_length) of the whole mini-batch (equal up to rounding, whatever
    the cut), and so do their gradients: gradient accumulation over micro-batches then equals one
    pass over the mini-batch. "seq-mean-token-sum-norm" needs `norm_length`, since the padded length
    that `aggregate_loss` would fall back on differs between micro-batches.

    Args:
        token_loss: [S_mb, T_mb] per-token loss of the micro-batch's rows.
        mask: [S_mb, T_mb] 1 for response tokens, 0 for padding (bool or float).

    Returns:
        Scalar tensor.
    """
    if mode not in LOSS_AGGREGATIONS:
        raise ValueError(f"mode must be one of {LOSS_AGGREGATIONS}, got {mode!r}")
    if mode == "seq-mean-token-sum-norm" and norm_length is None:
        raise ValueError("seq-mean-token-sum-norm needs norm_length for micro-batch shares")
    mask = mask.to(token_loss.dtype)
    if mode == "token-mean":
        return (token_loss * mask).sum() / max(batch_tokens, 1)
    if mode == "seq-mean-token-mean":
        return sequence_mean(token_loss, mask).sum() / max(batch_rows, 1)
    return (token_loss * mask).sum() / max(batch_rows, 1) / norm_length


def sequence_mean(token_loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-response token average: sum_t l_st m_st / max(sum_t m_st, 1).

    Args:
        token_loss: [S, T] per-token values.
        mask: [S, T] 1 for response tokens, 0 for padding (bool or float).

    Returns:
        [S] one value per response (0 for a response with no tokens).
    """
    mask = mask.to(token_loss.dtype)
    return (token_loss * mask).sum(dim=-1) / mask.sum(dim=-1).clamp_min(1.0)
