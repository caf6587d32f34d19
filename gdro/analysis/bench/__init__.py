"""Benchmarks: `trainer_throughput` (our `train.py` against TRL's `GRPOTrainer`, run by `make bench-trainer`)
and `trainer_report` (its JSON and Markdown); `grpo_step_throughput` (the phases, TFLOP/s and peak memory of the
GRPO step `train.py` runs, on any device, run by `scripts/gpu_check.py`). TRL is a dev requirement only; nothing
else in `gdro` imports this package."""
