"""Generation rounds until a step holds M groups that pass a filter (numpy only).

A filter decides per group (prompt i: n_i rollouts, c_i correct) whether it is kept. The step then runs
rounds r = 1, 2, ...: each plans `gen_batch_size` prompts (the sampler and the allocator, as an unfiltered
step plans M), generates and rewards them, and keeps the groups that pass, until

    K_r = |kept groups in rounds 1..r| >= M        (enough: stop, train on exactly M)
    r = max_gen_batches > 0                       (exhausted: error, or train on the K_r < M kept)

and the trained batch is the first M kept groups in generation order (round by round, then batch
position): verl's DAPO recipe (`verl-recipe/dapo/dapo_ray_trainer.py`, `fit`) concatenates the kept
trajectories of its rounds and takes `batch[:traj_bsz]`, and raises once `num_gen_batches >=
max_num_gen_batches` (a non-positive value: no limit). The surplus (kept groups past the M-th) and the
rejects were generated and are counted as discarded compute. Where verl is silent we decide:
`on_exhausted: train` trains on the kept groups found so far (verl only raises), and a step that has kept
no group at all raises in both modes, as there is nothing to train on.

`RoundSelection` holds one step's rounds and nothing across steps: a checkpoint (taken between steps)
needs no state of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np


class FilterExhaustedError(RuntimeError):
    """A step reached `filter.max_gen_batches` rounds with fewer than M kept groups."""


class GroupFilter(Protocol):
    """What the round driver needs of a filter; `conf/filter/<name>.yaml` picks the implementation."""

    def keep(self, rollouts_per_prompt: np.ndarray, correct_per_prompt: np.ndarray) -> np.ndarray:
        """[m] bool: which of a round's groups (n_i rollouts, c_i correct; arrays [m]) are kept."""
        ...


@dataclass
class RoundsConfig:
    """The generation rounds every filter shares (verl's DAPO recipe: `data.gen_batch_size`,
    `algorithm.filter_groups.max_num_gen_batches`)."""

    gen_batch_size: int | None = None
    """Prompts planned and generated per round; null: M (trainer.prompts_per_step)."""
    max_gen_batches: int = 0
    """Most rounds per step; 0: no limit."""
    on_exhausted: Literal["error", "train"] = "error"
    """At max_gen_batches rounds with fewer than M kept: stop the run (error) or train on the kept (train)."""

    def round_size(self, batch_size: int) -> int:
        """Prompts per round: gen_batch_size, or M when it is null."""
        return batch_size if self.gen_batch_size is None else self.gen_batch_size

    def validate(self) -> None:
        """gen_batch_size >= 1 (or null), max_gen_batches >= 0, on_exhausted=train only with a limit, or a
        ValueError naming the key."""
        if self.gen_batch_size is not None and self.gen_batch_size < 1:
            raise ValueError(f"filter.gen_batch_size={self.gen_batch_size}: need at least 1 (or null: M)")
        if self.max_gen_batches < 0:
            raise ValueError(f"filter.max_gen_batches={self.max_gen_batches}: need >= 0 (0: no limit)")
        if self.on_exhausted == "train" and self.max_gen_batches == 0:
            raise ValueError(
                "filter.on_exhausted=train acts at filter.max_gen_batches rounds, but max_gen_batches=0 "
                "sets no limit: set filter.max_gen_batches >= 1, or leave on_exhausted=error"
            )


class RoundSelection:
    """One step's rounds: add each round's keep flags, stop when `done`, then `selection` gives the
    trained groups (module docstring).

    batch_size: M, the groups a step trains; rounds: the shared settings.
    """

    def __init__(self, batch_size: int, rounds: RoundsConfig) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size}: need at least 1")
        self.batch_size = batch_size
        self.rounds = rounds
        self.keeps: list[np.ndarray] = []

    def add(self, keep: np.ndarray) -> None:
        """Record one round's [m] keep flags (after `done` is True no round may be added)."""
        if self.done:
            raise RuntimeError("the step already has its groups: no further round")
        self.keeps.append(np.asarray(keep, dtype=bool))

    @property
    def kept(self) -> int:
        """K: groups kept over the rounds so far (before the cut to M)."""
        return int(sum(int(keep.sum()) for keep in self.keeps))

    @property
    def exhausted(self) -> bool:
        """The round limit is reached with fewer than M kept groups."""
        limit = self.rounds.max_gen_batches
        return self.kept < self.batch_size and limit > 0 and len(self.keeps) >= limit

    @property
    def done(self) -> bool:
        """No further round: M groups kept, or the limit reached."""
        return self.kept >= self.batch_size or self.exhausted

    def selection(self) -> list[np.ndarray]:
        """Per round, the batch positions trained (ascending): the first M kept groups in generation order,
        or every kept group when exhausted with `on_exhausted: train`. Raises `FilterExhaustedError` naming
        `filter.max_gen_batches` when exhausted with `on_exhausted: error`, or when no group was kept."""
        if not self.done:
            raise RuntimeError("the step needs another round before its groups are chosen")
        if self.exhausted and (self.rounds.on_exhausted == "error" or self.kept == 0):
            raise FilterExhaustedError(
                f"{len(self.keeps)} generation rounds (filter.max_gen_batches={self.rounds.max_gen_batches}) "
                f"kept {self.kept} of the {self.batch_size} groups a step trains "
                f"(trainer.prompts_per_step): raise filter.max_gen_batches (0: no limit), widen the filter, "
                + (
                    "or set filter.on_exhausted=train to train on the kept groups"
                    if self.rounds.on_exhausted == "error"
                    else "or check the data: no group passed the filter"
                )
            )
        chosen, room = [], self.batch_size
        for keep in self.keeps:
            positions = np.flatnonzero(keep)[:room]
            chosen.append(positions)
            room -= len(positions)
        return chosen
