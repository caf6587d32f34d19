"""Knapsack-RL allocation (gdro/core/allocators/knapsack.py): the value and cost by hand, the solution
against brute-force enumeration, the exact budget and bounds always, the fallback, the classifier's
estimates, and `train.py` runs on the simulator and the tiny model."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from conf_helpers import compose_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.config import parse_run_config
from gdro.config.checking import ConfigError
from gdro.core.allocators import (
    BudgetConfig,
    KnapsackAllocator,
    KnapsackConfig,
    knapsack_allocation,
    knapsack_value,
)
from gdro.core.allocators.knapsack import rollout_cost
from gdro.core.difficulty import ClassifierConfig, DifficultyClassifier
from gdro.train.io.metrics import read_metrics
from gdro.train.loop import train

RATES = [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]


def test_value_by_hand() -> None:
    # V(n, p) = (1 - p^n - (1 - p)^n) p (1 - p)^2.
    assert knapsack_value(4, 0.5) == pytest.approx((1 - 2 / 16) * 0.5 * 0.25)  # 0.109375
    assert knapsack_value(2, 0.1) == pytest.approx((1 - 0.01 - 0.81) * 0.1 * 0.81)  # 0.01458
    assert knapsack_value(3, 0.9) == pytest.approx((1 - 0.729 - 0.001) * 0.9 * 0.01)
    np.testing.assert_array_equal(knapsack_value(np.arange(1, 9), 0.0), 0.0)
    np.testing.assert_array_equal(knapsack_value(np.arange(1, 9), 1.0), 0.0)
    assert knapsack_value(1, 0.5) == 0.0  # one rollout never carries a GRPO gradient
    # cost = ln(0.1) / ln(max(p, 1 - p)): 3.32 rollouts at p = 0.5, 21.85 at p = 0.1 or 0.9.
    np.testing.assert_allclose(
        rollout_cost(np.array([0.5, 0.1, 0.9]), 0.9), [3.3219281, 21.854345, 21.854345]
    )


def test_a_small_instance_by_hand() -> None:
    """Eight prompts, nbar 4 (32 rollouts), bounds 2..12; prompt 6 unknown (4 rollouts). The 14 spare
    rollouts go to the largest increments: p = 0.3 (p q^2 = 0.147) and 0.1 get 5 more each, 0.5 gets 4,
    0.9 (p q^2 = 0.009) none; the never-solved (0) and always-solved (1) prompts stay at n_min."""
    rates = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 0.3, np.nan, 0.0])
    known = ~np.isnan(rates)
    for fallback in (True, False):  # the cap (12 + 3 + 12 + 6 - 4 * 2 = 25 extra) is not reached
        counts = knapsack_allocation(rates, known, BudgetConfig(), KnapsackConfig(fallback=fallback))
        np.testing.assert_array_equal(counts, [2, 7, 6, 2, 2, 7, 4, 2])


def test_the_fallback_explores_the_never_solved_prompts() -> None:
    """Four prompts at p = 0.5 (cost 3 each) and two never solved, nbar 6: 36 rollouts, 24 spare above
    n_min = 2. With the fallback the p = 0.5 prompts get their cost, 3 (4 spare), and the never-solved
    prompts the other 20, evenly: 12 each, n_max. Without it, the p = 0.5 prompts take all 24 (8 each)."""
    rates = np.array([0.5, 0.0, 0.5, 0.5, 0.0, 0.5])
    known = np.ones(6, dtype=bool)
    budget = BudgetConfig(nbar=6)
    np.testing.assert_array_equal(
        knapsack_allocation(rates, known, budget, KnapsackConfig()), [3, 12, 3, 3, 12, 3]
    )
    np.testing.assert_array_equal(
        knapsack_allocation(rates, known, budget, KnapsackConfig(fallback=False)), [8, 2, 8, 8, 2, 8]
    )
    # nbar 9 (54, 42 spare): cap 4, never-solved prompts full at 20, the p = 0.5 prompts take 18 more
    # (4 each, the last 2 to the earlier positions).
    np.testing.assert_array_equal(
        knapsack_allocation(rates, known, BudgetConfig(nbar=9), KnapsackConfig()), [8, 12, 8, 7, 12, 7]
    )


def brute_force(rates, known, budget: BudgetConfig) -> float:
    """max sum_i V(n_i, p_i) over every vector within the ranges that spends exactly nbar M."""
    total = budget.total(len(rates))
    ranges = [
        range(budget.n_min, budget.n_max + 1)
        if is_known
        else range(math.floor(budget.nbar), math.ceil(budget.nbar) + 1)
        for is_known in known
    ]
    best = -math.inf
    for counts in itertools.product(*ranges):
        if sum(counts) == total:
            best = max(best, objective(rates, known, np.array(counts)))
    return best


def objective(rates, known, counts) -> float:
    return float(np.where(known, knapsack_value(counts, np.where(known, rates, 0.5)), 0.0).sum())


@st.composite
def instances(draw, max_prompts: int = 5, max_width: int = 4):
    batch_size = draw(st.integers(1, max_prompts))
    n_min = draw(st.integers(1, 3))
    n_max = n_min + draw(st.integers(0, max_width))
    total = draw(st.integers(n_min * batch_size, n_max * batch_size))
    rates = np.array(draw(st.lists(st.sampled_from(RATES), min_size=batch_size, max_size=batch_size)))
    known = np.array(draw(st.lists(st.booleans(), min_size=batch_size, max_size=batch_size)))
    return rates, known, BudgetConfig(nbar=total / batch_size, n_min=n_min, n_max=n_max)


@settings(max_examples=150, deadline=None)
@given(case=instances(), fallback=st.booleans())
def test_the_solution_matches_brute_force(case, fallback) -> None:
    """Optimal against enumeration without the fallback, and with it whenever no known prompt has p = 0
    (the fallback only moves rollouts to such prompts)."""
    rates, known, budget = case
    config = KnapsackConfig(fallback=fallback)
    if fallback and np.any(known & (rates == 0.0)):
        config = KnapsackConfig(fallback=False)
    counts = knapsack_allocation(rates, known, budget, config)
    assert objective(rates, known, counts) == pytest.approx(brute_force(rates, known, budget), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(case=instances(max_prompts=6, max_width=5))
def test_with_the_fallback_the_effective_prompts_split_their_share_optimally(case) -> None:
    """The effective prompts (0 < p < 1) get min(spare, cap) extra rollouts plus what the never-solved
    prompts cannot take, and spread them optimally among themselves (brute force over them alone); the
    never-solved prompts' counts differ by at most one."""
    rates, known, budget = case
    counts = knapsack_allocation(rates, known, budget, KnapsackConfig())
    effective = known & (rates > 0) & (rates < 1)
    never = known & (rates == 0)
    lowest = np.where(known, budget.n_min, math.floor(budget.nbar))
    spare = budget.total(len(rates)) - int(lowest.sum())
    cost = np.clip(np.floor(rollout_cost(rates[effective], 0.9)), budget.n_min, budget.n_max)
    cap = int(cost.sum()) - budget.n_min * int(effective.sum())
    room = (budget.n_max - budget.n_min) * int(never.sum())
    extra = min(spare, cap) + max(0, spare - cap - room)
    extra = min(extra, (budget.n_max - budget.n_min) * int(effective.sum()))
    assert int(counts[effective].sum()) == budget.n_min * int(effective.sum()) + extra
    sub = BudgetConfig(
        nbar=budget.n_min + extra / max(effective.sum(), 1), n_min=budget.n_min, n_max=budget.n_max
    )
    if effective.any():
        best = brute_force(rates[effective], known[effective], sub)
        assert objective(rates[effective], known[effective], counts[effective]) == pytest.approx(
            best, abs=1e-12
        )
    if never.any():
        assert np.ptp(counts[never]) <= 1


@settings(max_examples=100, deadline=None)
@given(data=st.data(), batch_size=st.integers(1, 300), n_min=st.integers(1, 4), fallback=st.booleans())
def test_exact_budget_and_bounds_always(data, batch_size, n_min, fallback) -> None:
    n_max = data.draw(st.integers(n_min, 40))
    total = data.draw(st.integers(n_min * batch_size, n_max * batch_size))
    budget = BudgetConfig(nbar=total / batch_size, n_min=n_min, n_max=n_max)
    rates = np.array(data.draw(st.lists(st.floats(0, 1), min_size=batch_size, max_size=batch_size)))
    rates[data.draw(st.lists(st.integers(0, batch_size - 1)))] = 0.0
    known = np.array(data.draw(st.lists(st.booleans(), min_size=batch_size, max_size=batch_size)))
    counts = knapsack_allocation(rates, known, budget, KnapsackConfig(fallback=fallback))
    assert counts.dtype == np.int64 and counts.shape == (batch_size,)
    assert int(counts.sum()) == total
    assert np.all(counts >= n_min) and np.all(counts <= n_max)
    assert np.all(counts[~known] >= math.floor(budget.nbar)) and np.all(
        counts[~known] <= math.ceil(budget.nbar)
    )


def test_infeasible_budgets_and_missing_history_are_refused() -> None:
    classifier = DifficultyClassifier(4)
    with pytest.raises(ValueError, match=r"allocator\.nbar=13\.0"):
        KnapsackAllocator(10, BudgetConfig(nbar=13.0))
    with pytest.raises(ValueError, match=r"allocator\.nbar \* trainer\.prompts_per_step"):
        KnapsackAllocator(10, BudgetConfig(nbar=4.5)).allocate(
            np.zeros(3, dtype=np.int64), np.arange(3), classifier
        )
    with pytest.raises(ValueError, match="allocator=knapsack needs the batch's prompt ids"):
        KnapsackAllocator(10).allocate(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"allocator\.confidence=1\.0"):
        KnapsackAllocator(10, config=KnapsackConfig(confidence=1.0))
    config = compose_config(["method=knapsack_allocation", "policy=sim", "allocator.min_rollouts=1201"])
    with pytest.raises(
        ConfigError, match=r"allocator\.min_rollouts=1201 .* classifier\.window \* allocator\.n_max"
    ):
        parse_run_config(config)


def test_estimates_come_from_the_classifier_after_min_rollouts() -> None:
    """Prompts 0-2 recorded with 8, 8 and 4 rollouts: 0 (p = 0.5) and 1 (p = 0) are known at min_rollouts
    8; prompt 2 (4 rollouts) and prompt 3 (unseen) are not, and get nbar = 4."""
    classifier = DifficultyClassifier(4, ClassifierConfig(window=4))
    classifier.record(np.array([0, 1, 2]), np.array([8, 8, 4]), np.array([4, 0, 2]))
    allocator = KnapsackAllocator(10, BudgetConfig(nbar=4))
    counts = allocator.allocate(classifier.classify(np.arange(4)), np.arange(4), classifier)
    # 16 rollouts: 4 + 4 for the unknown prompts, n_min 2 each for 0 and 1, 4 spare: 1 to prompt 0 (cost
    # floor(3.32) = 3), then 3 to the never-solved prompt 1.
    np.testing.assert_array_equal(counts, [3, 5, 4, 4])
    loose = KnapsackAllocator(10, BudgetConfig(nbar=4), KnapsackConfig(min_rollouts=4))
    # Prompt 2 (p = 0.5, 4 rollouts) now known too: 16 - 3 * 2 - 4 = 6 spare; cap 1 + 1; 0 and 2 get
    # one each, prompt 1 the other 4.
    np.testing.assert_array_equal(
        loose.allocate(classifier.classify(np.arange(4)), np.arange(4), classifier), [3, 6, 3, 4]
    )
    assert allocator.state_dict() == {} and allocator.shadow_price is None


def test_train_py_knapsack_allocation_on_the_simulator(tmp_path: Path) -> None:
    """method=knapsack_allocation, 60 steps over 256 prompts: the first steps (no prompt known) spend nbar
    each, then the counts spread, every step at exactly nbar * M within the bounds."""
    config = compose_config(
        [
            "policy=sim",
            "logger=none",
            "method=knapsack_allocation",
            "trainer.steps=60",
            "policy.num_prompts=256",
        ]
    )
    train(parse_run_config(config), tmp_path, config, progress=False)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(61))
    assert all(r["rollouts/total"] == 4 * 64 for r in records[1:])
    assert records[1]["bins/rollouts_per_prompt"][0] == 4.0  # all unknown: nbar
    spread = [n for r in records[20:] for n in r["bins/rollouts_per_prompt"] if n is not None and n != 4.0]
    assert spread, "the allocation never left nbar"


def test_train_py_knapsack_allocation_with_the_tiny_model(tmp_path: Path, cache_dir: Path) -> None:
    config = compose_config(
        [
            "debug=quick",
            f"cache_dir={cache_dir}",
            "method=knapsack_allocation",
            "dataset.num_train=8",
            "allocator.min_rollouts=1",
            "trainer.steps=3",
        ]
    )
    train(parse_run_config(config), tmp_path, config, progress=False)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    for record in records[1:]:
        assert record["rollouts/total"] == 4 * 8 and math.isfinite(record["loss/total"])
        assert record["alloc/mu"] is None
