"""The training loop and what it drives: policies (transformers or the simulator), checkpoints, logs."""
