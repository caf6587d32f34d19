"""The controllers by name (docs/algorithm.md §3-4): the registries, the named presets of conf/ with their
documented settings, overrides, unknown names."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gdro.config import ConfigError
from gdro.config.presets import load_controller
from gdro.core.allocators import (
    BudgetConfig,
    FixedAllocator,
    RolloutGDROAllocator,
    RolloutGDROConfig,
    SqrtOptimalAllocator,
)
from gdro.core.allocators.base import Allocator
from gdro.core.registry import ALLOCATORS, SAMPLERS, Registry, build_allocator, build_sampler
from gdro.core.samplers import PromptGDROConfig, PromptGDROSampler, UniformSampler
from gdro.core.samplers.base import Sampler


def sampler_choice(
    choice: str, num_prompts: int = 20, num_groups: int = 10, seed: int = 0, **overrides
) -> Sampler:
    """The sampler of conf/sampler/<choice>.yaml with `overrides`."""
    chosen = load_controller("sampler", choice, **overrides)
    return build_sampler(chosen.schema, chosen.config, num_prompts, num_groups, seed=seed)


def allocator_choice(
    choice: str, num_groups: int, budget: BudgetConfig | None = None, **overrides
) -> Allocator:
    """The allocator of conf/allocator/<choice>.yaml with `overrides` (and `budget` over its own)."""
    chosen = load_controller("allocator", choice, **overrides)
    return build_allocator(chosen.schema, chosen.config, num_groups, budget or chosen.shared)


def test_registered_controllers() -> None:
    assert list(SAMPLERS) == ["prompt_gdro", "spo", "uniform"]
    assert list(ALLOCATORS) == ["fixed", "knapsack", "rollout_gdro", "sqrt_optimal"]
    assert SAMPLERS["prompt_gdro"].config is PromptGDROConfig and SAMPLERS["uniform"].config is None


def test_uniform_sampler() -> None:
    assert isinstance(sampler_choice("uniform"), UniformSampler)
    with pytest.raises(ConfigError, match=r"sampler\.eta is not a setting of sampler"):
        sampler_choice("uniform", eta=1.0)


def test_prompt_gdro_paper_preset() -> None:
    sampler = sampler_choice("prompt_gdro_paper")
    assert isinstance(sampler, PromptGDROSampler)
    cfg = sampler.config
    assert (cfg.score_signal, cfg.share_norm, cfg.score_norm) == ("surrogate", True, "none")
    assert (cfg.mode, cfg.eta, cfg.gamma, cfg.beta, cfg.max_weight) == ("reweight", 0.65, 0.01, 0.12, 15.0)


def test_prompt_gdro_preset() -> None:
    cfg = sampler_choice("prompt_gdro").config
    assert cfg == PromptGDROConfig()
    assert (cfg.score_signal, cfg.share_norm, cfg.score_norm) == ("learnability", False, "zscore")
    assert (cfg.mode, cfg.eta, cfg.gamma, cfg.beta, cfg.max_weight) == ("reweight", 0.65, 0.01, 0.12, 15.0)


def test_sampler_overrides_apply_without_touching_the_preset() -> None:
    sampler = sampler_choice("prompt_gdro_paper", 20, 11, seed=3, mode="resample", eta=1.5)
    assert (sampler.config.mode, sampler.config.eta, sampler.config.score_signal) == (
        "resample",
        1.5,
        "surrogate",
    )
    assert sampler.num_groups == 11
    fresh = sampler_choice("prompt_gdro_paper", 20, 11).config
    assert (fresh.mode, fresh.eta) == ("reweight", 0.65)
    with pytest.raises(ConfigError, match=r"sampler\.score_norm='rank': use one of \('none', 'zscore'\)"):
        sampler_choice("prompt_gdro", score_norm="rank")
    with pytest.raises(ConfigError, match=r"sampler\.no_such_key is not a setting"):
        sampler_choice("prompt_gdro", no_such_key=1)


def test_unknown_sampler_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError, match=r"sampler='gdro' .*\['prompt_gdro', 'prompt_gdro_paper', 'spo', 'uniform'\]"
    ):
        load_controller("sampler", "gdro")
    with pytest.raises(
        ValueError, match=r"sampler='gdro' is not registered; known: \['prompt_gdro', 'spo', 'uniform'\]"
    ):
        build_sampler("gdro", None, 20, 10)


def test_a_controller_refuses_settings_of_another() -> None:
    with pytest.raises(ValueError, match="uniform takes no options, got PromptGDROConfig"):
        build_sampler("uniform", PromptGDROConfig(), 20, 10)
    with pytest.raises(ValueError, match="prompt_gdro takes PromptGDROConfig, got NoneType"):
        build_sampler("prompt_gdro", None, 20, 10)


def test_fixed_allocator() -> None:
    allocator = allocator_choice("fixed", 10, BudgetConfig(nbar=6, n_min=2, n_max=18))
    assert isinstance(allocator, FixedAllocator)
    assert allocator.budget.nbar == 6
    with pytest.raises(ConfigError, match=r"allocator\.alpha is not a setting of allocator"):
        allocator_choice("fixed", 10, alpha=0.1)


def test_rollout_gdro_presets() -> None:
    paper = allocator_choice("rollout_gdro_paper", 10)
    ours = allocator_choice("rollout_gdro", 10)
    assert isinstance(paper, RolloutGDROAllocator) and isinstance(ours, RolloutGDROAllocator)
    assert (paper.config.utility, paper.config.alpha) == ("surrogate", 0.05)
    assert ours.config == RolloutGDROConfig()
    assert (ours.config.utility, ours.config.alpha) == ("informative", 0.005)
    for allocator in (paper, ours):
        cfg = allocator.config
        assert (cfg.eta, cfg.gamma, cfg.beta, cfg.initial_mu) == (0.65, 0.01, 0.4, 0.0)
        assert allocator.arms.tolist() == list(range(2, 13))  # spec: arms {2, ..., 12} with nbar 4


def test_sqrt_optimal_preset() -> None:
    allocator = allocator_choice("sqrt_optimal", 10)
    assert isinstance(allocator, SqrtOptimalAllocator)
    cfg = allocator.config
    assert (cfg.beta, cfg.variance_floor, cfg.variance_prior) == (0.2, 0.01, 0.25)


def test_allocator_overrides_apply_without_touching_the_preset() -> None:
    allocator = allocator_choice(
        "rollout_gdro", 11, nbar=5, n_min=3, n_max=9, alpha=0.02, utility="surrogate"
    )
    assert (allocator.config.alpha, allocator.config.utility) == (0.02, "surrogate")
    assert allocator.arms.tolist() == list(range(3, 10))
    assert allocator_choice("rollout_gdro", 11).config.alpha == 0.005
    assert allocator_choice("sqrt_optimal", 4, beta=0.5).config.beta == 0.5
    assert allocator_choice("sqrt_optimal", 4).config.beta == 0.2
    with pytest.raises(ConfigError, match=r"allocator\.utility='variance': use one of"):
        allocator_choice("rollout_gdro", 11, utility="variance")


def test_unknown_allocator_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError,
        match=r"allocator='neyman' .*\['fixed', 'knapsack', 'rollout_gdro', 'rollout_gdro_paper', 'sqrt_optimal'\]",
    ):
        load_controller("allocator", "neyman")


def test_a_registry_refuses_a_second_entry_under_one_name() -> None:
    @dataclass
    class Options:
        size: int = 1

    family = Registry("widget", builtin="gdro.core")
    family.register("plain", config=Options)(dict)
    family.register("plain", config=Options)(dict)  # the same entry again (a module imported twice)
    assert family["plain"].config is Options
    with pytest.raises(ValueError, match="widget 'plain' is registered twice"):
        family.register("plain")(list)
    with pytest.raises(ValueError, match=r"widget='other' is not registered; known: \['plain'\]"):
        family["other"]
