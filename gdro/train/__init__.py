"""Training: the loop (`loop`), the GRPO step (`grpo_step`), the learners it drives (`hf_learner` with its
`actor`, `sim_learner`), the evaluator, the task, and `build`; `parallel/` holds the ranks, sharding and
the training back-ends, `io/` checkpoints, exports, metrics, loggers, progress and preemption."""
