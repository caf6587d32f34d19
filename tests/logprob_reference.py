"""The naive reference of `gdro.train.actor.completion_logprobs`: one padded forward pass that builds the
whole [S, L, V] logits. Tests compare the chunked production function against it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedModel


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
