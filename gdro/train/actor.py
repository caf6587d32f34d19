"""The actor: memory-bounded completion log-probs and PPO updates by gradient accumulation.

Log-probs (`completion_logprobs`) never hold a [sequences, tokens, vocab] tensor: the model body runs
once, the hidden states that predict completion tokens are gathered into a flat [N, H] tensor
(padding and prompt positions dropped), and the output head, log softmax(z / T) and the gather of the
sampled token run on `chunk_tokens` rows at a time, each chunk under activation checkpointing, so
that peak extra memory is O(chunk_tokens x V) in the forward and in the backward.

`Actor.update` takes one PPO mini-batch (whole prompt groups, chosen by the caller), cuts it into
micro-batches of at most `max_tokens_per_microbatch` padded tokens, accumulates their gradients with
the mini-batch's loss denominators (`aggregate_loss_share`), clips and takes one optimizer step, which
the backend skips when a loss or the gradient norm is not finite. The gradient does not depend on the
cut (up to rounding). Log-probs without gradients (pi_old, the reference) that are not finite stop the
run (`NonFiniteError`): the weights diverged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel

from gdro.core.grpo import aggregate_loss_share, clipped_surrogate_loss, kl_k3, sequence_mean
from gdro.errors import NonFiniteError
from gdro.train.actor_types import ActorConfig, ActorStats
from gdro.train.microbatch import token_budget_microbatches
from gdro.train.parallel.backends import TorchBackend, TrainingBackend
from gdro.train.parallel.world import World

TokenRows = Sequence[Sequence[int]]


def completion_logprobs(
    model: PreTrainedModel,
    prompt_ids: TokenRows,
    completion_ids: TokenRows,
    temperature: float,
    chunk_tokens: int = 1024,
    body: Callable[..., Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log pi_T(y_t | x, y_<t) = log softmax(z_t / T)[y_t], chunked over the vocabulary head.

    Same inputs, conventions and result as the naive one-pass reference the tests hold (prompt + completion
    concatenated, right padding, positions 0..len-1, logits at position t score token t + 1, taken in
    float32 and divided by T), without its [S, L, V] logits: rows with an empty completion skip the
    forward, the body (`model.base_model`) yields hidden states [S', L, H], the N = sum of completion
    lengths positions p_s - 1 .. p_s + c_s - 2 of each row s are gathered into [N, H], and the head
    (`model.get_output_embeddings()`, tied or not) scores them `chunk_tokens` rows at a time. With
    gradients on, each chunk is checkpointed: its [chunk, V] logits are recomputed in the backward
    instead of kept. Suits causal LMs whose logits are exactly head(hidden) (Qwen3, Llama; not models
    with logit soft-capping or scaling).

    Args:
        prompt_ids: [S] token lists; non-empty where the completion is.
        completion_ids: [S] token lists, possibly empty.
        temperature: T > 0, the rollouts' sampling temperature.
        chunk_tokens: rows of the [N, H] hidden states per head call; peak extra memory is
            a few chunk_tokens x V float32 tensors.
        body: what runs `model.base_model` (a torch.compile of it), or None for the module itself.

    Returns:
        logprobs: [S, Tc] float32, Tc = longest completion; 0 where masked.
        mask: [S, Tc] float32, 1 on completion tokens, 0 on padding.
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError("prompt and completion lists differ in length")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score samples, got {temperature}")
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be >= 1, got {chunk_tokens}")
    device = model.device
    lengths = [len(completion) for completion in completion_ids]
    mask = torch.zeros(len(lengths), max(lengths, default=0), device=device)
    scored = [row for row, length in enumerate(lengths) if length]
    if not scored:
        return mask.clone(), mask
    if any(not prompt_ids[row] for row in scored):
        raise ValueError("a completion needs a non-empty prompt to condition on")

    batch = _right_padded(prompt_ids, completion_ids, scored, pad_id=model.config.pad_token_id or 0)
    out_rows, out_cols = batch.out_rows.to(device), batch.out_cols.to(device)
    mask[out_rows, out_cols] = 1.0

    own_body, head = _body_and_head(model)
    hidden = (own_body if body is None else body)(
        input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device), use_cache=False
    ).last_hidden_state
    selected = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.positions.to(device))  # [N, H]
    targets = batch.targets.to(device)
    score = (
        partial(checkpoint, _token_logprobs, use_reentrant=False)
        if torch.is_grad_enabled()
        else _token_logprobs
    )
    pieces = [
        score(
            head, selected[start : start + chunk_tokens], targets[start : start + chunk_tokens], temperature
        )
        for start in range(0, len(targets), chunk_tokens)
    ]
    logprobs = mask.new_zeros(mask.shape).index_put((out_rows, out_cols), torch.cat(pieces))
    return logprobs, mask


class _PaddedRows(NamedTuple):
    """The forward's inputs [S', L] and where the N scored tokens are: flat positions [N] into the
    [S' * L] hidden states, their token ids [N], and their (row, column) [N] in the [S, Tc] output."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    positions: torch.Tensor
    targets: torch.Tensor
    out_rows: torch.Tensor
    out_cols: torch.Tensor


def _right_padded(
    prompt_ids: TokenRows, completion_ids: TokenRows, scored: list[int], pad_id: int
) -> _PaddedRows:
    """Prompt + completion of the `scored` rows, right-padded with `pad_id` to the longest (as
    the naive reference); completion token k of row s is predicted at position len(prompt_s) - 1 + k."""
    prompt_lengths = np.array([len(prompt_ids[row]) for row in scored], dtype=np.int64)
    completion_lengths = np.array([len(completion_ids[row]) for row in scored], dtype=np.int64)
    lengths = prompt_lengths + completion_lengths
    longest = int(lengths.max())
    tokens = np.fromiter(
        (token for row in scored for part in (prompt_ids[row], completion_ids[row]) for token in part),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    filled = np.arange(longest) < lengths[:, None]  # [S', L]: row-major order is the tokens' order
    input_ids = np.full((len(scored), longest), pad_id, dtype=np.int64)
    input_ids[filled] = tokens
    # the N completion tokens: their offset k within the completion, their row, their flat position
    starts = np.repeat(np.cumsum(completion_lengths) - completion_lengths, completion_lengths)
    offsets = np.arange(int(completion_lengths.sum())) - starts
    rows = np.repeat(np.arange(len(scored)), completion_lengths)
    positions = rows * longest + prompt_lengths[rows] - 1 + offsets
    targets = input_ids.reshape(-1)[positions + 1]
    return _PaddedRows(
        torch.from_numpy(input_ids),
        torch.from_numpy(filled.astype(np.int64)),
        torch.from_numpy(positions),
        torch.from_numpy(targets),
        torch.from_numpy(np.asarray(scored, dtype=np.int64)[rows]),
        torch.from_numpy(offsets),
    )


def _body_and_head(model: PreTrainedModel) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder stack (returns last_hidden_state) and the output projection of a causal LM."""
    body, head = model.base_model, model.get_output_embeddings()
    if body is model or head is None:
        raise ValueError(f"{type(model).__name__} has no separate base model and output head")
    return body, head


def _token_logprobs(
    head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor, temperature: float
) -> torch.Tensor:
    """log softmax(head(h) / T)[y] per row: hidden [n, H], targets [n] -> [n] float32."""
    logits = head(hidden).float() / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)


class Actor:
    """PPO updates of `model`; the caller owns the learning-rate schedule.

    `backend` turns the accumulated gradients into a step (default: `TorchBackend` with `optimizer`);
    `world` the data-parallel ranks. With several ranks each holds its own rows (whole prompt groups),
    the loss denominators are the mini-batch's GLOBAL counts (summed over ranks), and every rank runs
    the same number of forward (and backward) passes, padding with zero-weight passes on a one-token
    row: ZeRO-3 gathers parameters in every forward, so one rank's extra pass would hang the others.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        optimizer: torch.optim.Optimizer | None,
        config: ActorConfig,
        backend: TrainingBackend | None = None,
        world: World | None = None,
    ) -> None:
        if backend is None and optimizer is None:
            raise ValueError("give the actor an optimizer or a training backend")
        self.model = model
        self.config = config
        self.backend = backend if backend is not None else TorchBackend(model, optimizer, config.grad_clip)
        self.world = world if world is not None else World()
        # ZeRO-3 gathers the head's weight in every head call, so all ranks must make the same number of
        # calls: with several ranks the head scores a micro-batch in one call (its [tokens, V] logits are
        # bounded by max_tokens_per_microbatch instead of logprob_chunk_tokens).
        one_call = self.world.distributed and self.backend.partitions_parameters
        self.chunk_tokens = sys.maxsize if one_call else config.logprob_chunk_tokens
        self._compiled: dict[int, Callable[..., Any]] = {}  # id(model) -> its compiled body
        if config.gradient_checkpointing:
            # transformers < 5.21 (the GPU environment) lacks `activation_checkpointing_enable`.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def _body(self, model: PreTrainedModel) -> Callable[..., Any] | None:
        """The compiled decoder body of `model` (the actor's or the reference), compiled at its first use
        and kept, with `compile_forward`; else None (the module runs as it is)."""
        if not self.config.compile_forward:
            return None
        if id(model) not in self._compiled:
            self._compiled[id(model)] = torch.compile(_body_and_head(model)[0], dynamic=True)
        return self._compiled[id(model)]

    def microbatches(self, prompt_ids: TokenRows, completion_ids: TokenRows) -> list[list[int]]:
        """Token-budget cut of the rows, by length (row index lists); a row without completion tokens
        costs nothing (no forward)."""
        widths = [len(p) + len(c) if c else 0 for p, c in zip(prompt_ids, completion_ids, strict=True)]
        return token_budget_microbatches(widths, self.config.max_tokens_per_microbatch)

    @torch.no_grad()
    def logprobs(
        self, prompt_ids: TokenRows, completion_ids: TokenRows, model: PreTrainedModel | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`completion_logprobs` of `model` (default: the actor's; pass the reference for ref log-probs)
        without gradients, micro-batched by the token budget: [S, Tc] log-probs and mask."""
        model = self.model if model is None else model
        lengths = [len(completion) for completion in completion_ids]
        mask = torch.zeros(len(lengths), max(lengths, default=0), device=model.device)
        logprobs = mask.clone()
        passes, _ = self._forward_passes(prompt_ids, completion_ids)
        for _ in range(self.world.max(len(passes)) - len(passes)):
            self._padding_logprob(model)
        for rows in passes:
            part, part_mask = completion_logprobs(
                model,
                [prompt_ids[row] for row in rows],
                [completion_ids[row] for row in rows],
                self.config.temperature,
                self.chunk_tokens,
                self._body(model),
            )
            index = torch.tensor(rows, device=model.device)
            logprobs[index, : part.shape[1]] = part
            mask[index, : part.shape[1]] = part_mask
        if self.world.max(int(not bool(torch.isfinite(logprobs).all()))):  # every rank stops
            raise NonFiniteError("the log-probs of the rollouts (old or reference policy) are")
        return logprobs, mask

    def _forward_passes(
        self, prompt_ids: TokenRows, completion_ids: TokenRows
    ) -> tuple[list[list[int]], int]:
        """The micro-batches that need a forward (those holding a completion token), and how many there are
        in all."""
        cuts = self.microbatches(prompt_ids, completion_ids)
        return [rows for rows in cuts if any(completion_ids[row] for row in rows)], len(cuts)

    def _padding_logprob(self, model: PreTrainedModel) -> torch.Tensor:
        """A forward on a one-token prompt and completion: the rank's turn in a pass it has no rows for."""
        pad = model.config.pad_token_id or 0
        return completion_logprobs(model, [[pad]], [[pad]], self.config.temperature)[0].sum()

    def update(
        self,
        prompt_ids: TokenRows,
        completion_ids: TokenRows,
        advantages: torch.Tensor,
        old_logprobs: torch.Tensor | None,
        ref_logprobs: torch.Tensor | None = None,
        signal_advantages: torch.Tensor | None = None,
        is_weights: torch.Tensor | None = None,
    ) -> ActorStats:
        """One optimizer step on one mini-batch of S rows, by gradient accumulation over micro-batches.

        loss = agg(l^clip) + kl_coef agg(k3), agg = `loss_agg` over the whole mini-batch; each
        micro-batch backpropagates its `aggregate_loss_share`. Then the gradient norm is clipped to
        `grad_clip` and the optimizer steps once, unless a loss or the norm is not finite (`skipped`;
        the backend decides, the same on every rank) (parameters that got no gradient, as when no row
        has a completion token, are left alone). With several ranks, the rows are this rank's share
        of the mini-batch: the denominators are summed over ranks and each loss is multiplied by the
        number of ranks, which the backend's gradient averaging divides back out.

        Args:
            advantages: [S] advantages of the loss (GDRO-weighted when reweighting).
            old_logprobs: [S, >= Tc] log pi_old from `logprobs` before this step's updates, or None
                when the policy has not moved since the rollouts (on-policy): pi_old is then this
                forward's detached log-probs, bitwise equal to `logprobs` of the same rows (same
                micro-batches, same kernels), and comes back in `ActorStats.old_logprobs`.
            ref_logprobs: [S, >= Tc] of the reference policy; needed when kl_coef > 0.
            signal_advantages: [S] unweighted advantages for the per-row surrogate signal, or None.
            is_weights: [S, >= Tc] detached per-token weights of the policy loss (truncated rollout
                importance sampling, `gdro.core.rollout_correction`), or None for 1.
        """
        c = self.config
        if c.kl_coef > 0 and ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs")
        device = self.model.device
        lengths = [len(completion) for completion in completion_ids]
        local_tokens, local_rows = sum(lengths), sum(1 for length in lengths if length)
        batch_tokens, batch_rows = (int(n) for n in self.world.sum([local_tokens, local_rows]))
        signal = np.zeros(len(lengths)) if signal_advantages is not None else None
        totals = dict.fromkeys(("policy", "kl", "clipped", "dual_clipped"), 0.0)
        taken = (
            torch.zeros(len(lengths), max(lengths, default=0), device=device)
            if old_logprobs is None
            else None
        )
        cuts, microbatches = self._forward_passes(prompt_ids, completion_ids)
        passes = self.world.max(len(cuts))
        scale = self.backend.ranks  # the backend averages gradients over ranks
        self.model.train()
        if passes == 0:  # no rank holds a completion token: nothing to learn, no step
            return ActorStats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, microbatches, signal, old_logprobs=taken)
        self.backend.begin()
        for index in range(passes - len(cuts)):  # this rank's padding passes come first
            self.backend.before_forward()
            self.backend.backward(0.0 * self._padding_logprob(self.model), boundary=index == passes - 1)
        for index, rows in enumerate(cuts, start=passes - len(cuts)):
            part = torch.tensor(rows)  # CPU indices: they index tensors on the CPU and on the device
            self.backend.before_forward()
            logprobs, mask = completion_logprobs(
                self.model,
                [prompt_ids[row] for row in rows],
                [completion_ids[row] for row in rows],
                c.temperature,
                self.chunk_tokens,
                self._body(self.model),
            )
            width = logprobs.shape[1]
            if taken is not None:  # on-policy: pi_old is this forward's
                taken[part, :width] = logprobs.detach()
            old = (old_logprobs if taken is None else taken)[part, :width].to(device)
            surrogate = clipped_surrogate_loss(
                logprobs,
                old,
                advantages[part].to(device),
                clip_low=c.clip_low,
                clip_high=c.clip_high,
                clip_ratio_c=c.clip_ratio_c,
            )

            def share(token_loss: torch.Tensor, mask: torch.Tensor = mask) -> torch.Tensor:
                return aggregate_loss_share(
                    token_loss, mask, c.loss_agg, batch_tokens, batch_rows, c.norm_length
                )

            token_loss = surrogate.loss_tok
            if is_weights is not None:
                token_loss = token_loss * is_weights[part, :width].to(device)
            policy_loss = share(token_loss)
            kl_tokens = (
                kl_k3(logprobs, ref_logprobs[part, :width].to(device)) if ref_logprobs is not None else None
            )
            kl_loss = share(kl_tokens) if kl_tokens is not None else torch.zeros((), device=device)
            self.backend.backward(scale * (policy_loss + c.kl_coef * kl_loss), boundary=index == passes - 1)
            with torch.no_grad():
                totals["policy"] += float(policy_loss)
                totals["kl"] += float(kl_loss)
                totals["clipped"] += float((surrogate.clipped * mask).sum())
                totals["dual_clipped"] += float((surrogate.dual_clipped * mask).sum())
                if signal is not None and signal_advantages is not None:
                    unweighted = clipped_surrogate_loss(
                        logprobs.detach(),
                        old,
                        signal_advantages[part].to(device),
                        clip_low=c.clip_low,
                        clip_high=c.clip_high,
                        clip_ratio_c=None,  # the authors' per-response signal l_b has no dual clip
                    ).loss_tok
                    if c.surrogate_signal_kl and kl_tokens is not None:
                        unweighted = unweighted + c.kl_coef * kl_tokens.detach()
                    signal[rows] = sequence_mean(unweighted, mask).double().cpu().numpy()
        grad_norm, applied = self.backend.step()
        return ActorStats(
            loss=totals["policy"] + c.kl_coef * totals["kl"],
            policy_loss=totals["policy"],
            kl_loss=totals["kl"],
            clip_fraction=totals["clipped"] / max(batch_tokens, 1),
            dual_clip_fraction=totals["dual_clipped"] / max(batch_tokens, 1),
            grad_norm=grad_norm,
            microbatches=microbatches,
            surrogate_per_row=signal,
            skipped=self.world.max(int(not applied)) > 0,  # DeepSpeed's decision already is (global norm)
            old_logprobs=taken,
        )
