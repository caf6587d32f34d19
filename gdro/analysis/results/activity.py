"""What a run's adversaries did, from its step records (the "What the adversaries did" table)."""

from __future__ import annotations

import math
from typing import Any

ACTIVITY = ("weight_max", "bin_rollouts_min", "bin_rollouts_max", "surrogate_abs")
"""`adversary_activity` keys: the largest advantage multiplier w_i of any step (1: no reweighting); the
smallest and the largest per-bin mean n_i of any step (nbar under a fixed allocator); the mean over steps
of the batch's mean |l(x_i)|, the paper presets' surrogate signal (0 on an on-policy mini-batch)."""


def adversary_activity(trained: list[dict[str, Any]]) -> dict[str, float]:
    """The `ACTIVITY` statistics of a run's step records (steps >= 1); NaN where a run logged no such key."""
    weights = [float(r["advantage/weight_max"]) for r in trained if r.get("advantage/weight_max") is not None]
    per_bin = [float(n) for r in trained for n in r.get("bins/rollouts_per_prompt") or () if n is not None]
    signal = [
        float(r["signal/surrogate_abs_mean"])
        for r in trained
        if r.get("signal/surrogate_abs_mean") is not None
    ]
    return {
        "weight_max": max(weights, default=math.nan),
        "bin_rollouts_min": min(per_bin, default=math.nan),
        "bin_rollouts_max": max(per_bin, default=math.nan),
        "surrogate_abs": sum(signal) / len(signal) if signal else math.nan,
    }
