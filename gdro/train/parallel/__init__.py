"""Parallel training: the world of ranks and its reductions, prompt-group sharding, the training back-ends
(torch, DeepSpeed) and the DeepSpeed ZeRO set-up."""
