"""The transformers engine: rollouts from prompt token ids, by a shrinking batch or `model.generate`.

Rollouts are returned flat, grouped by prompt in input order: prompt i contributes counts[i]
consecutive rollouts (possibly none), and `prompt_index` says which prompt each rollout belongs to.
Sampling draws from torch's global RNG, so the caller seeds (and checkpoints) it. Next-token logits that
are NaN or +inf, or a row with no finite logit left, raise `gdro.errors.NonFiniteError` (the
weights diverged) before torch's sampler would fail on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

from gdro.engines.base import Decoding, Generations
from gdro.engines.shrinking_decode import decode_shrinking, require_finite_scores


class HFEngine:
    """Samples completions from the actor's transformers model, at most `batch_size` sequences at a time.

    `decode` picks the sampling loop: "shrinking" (`gdro.engines.shrinking_decode`: each prompt encoded
    once, a row leaves the batch at its stop token) or "generate" (transformers `model.generate` on the
    prompt rows, every row decoded until the batch's last one stops). Both sample the same distribution
    with the same processors; their draws differ. It generates from the actor's own module (same
    process, same parameters: `sync_weights` finds the actor's own tensors and copies nothing), or from
    a whole copy of it when the actor is partitioned (ZeRO-3), which `sync_weights` then updates.
    `sleep` / `wake` have no memory to release: the protocol's other engines need them. Sampling draws
    from torch's global RNG, so the caller seeds (and checkpoints) it.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 256,
        decode: Literal["shrinking", "generate"] = "shrinking",
    ):
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer needs a pad and an eos token")
        if decode not in ("shrinking", "generate"):
            raise ValueError(f"decode is 'shrinking' or 'generate', not {decode!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.decode = decode

    def generate(
        self,
        prompt_token_ids: Sequence[Sequence[int]],
        counts: Sequence[int],
        decoding: Decoding,
        seeds: Sequence[int] | None = None,
    ) -> Generations:
        """counts[i] rollouts of prompt_token_ids[i] for every i (a count may be 0). `seeds` are not used:
        batched sampling has one RNG stream, torch's global one, which the caller seeds."""
        if len(prompt_token_ids) != len(counts):
            raise ValueError(f"{len(prompt_token_ids)} prompts but {len(counts)} counts")
        counts_array = np.asarray(counts, dtype=np.int64)
        if (counts_array < 0).any():
            raise ValueError("counts must be non-negative")
        prompt_index = np.repeat(np.arange(len(prompt_token_ids), dtype=np.int64), counts_array)
        if len(prompt_index) == 0:
            return Generations(prompt_index, [], [], [], [])
        rollout_prompts = [list(prompt_token_ids[i]) for i in prompt_index]

        completions: list[list[int]] = []
        reasons: list[str] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():  # no autograd bookkeeping at all: the tokens leave as lists
                for prompts, chunk_counts in _chunks(prompt_token_ids, counts_array, self.batch_size):
                    chunk_tokens, chunk_reasons = self._generate_chunk(prompts, chunk_counts, decoding)
                    completions += chunk_tokens
                    reasons += chunk_reasons
        finally:
            self.model.train(was_training)
        texts = self.tokenizer.batch_decode(completions, skip_special_tokens=True)
        return Generations(prompt_index, rollout_prompts, completions, texts, reasons)

    def _generate_chunk(
        self, prompts: list[list[int]], counts: list[int], decoding: Decoding
    ) -> tuple[list[list[int]], list[str]]:
        """counts[i] completions of prompts[i], flat and grouped by prompt, and their finish reasons."""
        stops = [self.tokenizer.eos_token_id, *decoding.stop_token_ids]
        if self.decode == "shrinking":
            return decode_shrinking(self.model, prompts, counts, decoding, self.tokenizer.pad_token_id, stops)
        rows = [prompt for prompt, count in zip(prompts, counts, strict=True) for _ in range(count)]
        batch = self.tokenizer.pad(
            {"input_ids": rows}, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.model.device)
        sampling = {"do_sample": False}
        if decoding.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": decoding.temperature,
                "top_p": decoding.top_p,
                "top_k": decoding.top_k,
            }
        sequences = self.model.generate(
            **batch,
            max_new_tokens=decoding.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=stops,
            logits_processor=LogitsProcessorList([_FiniteLogits()]),
            **sampling,
        )
        generated = sequences[:, batch["input_ids"].shape[1] :].tolist()
        # After a stop token generate fills with padding; keep everything up to and including the first stop.
        completions, reasons = [], []
        for tokens in generated:
            end = next((k for k, token in enumerate(tokens) if token in stops), None)
            completions.append(tokens if end is None else tokens[: end + 1])
            reasons.append("length" if end is None else "stop")
        return completions, reasons

    @torch.no_grad()
    def sync_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy each named tensor into the model's tensor of that name, unless it is that very tensor (the
        engine generates on the actor); names a tied head shares are updated through the shared tensor."""
        own = self.model.state_dict()
        for name, tensor in named_tensors:
            if name not in own:
                raise KeyError(f"sync_weights: the engine's model has no tensor {name!r}")
            if own[name].shape != tensor.shape:
                raise ValueError(
                    f"sync_weights: {name} is {tuple(tensor.shape)}, not {tuple(own[name].shape)}"
                )
            if own[name].data_ptr() != tensor.data_ptr():
                own[name].copy_(tensor)

    def sleep(self) -> None:
        """Nothing to release (no separate weights or KV cache)."""

    def wake(self) -> None:
        """Nothing to restore."""


class _FiniteLogits(LogitsProcessor):
    """`require_finite_scores` as `generate`'s last logits processor."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return require_finite_scores(scores)


def _chunks(
    prompt_token_ids: Sequence[Sequence[int]], counts: np.ndarray, batch_size: int
) -> Iterator[tuple[list[list[int]], list[int]]]:
    """Consecutive (prompts, counts) pieces of at most `batch_size` rollouts each, in input order; a
    prompt's rollouts are split across pieces only when they do not fit in one. Count-0 prompts are left
    out."""
    prompts: list[list[int]] = []
    chunk_counts: list[int] = []
    room = batch_size  # rollouts the current piece can still take
    for prompt, count in zip(prompt_token_ids, counts.tolist(), strict=True):
        while count > 0:
            take = min(count, room)
            prompts.append(list(prompt))
            chunk_counts.append(take)
            count, room = count - take, room - take
            if room == 0:
                yield prompts, chunk_counts
                prompts, chunk_counts, room = [], [], batch_size
    if prompts:
        yield prompts, chunk_counts


def tokenize_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Prompt strings as token id lists, without special tokens (the template already holds any)."""
    if not prompts:  # a fast tokenizer refuses an empty batch
        return []
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
