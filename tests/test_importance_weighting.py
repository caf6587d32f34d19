"""`sampler.weighting` (docs/algorithm.md §3): `paper` gives bin b the loss share qhat(b) q(b), `importance` exactly q(b)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import build_sim_run

from gdro.core.difficulty import ClassifierConfig
from gdro.core.samplers import PromptGDROConfig, PromptGDROSampler
from gdro.sim.loop import simulate_step


def sampler(num_groups: int, weighting: str, max_weight: float = math.inf) -> PromptGDROSampler:
    return PromptGDROSampler(10, num_groups, PromptGDROConfig(weighting=weighting, max_weight=max_weight))


def test_importance_weights_by_hand() -> None:
    # q = (0.5, 0.5) over bins 0 and 1; the batch holds 1 prompt of bin 0 and 3 of bin 1:
    # qhat = (1/4, 3/4), w = q / qhat = (2, 2/3, 2/3, 2/3): mean 1, bin totals / M = (0.5, 0.5).
    bins = np.array([0, 1, 1, 1])
    q = np.array([0.5, 0.5])
    np.testing.assert_allclose(
        sampler(2, "importance").advantage_weights(bins, q, None), [2, 2 / 3, 2 / 3, 2 / 3]
    )
    # paper: w = q / mean q = 1 for all, so bin 0 gets 1/4 of the loss although q(0) = 1/2.
    np.testing.assert_allclose(sampler(2, "paper").advantage_weights(bins, q, None), [1, 1, 1, 1])


def test_importance_weights_leave_excluded_prompts_at_one_and_out_of_qhat() -> None:
    # Counted prompts: bins 0, 1, 1 (M' = 3); qhat = (1/3, 2/3); q = (0.6, 0.4) -> w = 1.8, 0.6, 0.6.
    bins = np.array([0, 2, 1, 1, 2])
    q = np.array([0.6, 0.4, 0.0])
    w = sampler(3, "importance").advantage_weights(bins, q, excluded=2)
    np.testing.assert_allclose(w, [1.8, 1.0, 0.6, 0.6, 1.0])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), num_groups=st.integers(1, 11), batch_size=st.integers(1, 64), excluded=st.booleans())
def test_importance_bin_totals_over_the_batch_equal_q(data, num_groups, batch_size, excluded) -> None:
    """Before the cap, sum_{i in b} w_i / M' = q(b) for every bin present (q on the present bins' simplex)."""
    groups = num_groups + int(excluded)
    excluded_group = num_groups if excluded else None
    bins = np.array(data.draw(st.lists(st.integers(0, groups - 1), min_size=batch_size, max_size=batch_size)))
    counted = bins != excluded_group
    present = np.zeros(groups, dtype=bool)
    present[bins[counted]] = True
    raw = np.array(data.draw(st.lists(st.floats(1e-3, 1.0), min_size=groups, max_size=groups)))
    q = np.where(present, raw, 0.0)
    q = q / q.sum() if q.sum() > 0 else q
    w = sampler(groups, "importance").advantage_weights(bins, q, excluded_group)
    np.testing.assert_array_equal(w[~counted], 1.0)
    if counted.any():
        totals = np.bincount(bins[counted], weights=w[counted], minlength=groups) / counted.sum()
        np.testing.assert_allclose(totals[present], q[present], rtol=1e-9, atol=1e-12)
        # The negative control: `paper` weighting gives bin b the total qhat(b) q(b) / sum_j qhat(j) q(j).
        paper = sampler(groups, "paper").advantage_weights(bins, q, excluded_group)
        share = np.bincount(bins[counted], minlength=groups) / counted.sum()
        expected = share * q / (share * q).sum()
        paper_totals = np.bincount(bins[counted], weights=paper[counted], minlength=groups) / counted.sum()
        np.testing.assert_allclose(paper_totals[present], expected[present], rtol=1e-9, atol=1e-12)


def test_importance_weights_respect_the_cap() -> None:
    bins = np.array([0] + [1] * 99)
    w = sampler(2, "importance", max_weight=15.0).advantage_weights(bins, np.array([0.5, 0.5]), None)
    assert w[0] == 15.0  # 0.5 / 0.01 = 50 before the cap
    np.testing.assert_allclose(w[1:], 0.5 / 0.99)


def test_weighting_is_rejected_in_resample_mode() -> None:
    with pytest.raises(ValueError, match="sampler.weighting='importance'.*sampler.mode=resample"):
        PromptGDROConfig(mode="resample", weighting="importance").validate()
    with pytest.raises(ValueError, match="sampler.weighting='q'"):
        PromptGDROConfig(weighting="q").validate()


@pytest.mark.parametrize("weighting", ["paper", "importance"])
def test_excluded_prompts_get_multiplier_one_and_no_adversary_weight_in_a_run(weighting: str) -> None:
    """On the simulator with exclude_extremes: every step, excluded prompts have w_i = 1 and q(excluded) = 0."""
    classifier = ClassifierConfig(exclude_extremes=True, window=4)
    simulator, curriculum = build_sim_run(
        "prompt_gdro", "rollout_gdro", seed=5, num_prompts=256, classifier=classifier,
        sampler_options={"weighting": weighting},
    )  # fmt: skip
    excluded = curriculum.classifier.excluded_group
    seen_excluded = 0
    for _ in range(60):
        plan, _, report = simulate_step(simulator, curriculum, batch_size=64)
        in_excluded = plan.bins == excluded
        seen_excluded += int(in_excluded.sum())
        np.testing.assert_array_equal(plan.advantage_weights[in_excluded], 1.0)
        assert plan.bin_weights[excluded] == 0.0
        assert report.weight[excluded] == 0.0
        if (~in_excluded).any():
            assert plan.bin_weights.sum() == pytest.approx(1.0)
            assert plan.advantage_weights[~in_excluded].mean() <= 1.0 + 1e-9  # 1 unless the cap w_max binds
    assert seen_excluded > 100  # the run did exclude prompts, so the checks above were exercised
