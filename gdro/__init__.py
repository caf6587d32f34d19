"""gdro-rl: Multi-Adversary Group-DRO for GRPO post-training (arXiv 2601.19280).

`gdro.core` holds the algorithm (numpy/torch only); `gdro.sim` a fast learning simulator for
studying the controllers without a model.
"""
