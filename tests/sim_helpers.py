"""Builders shared by the simulator-driven tests: a curriculum of controllers named as in `conf/` on a simulator."""

from __future__ import annotations

from gdro.config.presets import load_controller
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import ClassifierConfig, DifficultyClassifier
from gdro.core.registry import build_allocator, build_sampler
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
    groups = difficulty.num_groups
    chosen = load_controller("sampler", sampler, **(sampler_options or {}))
    allocated = load_controller("allocator", allocator, **(allocator_options or {}))
    curriculum = Curriculum(
        difficulty,
        build_sampler(chosen.schema, chosen.config, num_prompts, groups, seed=seed),
        build_allocator(allocated.schema, allocated.config, groups, allocated.shared, seed=seed),
    )
    return simulator, curriculum
