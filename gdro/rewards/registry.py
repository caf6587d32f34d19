"""Rewards by name, as `reward.name` in the config selects them.

| name | scores | runs |
|---|---|---|
| integer_match | last \\boxed{} content == the integer answer (the embedded chain task) | inline |
| math_verify | math-verify equivalence of the last \\boxed{} (docs/algorithm.md §1) | worker pool |
| dapo | verl's DAPO "Answer:" line with Minerva normalisation | inline |
| gpqa | the chosen option letter A-D | inline |
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from gdro.rewards.base import InlineReward, Reward
from gdro.rewards.boxed import integer_match_reward
from gdro.rewards.dapo import dapo_score
from gdro.rewards.gpqa import gpqa_score
from gdro.rewards.math_equivalence import MathVerifyReward

REWARDS: dict[str, Callable[..., Reward]] = {
    "integer_match": partial(InlineReward, integer_match_reward),
    "math_verify": MathVerifyReward,
    "dapo": partial(InlineReward, dapo_score),
    "gpqa": partial(InlineReward, gpqa_score),
}


def build_reward(name: str, **options: object) -> Reward:
    """The reward registered as `name`, built with `options` (math_verify: workers, deadline_s,
    max_answer_chars; the inline rewards take none)."""
    if name not in REWARDS:
        raise ValueError(f"reward.name={name!r} is not one of {sorted(REWARDS)}")
    return REWARDS[name](**options)
