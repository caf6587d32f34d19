"""Batched sampling from a causal LM whose batch shrinks as its rows stop.

`model.generate` keeps every row of a batch in each decoding step until the last row stops: on the
embedded task the longest of 256 completions runs about 3 times the mean, so most of its row-steps
score rows that have already stopped. Here a row leaves the batch (and the key-value cache) at its stop
token, and each step's forward runs on the rows still going.

Each step samples as `generate` does: the last position's logits in float32, the same processors
(transformers' temperature, top-k and top-p warpers, in `generate`'s order), then `torch.multinomial`
over softmax (or the argmax at temperature 0). The distribution of every completion is the same; the
draws are not, as a step draws for fewer rows once one has stopped.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from transformers import (
    DynamicCache,
    LogitsProcessorList,
    PreTrainedModel,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from gdro.engines.base import Decoding
from gdro.errors import NonFiniteError


def decode_shrinking(
    model: PreTrainedModel,
    prompt_token_ids: Sequence[Sequence[int]],
    counts: Sequence[int],
    decoding: Decoding,
    pad_token_id: int,
    stop_token_ids: Sequence[int],
) -> tuple[list[list[int]], list[str]]:
    """counts[i] completions of each prompt i, flat and grouped by prompt in input order, and their
    finish reasons.

    Each prompt is encoded once (the prompts left-padded into one batch); its keys and values are then
    repeated for its counts[i] rows. A row's completion ends at its first stop token, kept as its last
    token ("stop"), or after `decoding.max_new_tokens` tokens ("length"). Draws from torch's global RNG.
    """
    device = model.device
    width = max(len(prompt) for prompt in prompt_token_ids)
    input_ids = torch.full((len(prompt_token_ids), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, prompt in enumerate(prompt_token_ids):
        input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        attention_mask[row, width - len(prompt) :] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    cache_key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    warpers = _warpers(decoding)
    stops = torch.tensor(list(stop_token_ids), device=device)
    # the prompt of each row: prompt i's rows follow one another
    expand = torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts)).to(device)
    rows = len(expand)
    going = torch.arange(rows, device=device)  # the completion row of each batch row
    sampled = torch.full((rows, decoding.max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    lengths = torch.full((rows,), decoding.max_new_tokens, dtype=torch.long, device=device)
    ended = torch.zeros(rows, dtype=torch.bool, device=device)  # stopped at a stop token
    for step in range(decoding.max_new_tokens):
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{cache_key: cache},
        ).logits[:, -1, :]
        if step == 0:  # from each prompt to its rows
            cache.batch_select_indices(expand)
            logits, attention_mask, positions = logits[expand], attention_mask[expand], positions[expand]
        scores = require_finite_scores(warpers(input_ids, logits.float()))
        if decoding.temperature > 0:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.argmax(-1)
        sampled[going, step] = tokens
        stopped = torch.isin(tokens, stops)
        if bool(stopped.any()):
            lengths[going[stopped]] = step + 1
            ended[going[stopped]] = True
            kept = (~stopped).nonzero().squeeze(1)
            if len(kept) == 0:
                break
            cache.batch_select_indices(kept)
            going, tokens = going[kept], tokens[kept]
            attention_mask, positions = attention_mask[kept], positions[kept]
        input_ids = tokens[:, None]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(going), 1)], dim=1)
        positions = positions[:, -1:] + 1
    completions = [row[:length] for row, length in zip(sampled.tolist(), lengths.tolist(), strict=True)]
    return completions, ["stop" if stop else "length" for stop in ended.tolist()]


def require_finite_scores(scores: torch.Tensor) -> torch.Tensor:
    """The next-token scores [rows, V] after the processors (top-k and top-p set -inf on purpose), unless
    one is NaN or +inf, or a row has no score above -inf left to sample from: then `NonFiniteError`."""
    # one pass over [rows, V]: a row's max is NaN if any score is (amax propagates NaN), +inf if any is,
    # -inf if none is left to sample from
    if bool((~torch.isfinite(scores.amax(-1))).any()):
        raise NonFiniteError("the rollout engine's next-token logits are")
    return scores


def _warpers(decoding: Decoding) -> LogitsProcessorList:
    """`generate`'s sampling warpers for these settings, in its order (temperature, top-k, top-p)."""
    warpers = LogitsProcessorList()
    if decoding.temperature > 0:
        if decoding.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(decoding.temperature))
        if decoding.top_k:
            warpers.append(TopKLogitsWarper(top_k=decoding.top_k, min_tokens_to_keep=1))
        if decoding.top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p=decoding.top_p, min_tokens_to_keep=1))
    return warpers
