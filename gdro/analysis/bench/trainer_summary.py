"""The figures of `make bench-trainer` per torch thread count, from every run of both trainers.

For trainer X at one thread count, over its `repeats` runs (each `warmup` untimed then `steps` timed steps):
  tokens/s  = sum of the runs' timed tokens / sum of their timed seconds (pooled), likewise steps/s;
  phase s   = sum of the runs' own seconds in that phase / timed steps: seconds per step in generate, old,
              ref, update (`phase_timer.PHASES`), and `other` = seconds per step - their sum;
  ratio     = ours' pooled tokens/s / TRL's, with the median, smallest and largest of the rounds' own ratios
              (round r: ours' run r against TRL's run r, which ran right after it under the same load) as
              its interval.
"""

from __future__ import annotations

import statistics
from typing import Any

from gdro.analysis.bench.phase_timer import PHASES
from gdro.analysis.bench.trainer_throughput import TRAINERS, TrainerThroughput


def trainer_figures(runs: list[TrainerThroughput]) -> dict[str, Any]:
    """Pooled rates, phase seconds per step and the per-run figures of one trainer's runs at one thread
    count (module docstring)."""
    seconds = sum(run.seconds for run in runs)
    steps = sum(run.timed_steps for run in runs)
    tokens = sum(sum(run.generated_tokens[run.warmup_steps :]) for run in runs)
    phases = {phase: sum(run.phase_seconds.get(phase, 0.0) for run in runs) / steps for phase in PHASES}
    phases["other"] = seconds / steps - sum(phases.values())
    timed_tokens = [t for run in runs for t in run.generated_tokens[run.warmup_steps :]]
    timed_rewards = [r for run in runs for r in run.reward_mean[run.warmup_steps :]]
    return {
        "runs": len(runs),
        "tokens_per_second": tokens / seconds,
        "steps_per_second": steps / seconds,
        "median_step_seconds": statistics.median(s for run in runs for s in run.step_seconds),
        "phase_seconds_per_step": phases,
        "tokens_per_step": sum(timed_tokens) / len(timed_tokens),
        "reward_mean": sum(timed_rewards) / len(timed_rewards),
        "optimizer_updates_per_run": [run.optimizer_updates for run in runs],
        "completions_per_step": sorted({c for run in runs for c in run.completions}),
        "tokens_per_second_per_run": [run.tokens_per_second for run in runs],
        "load_average_range": [
            min(min(run.load_average) for run in runs),
            max(max(run.load_average) for run in runs),
        ],
    }


def summarise(results: list[TrainerThroughput]) -> dict[int, dict[str, Any]]:
    """Per torch thread count: each trainer's `trainer_figures` and the ratios ours / TRL (module docstring)."""
    summary: dict[int, dict[str, Any]] = {}
    for threads in sorted({run.torch_threads for run in results}):
        by_trainer = {
            name: sorted(
                (run for run in results if run.torch_threads == threads and run.trainer == name),
                key=lambda run: run.repeat,
            )
            for name in TRAINERS
        }
        figures = {name: trainer_figures(runs) for name, runs in by_trainer.items()}
        rounds = [
            ours.tokens_per_second / trl.tokens_per_second
            for ours, trl in zip(by_trainer["ours"], by_trainer["trl"], strict=True)
        ]
        summary[threads] = {
            **figures,
            "ratio": {
                "tokens_per_second": figures["ours"]["tokens_per_second"]
                / figures["trl"]["tokens_per_second"],
                "steps_per_second": figures["ours"]["steps_per_second"] / figures["trl"]["steps_per_second"],
                "rounds": rounds,
                "rounds_median": statistics.median(rounds),
                "rounds_range": [min(rounds), max(rounds)],
            },
        }
    return summary
