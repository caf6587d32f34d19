"""Benchmark metrics of docs/algorithm.md §6 from per-sample correctness: per benchmark, AIME, pooled.

Input: for each benchmark, a bool array [P, n] (prompt p, sample j correct). With c_p correct
samples of prompt p:
- mean@n = mean over p and j of correct[p, j];
- pass@n = fraction of prompts with c_p > 0 (any of n);
- pass@k for k < n = mean over p of the unbiased estimator 1 - C(n - c_p, k) / C(n, k)
  (`gdro.core.pass_at_k`, which pools all three; at k = n it equals the any-of-n pass@n).
Keys: <prefix>/<benchmark>/mean@n, .../pass@n, .../pass@k; <prefix>/aime/<metric> = the mean of the
aime24 and aime25 values (AIME = mean of 2024 and 2025) when both are present; <prefix>/mean@n,
<prefix>/pass@n, <prefix>/pass@k pooled over every prompt of every benchmark (each prompt weighs
the same, so larger benchmarks weigh more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gdro.core.pass_at_k import pass_metrics

DERIVED_BENCHMARKS = {"aime": ("aime24", "aime25")}
"""Reported as the mean of their members' metrics."""


def benchmark_metrics(
    correct: Mapping[str, np.ndarray], pass_ks: Sequence[int] = (), prefix: str = "eval"
) -> dict[str, float]:
    """The metrics of the module docstring. correct[name]: bool [P, n], P >= 1, the same n for all.

    pass_ks: extra k < n to report with the unbiased estimator (n itself is always reported).
    """
    matrices = {name: np.asarray(matrix, dtype=bool) for name, matrix in correct.items()}
    if not matrices:
        raise ValueError("no benchmarks given")
    for name, matrix in matrices.items():
        if matrix.ndim != 2 or matrix.shape[0] == 0:
            raise ValueError(
                f"benchmark {name!r}: expected a [prompts >= 1, samples] array, got {matrix.shape}"
            )
    n = next(iter(matrices.values())).shape[1]
    if any(matrix.shape[1] != n for matrix in matrices.values()):
        raise ValueError("every benchmark needs the same number of samples per prompt")
    ks = sorted({k for k in pass_ks if k != n})
    if any(k < 1 or k > n for k in ks):
        raise ValueError(f"pass_ks must lie in [1, {n}], got {list(pass_ks)}")

    counts = {name: matrix.sum(axis=1) for name, matrix in matrices.items()}
    metrics: dict[str, float] = {}
    for name, count in counts.items():
        metrics.update(_count_metrics(count, n, ks, f"{prefix}/{name}"))

    for derived, members in DERIVED_BENCHMARKS.items():
        if all(member in counts for member in members):
            for key in _count_metrics(counts[members[0]], n, ks, ""):
                values = [metrics[f"{prefix}/{member}{key}"] for member in members]
                metrics[f"{prefix}/{derived}{key}"] = float(np.mean(values))

    metrics.update(_count_metrics(np.concatenate(list(counts.values())), n, ks, prefix))
    return metrics


def _count_metrics(counts: np.ndarray, n: int, ks: Sequence[int], key_prefix: str) -> dict[str, float]:
    """`pass_metrics` of correct counts [P] out of n, keyed under `key_prefix`."""
    return {f"{key_prefix}/{key}": value for key, value in pass_metrics(counts, n, ks).items()}
