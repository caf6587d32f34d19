"""Means over seeds with Student-t 95% intervals, and differences paired by seed.

For values x_1..x_n (one per seed), the interval is

    mean +- t_{(1 + c) / 2, n - 1} * s / sqrt(n),    s^2 = sum_i (x_i - mean)^2 / (n - 1),

with c the confidence (0.95). A gain over a baseline is the same interval on the per-seed differences
d_s = x_s - y_s over the seeds both have, so seed-to-seed variation shared by the two cancels.

The t quantile comes from the exact CDF for integer degrees of freedom nu (Abramowitz and Stegun
26.7.3-4), with theta = arctan(t / sqrt(nu)) and A(t | nu) = P(|T| <= t):

    nu = 1:        A = 2 theta / pi
    nu odd > 1:    A = (2 / pi) (theta + sin(theta) cos(theta) sum_{j=0}^{(nu-3)/2} a_j cos^{2j}(theta)),
                   a_0 = 1, a_j = a_{j-1} (2j) / (2j + 1)
    nu even:       A = sin(theta) sum_{j=0}^{(nu-2)/2} b_j cos^{2j}(theta),
                   b_0 = 1, b_j = b_{j-1} (2j - 1) / (2j)

A rises monotonically in theta on [0, pi/2), so the quantile is found by bisection on theta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


def student_t_central_probability(t: float, dof: int) -> float:
    """A(t | nu) = P(|T| <= t) for T ~ Student t with integer nu = dof >= 1 (module docstring); t >= 0."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    theta = math.atan(t / math.sqrt(dof))
    cos2 = math.cos(theta) ** 2
    if dof % 2 == 1:
        if dof == 1:
            return 2.0 * theta / math.pi
        term, total = 1.0, 1.0
        for j in range(1, (dof - 3) // 2 + 1):
            term *= cos2 * (2 * j) / (2 * j + 1)
            total += term
        return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for j in range(1, (dof - 2) // 2 + 1):
        term *= cos2 * (2 * j - 1) / (2 * j)
        total += term
    return math.sin(theta) * total


def student_t_quantile(probability: float, dof: int) -> float:
    """t with P(T <= t) = probability, T ~ Student t with integer dof >= 1; probability in (0, 1).

    Bisection on theta in [0, pi/2) for A(t | nu) = |2 probability - 1|, to float precision.
    """
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must lie in (0, 1), got {probability}")
    central = abs(2.0 * probability - 1.0)
    low, high = 0.0, math.pi / 2
    for _ in range(200):
        middle = 0.5 * (low + high)
        if student_t_central_probability(math.sqrt(dof) * math.tan(middle), dof) < central:
            low = middle
        else:
            high = middle
    t = math.sqrt(dof) * math.tan(0.5 * (low + high))
    return t if probability >= 0.5 else -t


@dataclass(frozen=True)
class Estimate:
    """A mean over n seeds and the half-width of its interval (NaN when n < 2; mean NaN when n = 0)."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """mean +- t_{(1+c)/2, n-1} s / sqrt(n) of `values` (one per seed); see the module docstring."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    if n == 1:
        return Estimate(float(x[0]), math.nan, 1)
    t = student_t_quantile((1.0 + confidence) / 2.0, n - 1)
    return Estimate(float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(n), n)


def paired_gain(
    values: Mapping[int, float], baseline: Mapping[int, float], confidence: float = 0.95
) -> Estimate:
    """The interval of d_s = values[s] - baseline[s] over the seeds s in both (keys are seeds)."""
    seeds = sorted(values.keys() & baseline.keys())
    return mean_interval([values[s] - baseline[s] for s in seeds], confidence)
