"""The compute a run spends and how much of it carries signal (numpy only).

Per step, from the groups of the trained batch (prompt i: n_i rollouts, c_i of them correct):

    informative group      0 < c_i < n_i (its rewards are not all equal: the only groups whose GRPO
                           advantages are not all 0; a group of one rollout is never informative)
    informative fraction   sum_{i informative} n_i / sum_i n_i, pooled and per bin (NaN for a bin
                           without rollouts)
    zero-variance groups   |{i : c_i = 0 or c_i = n_i}|

`ComputeTotals` sums what was generated (trained or discarded) over a run; its state goes in checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def informative_groups(rollouts_per_prompt: np.ndarray, correct_per_prompt: np.ndarray) -> np.ndarray:
    """[M] bool: 0 < c_i < n_i, the group's rewards are not all equal."""
    correct = np.asarray(correct_per_prompt)
    return (correct > 0) & (correct < np.asarray(rollouts_per_prompt))


@dataclass
class SignalStats:
    """informative_fraction: pooled share of rollouts in informative groups (NaN without rollouts);
    bin_informative_fraction: [G] the same per group (NaN where a group has no rollouts);
    zero_variance_groups: groups whose rewards are all equal."""

    informative_fraction: float
    bin_informative_fraction: np.ndarray
    zero_variance_groups: int


def signal_stats(
    rollouts_per_prompt: np.ndarray, correct_per_prompt: np.ndarray, bins: np.ndarray, num_groups: int
) -> SignalStats:
    """The step's `SignalStats` from its [M] n_i, c_i and group index (bins in [0, num_groups))."""
    rollouts = np.asarray(rollouts_per_prompt, dtype=np.float64)
    informative = informative_groups(rollouts, correct_per_prompt)
    kept = np.where(informative, rollouts, 0.0)
    per_group = np.bincount(bins, weights=rollouts, minlength=num_groups)
    per_group_kept = np.bincount(bins, weights=kept, minlength=num_groups)
    total = rollouts.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        by_bin = np.where(per_group > 0, per_group_kept / np.maximum(per_group, 1.0), np.nan)
    return SignalStats(
        informative_fraction=float(kept.sum() / total) if total > 0 else float("nan"),
        bin_informative_fraction=by_bin,
        zero_variance_groups=int((~informative).sum()),
    )


@dataclass
class ComputeTotals:
    """Rollouts and completion tokens generated since the run began (tokens None: a policy without
    tokens, the simulator). `add` takes one step's counts and returns the totals after it."""

    rollouts: int = 0
    tokens: int | None = 0

    def add(self, rollouts: int, tokens: int | None) -> tuple[int, int | None]:
        """Add one step's generated rollouts and tokens (None: not counted, the total becomes None)."""
        self.rollouts += int(rollouts)
        self.tokens = None if tokens is None or self.tokens is None else self.tokens + int(tokens)
        return self.rollouts, self.tokens

    def state_dict(self) -> dict[str, Any]:
        """JSON state for checkpoints."""
        return {"rollouts": self.rollouts, "tokens": self.tokens}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the totals a checkpoint saved."""
        self.rollouts = int(state["rollouts"])
        self.tokens = None if state["tokens"] is None else int(state["tokens"])

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> ComputeTotals:
        """The totals of the step records kept up to a checkpoint (step >= 1): each step's
        `compute/rollouts_generated` and `compute/tokens_generated`, or, in records written before
        these keys existed (no filter then: every generated rollout was trained), `rollouts/total` and
        `tokens/generated` (tokens None when a record has none or the policy is the simulator)."""
        totals = cls()
        for record in records:
            if record["step"] < 1:
                continue
            if "compute/rollouts_generated" in record:
                totals.add(record["compute/rollouts_generated"], record["compute/tokens_generated"])
            else:
                totals.add(record["rollouts/total"], record.get("tokens/generated"))
        return totals
