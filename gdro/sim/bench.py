"""Per-step cost of the controllers (classify + weights + allocate + update), on simulated outcomes.

Only the curriculum's `plan` and `observe` are timed; the simulator's rollouts and learning are not.
The paper measures the driver-side advantage stage on Qwen3-4B at 0.355 s/step (Prompt-GDRO) and
0.446 s/step (Rollout-GDRO).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from gdro.core.allocators import BudgetConfig
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import ClassifierConfig, DifficultyClassifier
from gdro.core.presets import build_allocator, build_sampler
from gdro.sim.simulator import LearningSimulator, SimulatorConfig

PAPER_SECONDS_PER_STEP = {"prompt_gdro_paper": 0.355, "rollout_gdro_paper": 0.446}

# (controller name as in conf/, sampler, allocator): samplers run with `fixed`, allocators with `uniform`.
CONTROLLERS = (
    ("uniform", "uniform", "fixed"),
    ("prompt_gdro", "prompt_gdro", "fixed"),
    ("prompt_gdro_paper", "prompt_gdro_paper", "fixed"),
    ("rollout_gdro", "uniform", "rollout_gdro"),
    ("rollout_gdro_paper", "uniform", "rollout_gdro_paper"),
    ("sqrt_optimal", "uniform", "sqrt_optimal"),
)


@dataclass
class BenchRecord:
    """Median milliseconds per controller step for one (controller, M, B)."""

    controller: str
    M: int
    B: int
    ms_per_step: float


def time_controller(
    sampler: str, allocator: str, batch_size: int, num_bins: int, repeats: int, warmup: int, seed: int = 0
) -> float:
    """Median ms of plan + observe over `repeats` steps, after `warmup` untimed steps."""
    num_prompts = max(2048, 4 * batch_size)
    simulator = LearningSimulator(SimulatorConfig(num_prompts=num_prompts, seed=seed))
    classifier = DifficultyClassifier(num_prompts, ClassifierConfig(num_bins=num_bins))
    curriculum = Curriculum(
        classifier,
        build_sampler(sampler, num_prompts, classifier.num_groups, seed=seed),
        build_allocator(allocator, classifier.num_groups, BudgetConfig()),
    )
    timings = []
    for step in range(warmup + repeats):
        start = time.perf_counter()
        plan = curriculum.plan(batch_size)
        planned = time.perf_counter()
        correct = simulator.rollout(plan.prompt_ids, plan.rollouts_per_prompt)
        simulator.learn(plan.prompt_ids, plan.rollouts_per_prompt, correct, plan.advantage_weights)
        surrogate = np.zeros(batch_size)
        observing = time.perf_counter()
        curriculum.observe(plan, correct, surrogate_loss=surrogate)
        done = time.perf_counter()
        if step >= warmup:
            timings.append((planned - start) + (done - observing))
    return 1e3 * float(np.median(timings))


def run_benchmark(
    batch_sizes: tuple[int, ...] = (256, 512, 4096),
    bin_counts: tuple[int, ...] = (3, 10),
    repeats: int = 200,
    warmup: int = 50,
) -> list[BenchRecord]:
    """Every controller at every (M, B)."""
    return [
        BenchRecord(name, m, b, time_controller(sampler, allocator, m, b, repeats, warmup))
        for name, sampler, allocator in CONTROLLERS
        for m in batch_sizes
        for b in bin_counts
    ]


def format_table(records: list[BenchRecord]) -> str:
    """A Markdown table, with the paper's measured seconds per step beside ours."""
    lines = [
        "| controller | M | B | ms/step (median) | paper s/step (Qwen3-4B driver) |",
        "|---|---|---|---|---|",
    ]
    for record in records:
        paper = PAPER_SECONDS_PER_STEP.get(record.controller)
        paper_text = f"{paper:.3f}" if paper is not None else "-"
        lines.append(
            f"| {record.controller} | {record.M} | {record.B} | {record.ms_per_step:.3f} | {paper_text} |"
        )
    return "\n".join(lines)


def records_as_json(records: list[BenchRecord]) -> list[dict]:
    """`{"controller", "M", "B", "ms_per_step"}` per record."""
    return [asdict(record) for record in records]
