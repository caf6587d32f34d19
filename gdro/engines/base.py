"""What every rollout engine speaks: decoding settings in, flat grouped generations out.

The trainer hands an engine prompt TOKEN IDS (never strings to re-tokenise) and a count n_i per prompt;
the engine returns R = sum_i n_i completions, grouped by prompt in input order. `HFEngine`
(the transformers model, `gdro.engines.hf`) and `VLLMEngine` (`gdro.engines.vllm`) implement it. `Decoding`
is named so that it cannot be confused with vLLM's own `SamplingParams`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

FINISH_REASONS = ("stop", "length")


@dataclass(frozen=True)
class Decoding:
    """Decoding settings: top_k = 0 and top_p = 1.0 disable those filters; temperature 0 is greedy.

    `max_new_tokens` caps each completion; generation also stops at any of `stop_token_ids` (besides
    the tokenizer's eos), e.g. Qwen3's `<|im_end|>` for a base model prompted without a chat template.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    stop_token_ids: tuple[int, ...] = ()


@dataclass
class Generations:
    """R = sum(counts) rollouts, flat and grouped by prompt.

    prompt_index: [R] int64, the input prompt of each rollout.
    prompt_token_ids: [R] lists, the prompt's tokens (no padding).
    completion_token_ids: [R] lists, generated tokens up to and including the stop token if produced.
    texts: [R] decoded completions without special tokens.
    finish_reasons: [R] "stop" (a stop token ended it) or "length" (max_new_tokens reached).
    sampler_logprobs: [R] lists of the sampler's log-probs of the completion tokens, or None when the
        engine does not report them (HFEngine: the trainer's own log-probs are the sampler's).
    """

    prompt_index: np.ndarray
    prompt_token_ids: list[list[int]]
    completion_token_ids: list[list[int]]
    texts: list[str]
    finish_reasons: list[str]
    sampler_logprobs: list[list[float]] | None = None

    @property
    def truncation_rate(self) -> float:
        """Fraction of rollouts cut at max_new_tokens (0 for none)."""
        if not self.finish_reasons:
            return 0.0
        return sum(reason == "length" for reason in self.finish_reasons) / len(self.finish_reasons)


def full_state(model: PreTrainedModel) -> list[tuple[str, torch.Tensor]]:
    """Every parameter under every name it has (so a tied output head appears as `lm_head.weight`),
    detached: what `sync_weights` must stream (vLLM keeps the old head when its name is missing), and what
    an export writes. `named_parameters` would drop the tied name."""
    return [(name, tensor.detach()) for name, tensor in model.state_dict(keep_vars=False).items()]


class RolloutEngine(Protocol):
    """Generates completions for prompts with per-prompt counts; follows the actor's weights."""

    def generate(
        self,
        prompt_token_ids: Sequence[Sequence[int]],
        counts: Sequence[int],
        decoding: Decoding,
        seeds: Sequence[int] | None = None,
    ) -> Generations:
        """counts[i] rollouts of prompt i; seeds[i] seeds prompt i's samples where the engine seeds per
        prompt (vLLM), else (HF, or seeds None) sampling draws from torch's global RNG."""
        ...

    def sync_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Follow the actor: its whole weights by name (`full_state`, or gathered under ZeRO-3)."""
        ...

    def sleep(self) -> None: ...

    def wake(self) -> None: ...
