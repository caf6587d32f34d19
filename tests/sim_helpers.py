"""Builders shared by the simulator-driven tests: a curriculum of named controllers on a simulator."""

from __future__ import annotations

from gdro.core.allocators import BudgetConfig
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import ClassifierConfig, DifficultyClassifier
from gdro.core.presets import build_allocator, build_sampler
from gdro.sim.simulator import LearningSimulator, SimulatorConfig


def build_sim_run(
    sampler: str,
    allocator: str,
    seed: int,
    num_prompts: int = 2048,
    classifier: ClassifierConfig | None = None,
    sampler_options: dict | None = None,
    allocator_options: dict | None = None,
) -> tuple[LearningSimulator, Curriculum]:
    """A fresh simulator and curriculum, both seeded by `seed`."""
    simulator = LearningSimulator(SimulatorConfig(num_prompts=num_prompts, seed=seed))
    difficulty = DifficultyClassifier(num_prompts, classifier or ClassifierConfig())
    curriculum = Curriculum(
        difficulty,
        build_sampler(sampler, num_prompts, difficulty.num_groups, seed=seed, **(sampler_options or {})),
        build_allocator(
            allocator, difficulty.num_groups, BudgetConfig(), seed=seed, **(allocator_options or {})
        ),
    )
    return simulator, curriculum
