"""Rewards by name, as `reward.name` in the config selects them; each registers where its scorer lives.

| name | scores | runs |
|---|---|---|
| integer_match | last \\boxed{} content == the integer answer (the embedded chain task) | inline |
| math_verify | math-verify equivalence of the last \\boxed{} (docs/algorithm.md §1) | worker pool |
| dapo | verl's DAPO "Answer:" line with Minerva normalisation | inline |
| gpqa | the chosen option letter A-D | inline |

A batched reward class registers with `@REWARDS.register(name)`; a cheap per-item scorer
`score(text, answer) -> float` with `@inline_reward(name)` (run in the calling thread by `InlineReward`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from gdro.core.registry import Registry
from gdro.rewards.base import InlineReward, Reward

REWARDS = Registry("reward", builtin="gdro.rewards")
"""Rewards: built as `build(**options)` (see `build_reward`)."""

Score = Callable[[str, str], float]


def inline_reward(name: str) -> Callable[[Score], Score]:
    """Decorator: register the per-item scorer as the inline reward `name`."""

    def add(score: Score) -> Score:
        REWARDS.add(name, partial(InlineReward, score))
        return score

    return add


def build_reward(name: str, **options: object) -> Reward:
    """The reward registered as `name`, built with `options` (math_verify: workers, deadline_s,
    max_answer_chars; the inline rewards take none)."""
    if name not in REWARDS:
        raise ValueError(f"reward.name={name!r} is not one of {list(REWARDS)}")
    return REWARDS[name].build(**options)
