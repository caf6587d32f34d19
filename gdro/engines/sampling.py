"""Decoding settings shared by every rollout engine and by the config (no engine import needed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SamplingParams:
    """Decoding settings. top_k = 0 and top_p = 1.0 disable those filters; temperature 0 is greedy."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
