"""Benchmarks: `trainer_throughput` (our `train.py` against TRL's `GRPOTrainer`, run by `make bench-trainer`),
`phase_timer` (the phase split of both trainers, by wrapping the methods that run each phase), `trainer_summary`
(the figures per torch thread count) and `trainer_report` (its JSON and Markdown); `grpo_step_throughput` (the
phases, TFLOP/s and peak memory of the GRPO step `train.py` runs, on any device, run by `scripts/gpu_check.py`);
`step_phases` (the real GRPO step with and without the on-policy shortcut, or against a config variant, side by
side, and its phase split: `make bench-step-phases`). TRL is a dev requirement only; nothing else in `gdro`
imports this package."""
