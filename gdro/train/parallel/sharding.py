"""Prompt groups across data-parallel ranks, balanced by expected tokens; never a group split.

Group i (n_i rollouts of a prompt of p_i tokens) costs about c_i = n_i (p_i + E) tokens to generate
and train on, E the expected completion length (max_new_tokens / 2 before anything is known). Groups
are assigned greedily, largest first, each to the rank with the least cost so far (LPT scheduling:
the heaviest rank carries at most 4/3 of the optimum), ties to the lower rank, so every rank computes
the same assignment from the same plan without communicating.
"""

from __future__ import annotations

import numpy as np

from gdro.train.parallel.world import World


def shard_groups(
    rollouts_per_prompt: np.ndarray, prompt_lengths: np.ndarray, expected_completion: float, ranks: int
) -> list[np.ndarray]:
    """For each rank, the sorted batch positions of the groups it owns (a group with n_i = 0 costs 0)."""
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    counts = np.asarray(rollouts_per_prompt, dtype=np.float64)
    cost = counts * (np.asarray(prompt_lengths, dtype=np.float64) + expected_completion)
    load = np.zeros(ranks)
    owner = np.empty(len(cost), dtype=np.int64)
    for group in np.argsort(-cost, kind="stable"):
        rank = int(np.argmin(load))
        owner[group] = rank
        load[rank] += cost[group]
    return [np.flatnonzero(owner == rank) for rank in range(ranks)]


def rank_groups(
    rollouts_per_prompt: np.ndarray, prompt_lengths: np.ndarray, expected_completion: float, world: World
) -> np.ndarray:
    """The batch positions of the prompt groups this rank generates and trains on: all of them in one
    process, else its `shard_groups` share."""
    if not world.distributed:
        return np.arange(len(rollouts_per_prompt))
    return shard_groups(rollouts_per_prompt, prompt_lengths, expected_completion, world.size)[world.rank]
