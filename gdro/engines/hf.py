"""The transformers engine: `model.generate` for rollouts from prompt token ids.

Rollouts are returned flat, grouped by prompt in input order: prompt i contributes counts[i]
consecutive rollouts (possibly none), and `prompt_index` says which prompt each rollout belongs to.
Sampling draws from torch's global RNG, so the caller seeds (and checkpoints) it. Next-token logits that
are NaN or +inf, or a row with no finite logit left, raise `gdro.errors.NonFiniteError` (the
weights diverged) before torch's sampler would fail on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedModel, PreTrainedTokenizerBase

from gdro.engines.base import Decoding, Generations
from gdro.errors import NonFiniteError


class HFEngine:
    """Samples completions with `model.generate` in chunks of at most `batch_size` sequences.

    It generates from the actor's own module (same process, same parameters: `sync_weights` finds the
    actor's own tensors and copies nothing), or from a whole copy of it when the actor is partitioned
    (ZeRO-3), which `sync_weights` then updates. `sleep` / `wake` have no memory to release: the
    protocol's other engines need them. Sampling draws from torch's global RNG, so the caller seeds (and
    checkpoints) it.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 256):
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer needs a pad and an eos token")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def generate(
        self,
        prompt_token_ids: Sequence[Sequence[int]],
        counts: Sequence[int],
        decoding: Decoding,
        seeds: Sequence[int] | None = None,
    ) -> Generations:
        """counts[i] rollouts of prompt_token_ids[i] for every i (a count may be 0). `seeds` are not used:
        batched `generate` has one RNG stream, torch's global one, which the caller seeds."""
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
            with torch.no_grad():
                for start in range(0, len(rollout_prompts), self.batch_size):
                    chunk_tokens, chunk_reasons = self._generate_chunk(
                        rollout_prompts[start : start + self.batch_size], decoding
                    )
                    completions += chunk_tokens
                    reasons += chunk_reasons
        finally:
            self.model.train(was_training)
        texts = self.tokenizer.batch_decode(completions, skip_special_tokens=True)
        return Generations(prompt_index, rollout_prompts, completions, texts, reasons)

    def _generate_chunk(
        self, prompt_token_ids: list[list[int]], decoding: Decoding
    ) -> tuple[list[list[int]], list[str]]:
        batch = self.tokenizer.pad(
            {"input_ids": prompt_token_ids}, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.model.device)
        sampling = {"do_sample": False}
        if decoding.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": decoding.temperature,
                "top_p": decoding.top_p,
                "top_k": decoding.top_k,
            }
        stops = [self.tokenizer.eos_token_id, *decoding.stop_token_ids]
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
    """Passes the scores through, after the other processors (top-k and top-p set -inf on purpose): raises
    `NonFiniteError` when one is NaN or +inf, or a row has no score above -inf left to sample from."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # one pass over [rows, V]: a row's max is NaN if any score is (amax propagates NaN), +inf if any is,
        # -inf if none is left to sample from
        if bool((~torch.isfinite(scores.amax(-1))).any()):
            raise NonFiniteError("the rollout engine's next-token logits are")
        return scores


def tokenize_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Prompt strings as token id lists, without special tokens (the template already holds any)."""
    if not prompts:  # a fast tokenizer refuses an empty batch
        return []
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
