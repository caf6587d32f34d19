"""Controllers by name, as `conf/sampler/<name>.yaml` and `conf/allocator/<name>.yaml` name them.

Presets (docs/algorithm.md §3-4): `prompt_gdro` = learnability, no share norm, z-scored (ours);
`prompt_gdro_paper` = surrogate, share norm, raw scores; `rollout_gdro` = informative utility,
alpha 0.005 (ours); `rollout_gdro_paper` = surrogate utility, alpha 0.05. Keyword overrides replace
preset fields, so a config file only states what differs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gdro.core.allocators import (
    BudgetConfig,
    FixedAllocator,
    RolloutGDROAllocator,
    RolloutGDROConfig,
    SqrtOptimalAllocator,
    SqrtOptimalConfig,
)
from gdro.core.allocators.base import Allocator
from gdro.core.samplers import PromptGDROConfig, PromptGDROSampler, UniformSampler
from gdro.core.samplers.base import Sampler

SAMPLER_PRESETS: dict[str, PromptGDROConfig | None] = {
    "uniform": None,
    "prompt_gdro": PromptGDROConfig(),
    "prompt_gdro_paper": PromptGDROConfig(score_signal="surrogate", share_norm=True, score_norm="none"),
}

ALLOCATOR_PRESETS: dict[str, RolloutGDROConfig | SqrtOptimalConfig | None] = {
    "fixed": None,
    "rollout_gdro": RolloutGDROConfig(),
    "rollout_gdro_paper": RolloutGDROConfig(utility="surrogate", alpha=0.05),
    "sqrt_optimal": SqrtOptimalConfig(),
}


def _unknown(kind: str, name: str, known: dict[str, Any]) -> ValueError:
    return ValueError(f"{kind}={name!r} is not known; use one of {sorted(known)}")


def make_sampler(
    config: PromptGDROConfig | None, num_prompts: int, num_groups: int, seed: int = 0
) -> Sampler:
    """Prompt-GDRO with `config`, or the uniform sampler (GRPO) for None."""
    if config is None:
        return UniformSampler(num_prompts, num_groups, seed=seed)
    return PromptGDROSampler(num_prompts, num_groups, config, seed=seed)


def make_allocator(
    config: RolloutGDROConfig | SqrtOptimalConfig | None, num_groups: int, budget: BudgetConfig, seed: int = 0
) -> Allocator:
    """Rollout-GDRO or the square-root-optimal allocator with `config`, or the fixed allocator for None."""
    if config is None:
        return FixedAllocator(num_groups, budget)
    if isinstance(config, SqrtOptimalConfig):
        return SqrtOptimalAllocator(num_groups, budget, config)
    return RolloutGDROAllocator(num_groups, budget, config, seed=seed)


def build_sampler(name: str, num_prompts: int, num_groups: int, seed: int = 0, **overrides: Any) -> Sampler:
    """The sampler preset `name` with `overrides` applied to its config."""
    if name not in SAMPLER_PRESETS:
        raise _unknown("sampler", name, SAMPLER_PRESETS)
    preset = SAMPLER_PRESETS[name]
    if preset is None and overrides:
        raise ValueError(f"sampler=uniform takes no options, got {sorted(overrides)}")
    config = None if preset is None else replace(preset, **overrides)
    return make_sampler(config, num_prompts, num_groups, seed)


def build_allocator(
    name: str, num_groups: int, budget: BudgetConfig, seed: int = 0, **overrides: Any
) -> Allocator:
    """The allocator preset `name` with `overrides` applied to its config; `seed` feeds Rollout-GDRO's draws."""
    if name not in ALLOCATOR_PRESETS:
        raise _unknown("allocator", name, ALLOCATOR_PRESETS)
    preset = ALLOCATOR_PRESETS[name]
    if preset is None and overrides:
        raise ValueError(f"allocator=fixed takes no options besides the budget, got {sorted(overrides)}")
    config = None if preset is None else replace(preset, **overrides)
    return make_allocator(config, num_groups, budget, seed)
