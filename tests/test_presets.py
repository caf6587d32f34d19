"""The controller presets by name (docs/algorithm.md §3-4): documented settings, overrides, unknown names."""

from __future__ import annotations

import pytest

from gdro.core.allocators import (
    BudgetConfig,
    FixedAllocator,
    RolloutGDROAllocator,
    SqrtOptimalAllocator,
)
from gdro.core.presets import ALLOCATOR_PRESETS, SAMPLER_PRESETS, build_allocator, build_sampler
from gdro.core.samplers import PromptGDROSampler, UniformSampler


def test_sampler_preset_names() -> None:
    assert sorted(SAMPLER_PRESETS) == ["prompt_gdro", "prompt_gdro_paper", "uniform"]


def test_uniform_sampler() -> None:
    sampler = build_sampler("uniform", num_prompts=20, num_groups=10)
    assert isinstance(sampler, UniformSampler)
    with pytest.raises(ValueError, match="uniform takes no options"):
        build_sampler("uniform", 20, 10, eta=1.0)


def test_prompt_gdro_paper_preset() -> None:
    sampler = build_sampler("prompt_gdro_paper", num_prompts=20, num_groups=10)
    assert isinstance(sampler, PromptGDROSampler)
    cfg = sampler.config
    assert (cfg.score_signal, cfg.share_norm, cfg.score_norm) == ("surrogate", True, "none")
    assert (cfg.mode, cfg.eta, cfg.gamma, cfg.beta, cfg.max_weight) == ("reweight", 0.65, 0.01, 0.12, 15.0)


def test_prompt_gdro_preset() -> None:
    cfg = build_sampler("prompt_gdro", num_prompts=20, num_groups=10).config
    assert (cfg.score_signal, cfg.share_norm, cfg.score_norm) == ("learnability", False, "zscore")
    assert (cfg.mode, cfg.eta, cfg.gamma, cfg.beta, cfg.max_weight) == ("reweight", 0.65, 0.01, 0.12, 15.0)


def test_sampler_overrides_apply_without_touching_the_preset() -> None:
    sampler = build_sampler("prompt_gdro_paper", 20, 11, seed=3, mode="resample", eta=1.5)
    assert (sampler.config.mode, sampler.config.eta, sampler.config.score_signal) == (
        "resample",
        1.5,
        "surrogate",
    )
    assert sampler.num_groups == 11
    fresh = build_sampler("prompt_gdro_paper", 20, 11).config
    assert (fresh.mode, fresh.eta) == ("reweight", 0.65)
    with pytest.raises(ValueError, match=r"sampler\.score_norm"):
        build_sampler("prompt_gdro", 20, 10, score_norm="rank")
    with pytest.raises(TypeError):
        build_sampler("prompt_gdro", 20, 10, no_such_key=1)


def test_unknown_sampler_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError, match=r"sampler='gdro' .*\['prompt_gdro', 'prompt_gdro_paper', 'uniform'\]"
    ):
        build_sampler("gdro", 20, 10)


def test_allocator_preset_names() -> None:
    assert sorted(ALLOCATOR_PRESETS) == ["fixed", "rollout_gdro", "rollout_gdro_paper", "sqrt_optimal"]


def test_fixed_allocator() -> None:
    allocator = build_allocator("fixed", 10, BudgetConfig(nbar=6, n_min=2, n_max=18))
    assert isinstance(allocator, FixedAllocator)
    assert allocator.budget.nbar == 6
    with pytest.raises(ValueError, match="fixed takes no options"):
        build_allocator("fixed", 10, BudgetConfig(), alpha=0.1)


def test_rollout_gdro_presets() -> None:
    paper = build_allocator("rollout_gdro_paper", 10, BudgetConfig())
    ours = build_allocator("rollout_gdro", 10, BudgetConfig())
    assert isinstance(paper, RolloutGDROAllocator) and isinstance(ours, RolloutGDROAllocator)
    assert (paper.config.utility, paper.config.alpha) == ("surrogate", 0.05)
    assert (ours.config.utility, ours.config.alpha) == ("informative", 0.005)
    for allocator in (paper, ours):
        cfg = allocator.config
        assert (cfg.eta, cfg.gamma, cfg.beta, cfg.initial_mu) == (0.65, 0.01, 0.4, 0.0)
        assert allocator.arms.tolist() == list(range(2, 13))  # spec: arms {2, ..., 12} with nbar 4


def test_sqrt_optimal_preset() -> None:
    allocator = build_allocator("sqrt_optimal", 10, BudgetConfig())
    assert isinstance(allocator, SqrtOptimalAllocator)
    cfg = allocator.config
    assert (cfg.beta, cfg.variance_floor, cfg.variance_prior) == (0.2, 0.01, 0.25)


def test_allocator_overrides_apply_without_touching_the_preset() -> None:
    budget = BudgetConfig(nbar=5, n_min=3, n_max=9)
    allocator = build_allocator("rollout_gdro", 11, budget, alpha=0.02, utility="surrogate")
    assert (allocator.config.alpha, allocator.config.utility) == (0.02, "surrogate")
    assert allocator.arms.tolist() == list(range(3, 10))
    assert build_allocator("rollout_gdro", 11, BudgetConfig()).config.alpha == 0.005
    assert build_allocator("sqrt_optimal", 4, BudgetConfig(), beta=0.5).config.beta == 0.5
    assert build_allocator("sqrt_optimal", 4, BudgetConfig()).config.beta == 0.2
    with pytest.raises(ValueError, match=r"allocator\.utility"):
        build_allocator("rollout_gdro", 11, budget, utility="variance")


def test_unknown_allocator_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError,
        match=r"allocator='neyman' .*\['fixed', 'rollout_gdro', 'rollout_gdro_paper', 'sqrt_optimal'\]",
    ):
        build_allocator("neyman", 10, BudgetConfig())
