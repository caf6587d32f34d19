"""The transformers engine: `model.generate` for rollouts, one padded forward pass for log-probs.

Rollouts are returned flat, grouped by prompt in input order: prompt i contributes counts[i]
consecutive rollouts (possibly none), and `prompt_index` says which prompt each rollout belongs to.
Sampling draws from torch's global RNG, so the caller seeds (and checkpoints) it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.engines.base import Decoding, Generations


class HFEngine:
    """Samples completions with `model.generate` in chunks of at most `batch_size` sequences.

    It generates from the actor's own module (same process, same parameters), so `sync_weights` has
    nothing to copy and `sleep` / `wake` have no memory to release: the protocol's other engines need them.
    Sampling draws from torch's global RNG, so the caller seeds (and checkpoints) it.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 256):
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer needs a pad and an eos token")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def generate(
        self, prompt_token_ids: Sequence[Sequence[int]], counts: Sequence[int], decoding: Decoding
    ) -> Generations:
        """counts[i] rollouts of prompt_token_ids[i] for every i (a count may be 0)."""
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

    def sync_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Nothing to copy: generation runs on the actor's own parameters."""

    def sleep(self) -> None:
        """Nothing to release (no separate weights or KV cache)."""

    def wake(self) -> None:
        """Nothing to restore."""


def tokenize_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Prompt strings as token id lists, without special tokens (the template already holds any)."""
    if not prompts:  # a fast tokenizer refuses an empty batch
        return []
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]


def sequence_logprobs(
    model: PreTrainedModel,
    prompt_token_ids: Sequence[Sequence[int]],
    completion_token_ids: Sequence[Sequence[int]],
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log pi_T(y_t | x, y_<t) = log softmax(z_t / T)[y_t] of each completion, in one
    right-padded forward pass.

    T is the temperature the completions were sampled at, so that the PPO ratio and the policy
    gradient refer to the distribution that produced them (verl divides the logits the same way).
    Top-k / top-p filters are not applied (the trainer config refuses them for rollouts). Right padding keeps
    positions 0..len-1 for every sequence, as in generation with left padding (where positions come
    from the attention mask). Gradients flow; call under no_grad to skip them.

    Returns:
        logprobs: [S, T] float32, T = longest completion; 0 where masked.
        mask: [S, T] float32, 1 on completion tokens, 0 on padding.
    """
    if len(prompt_token_ids) != len(completion_token_ids):
        raise ValueError("prompt and completion lists differ in length")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 to score samples, got {temperature}")
    num_sequences = len(prompt_token_ids)
    prompt_lengths = [len(p) for p in prompt_token_ids]
    completion_lengths = [len(c) for c in completion_token_ids]
    longest_completion = max(completion_lengths, default=0)
    longest = max((p + c for p, c in zip(prompt_lengths, completion_lengths, strict=True)), default=0)
    device = model.device
    if num_sequences == 0 or longest_completion == 0:
        empty = torch.zeros(num_sequences, longest_completion, device=device)
        return empty, empty.clone()

    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    input_ids = torch.full((num_sequences, longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros(num_sequences, longest, dtype=torch.long)
    # Logits at position t predict token t + 1: completion token k sits at prompt_length + k.
    gather_positions = torch.zeros(num_sequences, longest_completion, dtype=torch.long)
    targets = torch.full((num_sequences, longest_completion), pad_id, dtype=torch.long)
    mask = torch.zeros(num_sequences, longest_completion)
    for row, (prompt, completion) in enumerate(zip(prompt_token_ids, completion_token_ids, strict=True)):
        length = len(prompt) + len(completion)
        input_ids[row, :length] = torch.tensor(list(prompt) + list(completion), dtype=torch.long)
        attention_mask[row, :length] = 1
        if completion:
            if not prompt:
                raise ValueError("a completion needs a non-empty prompt to condition on")
            gather_positions[row, : len(completion)] = torch.arange(len(prompt) - 1, length - 1)
            targets[row, : len(completion)] = torch.tensor(list(completion), dtype=torch.long)
            mask[row, : len(completion)] = 1.0

    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    gather_positions, targets, mask = gather_positions.to(device), targets.to(device), mask.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    rows = torch.arange(num_sequences, device=device)[:, None]
    completion_logits = logits[rows, gather_positions].float() / temperature
    logprobs = torch.log_softmax(completion_logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return logprobs * mask, mask
