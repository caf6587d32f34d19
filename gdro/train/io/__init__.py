"""Training I/O: checkpoints, HF exports, the metrics.jsonl record, loggers (W&B), the progress line and
preemption signals."""
