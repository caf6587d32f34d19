"""Hand-computed values and properties for `gdro.core.pass_at_k` (docs/algorithm.md §2, §6): the unbiased
estimator, and the pooled metrics the evaluator and the benchmarks share."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.pass_at_k import pass_at_k, pass_metrics


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2) = 0.5
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2) = 0.7
        (8, 1, 1, 1 / 8),  # pass@1 = c/n
        (8, 0, 4, 0.0),
        (8, 2, 8, 1.0),  # n - c = 6 < k = 8: every draw holds a correct sample
        (8, 5, 4, 1.0),  # n - c = 3 < 4
        (10, 3, 4, 1 - 35 / 210),  # 1 - C(7,4)/C(10,4) = 5/6
    ],
)
def test_pass_at_k_hand_values(n: int, c: int, k: int, expected: float) -> None:
    value = pass_at_k(n, c, k)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_pass_at_k_matches_math_comb_on_a_grid() -> None:
    for k in range(1, 21):
        n = np.array([n for n in range(k, 21) for _ in range(n + 1)])
        c = np.array([c for n in range(k, 21) for c in range(n + 1)])
        expected = np.array(
            [1 - math.comb(ni - ci, k) / math.comb(ni, k) for ni, ci in zip(n, c, strict=True)]
        )
        values = pass_at_k(n, c, k)
        assert values.shape == n.shape
        np.testing.assert_allclose(values, expected, rtol=1e-10, atol=1e-12)


def test_pass_at_k_rejects_k_above_n() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k(np.array([8, 8, 3]), np.array([1, 2, 0]), 4)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 2)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_pass_at_k_is_monotone_in_c_and_k(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 40))
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    value = pass_at_k(n, c, k)
    assert 0.0 <= value <= 1.0
    if c < n:
        assert pass_at_k(n, c + 1, k) >= value - 1e-12
    if k < n:
        assert pass_at_k(n, c, k + 1) >= value - 1e-12


def test_pass_metrics_pools_over_prompts() -> None:
    """Counts 0, 1, 4 of 4: mean@4 = 5/12, pass@4 = 2/3, pass@2 = (0 + 1/2 + 1) / 3."""
    metrics = pass_metrics(np.array([0, 1, 4]), 4, ks=(2,))
    assert metrics == pytest.approx({"mean@4": 5 / 12, "pass@4": 2 / 3, "pass@2": 0.5})
    assert list(metrics) == ["mean@4", "pass@4", "pass@2"]
