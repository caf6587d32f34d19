"""The transformers engine: `model.generate` for rollouts, one padded forward pass for log-probs.

Rollouts are returned flat, grouped by prompt in input order: prompt i contributes counts[i]
consecutive rollouts (possibly none), and `prompt_index` says which prompt each rollout belongs to.
Sampling draws from torch's global RNG, so the caller seeds (and checkpoints) it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gdro.engines.sampling import SamplingParams


@dataclass
class Generations:
    """R = sum(counts) rollouts, flat and grouped by prompt.

    prompt_index: [R] int64, the input prompt of each rollout.
    prompt_token_ids: [R] lists, the prompt's tokens (no padding).
    completion_token_ids: [R] lists, generated tokens up to and including <eos> if produced.
    texts: [R] decoded completions without special tokens.
    """

    prompt_index: np.ndarray
    prompt_token_ids: list[list[int]]
    completion_token_ids: list[list[int]]
    texts: list[str]


class HFEngine:
    """Samples completions with `model.generate` in chunks of at most `batch_size` sequences."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 256):
        if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer needs a pad and an eos token")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def generate(self, prompts: list[str], counts: Sequence[int], params: SamplingParams) -> Generations:
        """counts[i] rollouts of prompts[i] for every i (a count may be 0)."""
        if len(prompts) != len(counts):
            raise ValueError(f"{len(prompts)} prompts but {len(counts)} counts")
        counts_array = np.asarray(counts, dtype=np.int64)
        if (counts_array < 0).any():
            raise ValueError("counts must be non-negative")
        prompt_index = np.repeat(np.arange(len(prompts), dtype=np.int64), counts_array)
        if len(prompt_index) == 0:
            return Generations(prompt_index, [], [], [])
        encoded = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        prompt_token_ids = [list(encoded[i]) for i in prompt_index]

        completion_token_ids: list[list[int]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(prompt_token_ids), self.batch_size):
                    chunk = prompt_token_ids[start : start + self.batch_size]
                    completion_token_ids += self._generate_chunk(chunk, params)
        finally:
            self.model.train(was_training)
        texts = self.tokenizer.batch_decode(completion_token_ids, skip_special_tokens=True)
        return Generations(prompt_index, prompt_token_ids, completion_token_ids, texts)

    def _generate_chunk(self, prompt_token_ids: list[list[int]], params: SamplingParams) -> list[list[int]]:
        batch = self.tokenizer.pad(
            {"input_ids": prompt_token_ids}, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.model.device)
        sampling = {"do_sample": False}
        if params.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": params.temperature,
                "top_p": params.top_p,
                "top_k": params.top_k,
            }
        sequences = self.model.generate(
            **batch,
            max_new_tokens=params.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            **sampling,
        )
        generated = sequences[:, batch["input_ids"].shape[1] :].tolist()
        eos = self.tokenizer.eos_token_id
        # After <eos> generate fills with padding; keep everything up to and including the first <eos>.
        return [tokens[: tokens.index(eos) + 1] if eos in tokens else tokens for tokens in generated]


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
