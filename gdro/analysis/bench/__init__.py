"""Benchmarks against other trainers: `trainer_throughput` (our `train.py` against TRL's `GRPOTrainer`, run by
`make bench-trainer`) and `trainer_report` (its JSON and Markdown). TRL is a dev requirement only; nothing
else in `gdro` imports this package."""
