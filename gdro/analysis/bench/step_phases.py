"""Step time of `grpo_step` with the on-policy shortcut (the first update takes pi_old from its own forward)
against without it, or (`against`) of the run config against the same with more overrides (both with the
shortcut), side by side in one process, and where each step's time goes.

Two learners are built alike from one run config (`train.py OVERRIDES`); round r runs step r on both, in
alternating order (A B, then B A, ...) so that the machine's load falls on both alike. Both run the same
plans (prompts drawn from the run's seed, nbar rollouts each, weights 1) from the same global RNG seed, so
they generate the same tokens and stay bitwise equal (tests/test_on_policy_shortcut.py; a variant that changes
numerics, such as trainer.compile_forward, drifts apart in the last bits, and its rollouts with it). The phases are
timed by wrapping the learner's calls: generate (`engine.generate`), old and ref (`actor.logprobs` of the
policy and of the reference), update (`actor.update`, the PPO updates); the rest of the step (reward,
advantages, weight sync) is `step - sum of phases`. `cpu` is the step's process CPU time (user + system),
which other processes on a shared machine move less than the wall clock at one torch thread. It sits with the
benchmarks: nothing in training imports it.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gdro.analysis.results.sweep import compose_run_config
from gdro.config import parse_run_config
from gdro.core.curriculum import StepPlan
from gdro.train.build import build_learner
from gdro.train.grpo_step import grpo_step

PHASES = ("generate", "old", "ref", "update")


def _timed(
    call: Callable[..., Any], seconds: dict[str, float], phase: Callable[..., str]
) -> Callable[..., Any]:
    """`call`, adding its wall time to seconds[phase(**kwargs)]."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            seconds[phase(**kwargs)] += time.perf_counter() - start

    return wrapper


def measure_step_phases(
    overrides: Sequence[str], rounds: int, warmup: int = 1, against: Sequence[str] = ()
) -> dict[str, Any]:
    """Median seconds per step and per phase, with the shortcut ("on") and without ("off"), over `rounds`
    interleaved steps after `warmup` untimed ones; the ratio off / on of the median steps, and the median
    over rounds of each round's own ratio (the two steps of a round run back to back, under the same load).
    With `against`, "off" is the config with `against` added (the shortcut on in both)."""
    config = parse_run_config(compose_run_config(overrides))
    other = parse_run_config(compose_run_config([*overrides, *against])) if against else config
    learners = {True: build_learner(config), False: build_learner(other)}
    seconds: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    current: dict[bool, dict[str, float]] = {}
    for on, learner in learners.items():
        current[on] = defaultdict(float)
        learner.engine.generate = _timed(learner.engine.generate, current[on], lambda **_: "generate")
        learner.actor.logprobs = _timed(
            learner.actor.logprobs, current[on], lambda model=None, **_: "old" if model is None else "ref"
        )
        learner.actor.update = _timed(learner.actor.update, current[on], lambda **_: "update")
    draw = np.random.default_rng(config.seed)
    settings = learners[True].settings
    prompts, nbar = learners[True].task.num_prompts, config.budget.nbar
    for step in range(warmup + rounds):
        m = settings.prompts_per_step
        plan = StepPlan(
            prompt_ids=draw.choice(prompts, size=m, replace=False),
            bins=np.zeros(m, dtype=np.int64),
            rollouts_per_prompt=np.full(m, nbar),
            advantage_weights=np.ones(m),
            bin_weights=np.ones(1),
        )
        for on in (True, False) if step % 2 == 0 else (False, True):
            current[on].clear()
            torch.manual_seed(config.seed + step)
            start, cpu = time.perf_counter(), time.process_time()
            grpo_step(learners[on], plan, on_policy_shortcut=on or bool(against))
            if step >= warmup:
                seconds[on].append(
                    {"step": time.perf_counter() - start, "cpu": time.process_time() - cpu, **current[on]}
                )
    for learner in learners.values():
        learner.close()
    medians = {
        "on" if on else "off": {
            key: statistics.median(row.get(key, 0.0) for row in rows) for key in ("step", "cpu", *PHASES)
        }
        for on, rows in seconds.items()
    }
    paired = [off["step"] / on["step"] for on, off in zip(seconds[True], seconds[False], strict=True)]
    paired_cpu = [off["cpu"] / on["cpu"] for on, off in zip(seconds[True], seconds[False], strict=True)]
    return {
        "overrides": list(overrides),
        "against": list(against),
        "rounds": rounds,
        "torch_threads": torch.get_num_threads(),
        "median_seconds": medians,
        "step_ratio_off_over_on": medians["off"]["step"] / medians["on"]["step"],
        "paired_step_ratio_median": statistics.median(paired),
        "paired_cpu_ratio_median": statistics.median(paired_cpu),
    }
