"""Prompt groups across ranks: a partition, whole groups, balanced by expected tokens (LPT)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.train.parallel.sharding import shard_groups


def test_hand_computed_assignment() -> None:
    # costs n (p + 10): g0 60, g1 20, g2 144, g3 60, g4 80; largest first: g2 -> r0 (144), g4 -> r1 (80),
    # g0 -> r1 (140), g3 -> r1 (200, since 140 < 144), g1 -> r0 (164)
    shards = shard_groups(np.array([4, 2, 12, 2, 8]), np.array([5, 0, 2, 20, 0]), 10.0, ranks=2)
    assert [s.tolist() for s in shards] == [[1, 2], [0, 3, 4]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(1, 400)), min_size=1, max_size=64),
    st.integers(1, 8),
)
def test_a_partition_of_whole_groups_within_the_lpt_bound(groups: list[tuple[int, int]], ranks: int) -> None:
    counts = np.array([n for n, _ in groups])
    lengths = np.array([p for _, p in groups])
    shards = shard_groups(counts, lengths, 32.0, ranks)
    assert len(shards) == ranks
    assert sorted(np.concatenate(shards).tolist()) == list(range(len(groups)))
    cost = counts * (lengths + 32.0)
    loads = [cost[s].sum() for s in shards]
    # LPT: the heaviest rank exceeds the mean load by less than the largest single group
    assert max(loads) <= cost.sum() / ranks + cost.max() + 1e-9
