"""Per-bin batch statistics and the bin-score EMA shared by the controllers.

EMA convention (spec): S <- (1 - beta) S + beta * new, with beta the weight on the new value; a bin's
first observation initialises S. A bin never observed holds NaN.
"""

from __future__ import annotations

import numpy as np


def bin_counts(bins: np.ndarray, num_groups: int) -> np.ndarray:
    """|bin b in batch| for b = 0..G-1; [G] int."""
    return np.bincount(np.asarray(bins, dtype=np.int64), minlength=num_groups)


def bin_means(values: np.ndarray, bins: np.ndarray, num_groups: int) -> np.ndarray:
    """lbar(b) = mean of `values` over the batch prompts of bin b; NaN for bins absent from the batch; [G]."""
    counts = bin_counts(bins, num_groups)
    sums = np.bincount(np.asarray(bins, dtype=np.int64), weights=values, minlength=num_groups)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def ema_update(current: np.ndarray, new: np.ndarray, beta: float) -> np.ndarray:
    """S <- (1 - beta) S + beta new where `new` is observed; first observations initialise; NaN = unobserved."""
    observed = ~np.isnan(new)
    blended = np.where(np.isnan(current), new, (1.0 - beta) * current + beta * new)
    return np.where(observed, blended, current)


def fill_unscored(scores: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Active bins never scored take the mean score of the scored active bins (0 when none is scored);
    a new array either way."""
    unscored = active & np.isnan(scores)
    if not unscored.any():  # the usual case once every bin has been seen
        return scores.copy()
    scored = active & ~unscored
    fallback = scores[scored].sum() / scored.sum() if scored.any() else 0.0  # the mean, without its overhead
    return np.where(unscored, fallback, scores)


def mixed_softmax(logits: np.ndarray, active: np.ndarray, eta: float, gamma: float) -> np.ndarray:
    """q(b) = (1 - gamma) softmax(eta * logits)(b) + gamma / |active| over active entries, 0 elsewhere.

    Works along the last axis, so a [G, A] matrix of arm scores gives one distribution per row.
    """
    scaled = np.where(active, eta * logits, -np.inf)
    exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))  # exactly 0 where inactive
    softmax = exp / exp.sum(axis=-1, keepdims=True)
    num_active = active.sum(axis=-1, keepdims=True)
    return np.where(active, (1.0 - gamma) * softmax + gamma / num_active, 0.0)
