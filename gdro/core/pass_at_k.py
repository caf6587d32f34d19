"""pass@k and mean@k from correct counts (docs/algorithm.md §2, §6): the unbiased pass@k estimator, and the
one function every evaluation pools its metrics with.

The training record's `pass/at_k` (`gdro.train.io.metrics`), the embedded task's per-level evaluation
(`gdro.train.evaluator`) and the benchmarks' (`gdro.data.benchmarks.metrics`) all read them; numpy only,
so the simulator's runs need neither transformers nor the benchmark loaders.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(num_samples: int | np.ndarray, num_correct: int | np.ndarray, k: int) -> float | np.ndarray:
    """Unbiased pass@k estimate from n samples of which c are correct: 1 - C(n - c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k / i), which avoids huge binomials; it is 1.0 when
    n - c < k (every draw of k contains a correct sample). n and c broadcast against each other.

    Args:
        num_samples: n, int or integer array, n >= 1.
        num_correct: c, int or integer array, 0 <= c <= n.
        k: draws per estimate, 1 <= k <= n everywhere.

    Returns:
        A float for scalar inputs, else a float64 array of the broadcast shape.

    Raises:
        ValueError: if k > n anywhere, k < 1, or c is outside [0, n].
        TypeError: if n or c is not of an integer dtype.
    """
    n, c = np.broadcast_arrays(np.asarray(num_samples), np.asarray(num_correct))
    if not (np.issubdtype(n.dtype, np.integer) and np.issubdtype(c.dtype, np.integer)):
        raise TypeError("num_samples and num_correct must be integers")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.any(k > n):
        raise ValueError(f"k = {k} exceeds the number of samples (min n = {n.min()})")
    if np.any(c < 0) or np.any(c > n):
        raise ValueError("num_correct must lie in [0, num_samples]")
    # i runs over 1..max(n); the mask keeps n - c + 1 <= i <= n for each entry.
    i = np.arange(1, int(n.max()) + 1 if n.size else 1, dtype=np.float64)
    in_product = (i > (n - c)[..., None]) & (i <= n[..., None])
    factors = np.where(in_product, 1.0 - k / i, 1.0)
    estimate = np.where(n - c < k, 1.0, 1.0 - factors.prod(axis=-1))
    return float(estimate) if estimate.ndim == 0 else estimate


def pass_metrics(counts: np.ndarray, samples: int, ks: Sequence[int] = ()) -> dict[str, float]:
    """Pooled over prompts, from correct counts c_p [P] of n = `samples` each:
    mean@n = mean_p c_p / n; pass@n = mean_p [c_p > 0] (any of n); pass@k = mean_p of the unbiased
    estimate (`pass_at_k`) for each k in `ks`. Keys "mean@n", "pass@n", "pass@k"."""
    metrics = {
        f"mean@{samples}": float(np.mean(counts / samples)),
        f"pass@{samples}": float(np.mean(counts > 0)),
    }
    for k in ks:
        metrics[f"pass@{k}"] = float(np.mean(pass_at_k(samples, counts.astype(np.int64), k)))
    return metrics
