"""Rollout allocators, selected by `conf/allocator/<name>.yaml`: `fixed` (GRPO), `rollout_gdro`, `sqrt_optimal`,
`knapsack` (the Knapsack-RL baseline).
Each registers itself in `gdro.core.registry.ALLOCATORS`; importing this package registers them all."""

from gdro.core.allocators.base import Allocator
from gdro.core.allocators.budget import BudgetConfig, complete_budget, exact_budget_arms, integerise
from gdro.core.allocators.fixed import FixedAllocator
from gdro.core.allocators.knapsack import (
    KnapsackAllocator,
    KnapsackConfig,
    knapsack_allocation,
    knapsack_value,
)
from gdro.core.allocators.rollout_gdro import RolloutGDROAllocator, RolloutGDROConfig, informative_utility
from gdro.core.allocators.sqrt_optimal import SqrtOptimalAllocator, SqrtOptimalConfig, clipped_scale_solution

__all__ = [
    "Allocator",
    "BudgetConfig",
    "FixedAllocator",
    "KnapsackAllocator",
    "KnapsackConfig",
    "RolloutGDROAllocator",
    "RolloutGDROConfig",
    "SqrtOptimalAllocator",
    "SqrtOptimalConfig",
    "clipped_scale_solution",
    "complete_budget",
    "exact_budget_arms",
    "informative_utility",
    "integerise",
    "knapsack_allocation",
    "knapsack_value",
]
