"""Per-step cost of the controllers (classify + weights + allocate + update), on simulated outcomes.

Only the curriculum's `plan` and `observe` are timed; the simulator's rollouts and learning are not.
All controllers of one (M, B) cell run interleaved, one step each in turn, so a busy machine slows them
alike, and `ratio` (the median over rounds of controller time / uniform time in the same round) is
comparable across machines and loads where the absolute milliseconds are not. Target: every ratio
within 2 at M = 512 and 4096.
The paper measures the driver-side advantage stage on Qwen3-4B at 0.355 s/step (Prompt-GDRO) and
0.446 s/step (Rollout-GDRO).

`sim_training_rate` times the whole `policy=sim` training loop instead (plan, simulated step, observe,
metrics, evaluation, checkpoints): steps per second of `train()`, without the process start-up.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdro.config import parse_run_config
from gdro.config.presets import load_controller
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import ClassifierConfig, DifficultyClassifier
from gdro.core.registry import build_allocator, build_sampler
from gdro.sim.simulator import LearningSimulator, SimulatorConfig
from gdro.train.loop import train

PAPER_SECONDS_PER_STEP = {"prompt_gdro_paper": 0.355, "rollout_gdro_paper": 0.446}
BASELINE = "uniform"


@dataclass(frozen=True)
class Controller:
    """A sampler and an allocator named as in `conf/`: samplers run with `fixed`, allocators with
    `uniform`, and `both` is `prompt_gdro` with `rollout_gdro` (docs/algorithm.md §5)."""

    name: str
    sampler: str
    allocator: str
    sampler_options: dict[str, Any] = field(default_factory=dict)


CONTROLLERS = (
    Controller(BASELINE, "uniform", "fixed"),
    Controller("prompt_gdro", "prompt_gdro", "fixed"),
    Controller("prompt_gdro_resample", "prompt_gdro", "fixed", {"mode": "resample"}),
    Controller("prompt_gdro_paper", "prompt_gdro_paper", "fixed"),
    Controller("rollout_gdro", "uniform", "rollout_gdro"),
    Controller("rollout_gdro_paper", "uniform", "rollout_gdro_paper"),
    Controller("sqrt_optimal", "uniform", "sqrt_optimal"),
    Controller("both", "prompt_gdro", "rollout_gdro"),
)


@dataclass
class BenchRecord:
    """Median milliseconds per controller step for one (controller, M, B), and its ratio to uniform
    (median over rounds of the two times measured in the same round)."""

    controller: str
    M: int
    B: int
    ms_per_step: float
    ratio: float


def _build(controller: Controller, batch_size: int, num_bins: int, seed: int) -> tuple:
    num_prompts = max(2048, 4 * batch_size)
    simulator = LearningSimulator(SimulatorConfig(num_prompts=num_prompts, seed=seed))
    classifier = DifficultyClassifier(num_prompts, ClassifierConfig(num_bins=num_bins))
    groups = classifier.num_groups
    sampler = load_controller("sampler", controller.sampler, **controller.sampler_options)
    allocator = load_controller("allocator", controller.allocator)
    curriculum = Curriculum(
        classifier,
        build_sampler(sampler.schema, sampler.config, num_prompts, groups, seed=seed),
        build_allocator(allocator.schema, allocator.config, groups, allocator.shared, seed=seed),
    )
    return simulator, curriculum


def _timed_step(simulator: LearningSimulator, curriculum: Curriculum, batch_size: int) -> float:
    """Seconds of plan + observe for one step (the simulator's part untimed)."""
    start = time.perf_counter()
    plan = curriculum.plan(batch_size)
    planned = time.perf_counter()
    correct, surrogate = simulator.step(plan.prompt_ids, plan.rollouts_per_prompt, plan.advantage_weights)
    observing = time.perf_counter()
    curriculum.observe(plan, correct, surrogate_loss=surrogate)
    return (planned - start) + (time.perf_counter() - observing)


def time_controllers(
    controllers: tuple[Controller, ...],
    batch_size: int,
    num_bins: int,
    repeats: int,
    warmup: int,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Per controller: the median ms of plan + observe over `repeats` rounds (after `warmup` untimed
    ones), and the median over rounds of its time divided by the baseline's in the same round.

    A round runs one step of every controller, in an order rotated by the round, so load and cache
    effects fall on all of them alike; the per-round ratio cancels the load that drifts between rounds.
    """
    runs = [_build(controller, batch_size, num_bins, seed) for controller in controllers]
    timings = np.zeros((repeats, len(controllers)))
    for step in range(warmup + repeats):
        for offset in range(len(controllers)):
            index = (step + offset) % len(controllers)
            seconds = _timed_step(*runs[index], batch_size)
            if step >= warmup:
                timings[step - warmup, index] = seconds
    baseline = [c.name for c in controllers].index(BASELINE)
    ratios = timings / timings[:, [baseline]]
    return {
        c.name: (1e3 * float(np.median(timings[:, i])), float(np.median(ratios[:, i])))
        for i, c in enumerate(controllers)
    }


def run_benchmark(
    batch_sizes: tuple[int, ...] = (512, 4096),
    bin_counts: tuple[int, ...] = (3, 10),
    repeats: int = 200,
    warmup: int = 50,
    controllers: tuple[Controller, ...] = CONTROLLERS,
) -> list[BenchRecord]:
    """Every controller at every (M, B); `controllers` must include the uniform baseline."""
    return [
        BenchRecord(name, m, b, ms, ratio)
        for m in batch_sizes
        for b in bin_counts
        for name, (ms, ratio) in time_controllers(controllers, m, b, repeats, warmup).items()
    ]


def format_table(records: list[BenchRecord]) -> str:
    """A Markdown table, with the paper's measured seconds per step beside ours."""
    lines = [
        "| controller | M | B | ms/step (median) | ratio to uniform | paper s/step (Qwen3-4B driver) |",
        "|---|---|---|---|---|---|",
    ]
    for record in sorted(records, key=lambda r: (r.M, r.B)):
        paper = PAPER_SECONDS_PER_STEP.get(record.controller)
        paper_text = f"{paper:.3f}" if paper is not None else "-"
        lines.append(
            f"| {record.controller} | {record.M} | {record.B} | {record.ms_per_step:.3f} "
            f"| {record.ratio:.2f} | {paper_text} |"
        )
    return "\n".join(lines)


def records_as_json(records: list[BenchRecord]) -> list[dict]:
    """`{"controller", "M", "B", "ms_per_step", "ratio"}` per record."""
    return [asdict(record) for record in records]


def sim_training_rate(resolved_config: dict[str, Any]) -> float:
    """Steps per second of `train()` on a composed `policy=sim` config, run in a temporary folder."""
    run = parse_run_config(resolved_config)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        train(run, Path(folder), resolved_config, progress=False)
        return run.trainer.steps / (time.perf_counter() - start)
