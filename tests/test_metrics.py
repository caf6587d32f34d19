"""The metrics contract: step records, the per-step curriculum measures (docs/algorithm.md §8) computed once
in the core, W&B flattening, and resume truncation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conf_helpers import run_train_py
from sim_helpers import build_sim_run

from gdro.core.curriculum import BIN_SERIES, BinReport, StepPlan
from gdro.core.curriculum_metrics import (
    CURRICULUM_MEASURES,
    curriculum_measures,
    lead_lag_gap,
    mean_bin_index,
    weight_entropy,
    weighted_standard_error,
    wse_reduction,
)
from gdro.train.io.loggers import flatten
from gdro.train.io.metrics import MetricsWriter, read_metrics, step_record
from gdro.train.learner import StepOutcome

NEW_KEYS = {"bins/tokens", "bins/lead_lag_gap"} | {f"curriculum/{name}" for name in CURRICULUM_MEASURES}

# One step, 3 bins, nbar 4: qhat = (.5, .5, 0), q = (.25, .75, 0), p = (.5, .9, -), n = (2, 8, -).
SHARE = np.array([0.5, 0.5, 0.0])
WEIGHT = np.array([0.25, 0.75, 0.0])
SUCCESS = np.array([0.5, 0.9, np.nan])
ROLLOUTS = np.array([2.0, 8.0, np.nan])
ENTROPY = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
# sigma = 2 sqrt(p (1 - p)) = 1 and 0.6; bin 2 is absent and skipped.
WSE = 0.25 * 1.0 / math.sqrt(2) + 0.75 * 0.6 / math.sqrt(8)
WSE_UNIFORM = (0.25 * 1.0 + 0.75 * 0.6) / math.sqrt(4)


def test_measures_by_hand() -> None:
    assert mean_bin_index(SHARE) == 0.5  # (0 + 1) / 2
    assert mean_bin_index(WEIGHT) == 0.75  # 0.25 * 0 + 0.75 * 1
    np.testing.assert_allclose(lead_lag_gap(SHARE, WEIGHT), [-0.25, 0.25, 0.0])
    assert weight_entropy(WEIGHT) == pytest.approx(ENTROPY)
    wse, uniform = weighted_standard_error(WEIGHT, SUCCESS, ROLLOUTS, nbar=4.0)
    assert (wse, uniform) == (pytest.approx(WSE), pytest.approx(WSE_UNIFORM))
    assert wse_reduction(wse, uniform) == pytest.approx(1.0 - WSE / WSE_UNIFORM)

    measures = curriculum_measures(SHARE, WEIGHT, SUCCESS, ROLLOUTS, num_bins=3, nbar=4.0)
    assert measures.mean_bin_share == 0.5 and measures.mean_bin_weight == 0.75
    assert measures.mean_bin_gap == 0.25  # weights sit a quarter bin easier than the data
    assert measures.lead_lag_gap_l1 == 0.5
    assert measures.weight_entropy == pytest.approx(ENTROPY)
    assert measures.effective_bins == pytest.approx(math.exp(ENTROPY))
    assert measures.wse == pytest.approx(WSE) and measures.wse_uniform == pytest.approx(WSE_UNIFORM)
    assert measures.wse_reduction == pytest.approx(1.0 - WSE / WSE_UNIFORM)


def test_measures_edge_cases_by_hand() -> None:
    # All weight on one bin: H = 0 (not -0.0, which JSON would print), exp(H) = 1; no weight at all: NaN.
    assert math.copysign(1.0, weight_entropy(np.array([0.0, 1.0, 0.0]))) == 1.0
    assert weight_entropy(np.array([1 / 3, 1 / 3, 1 / 3])) == pytest.approx(math.log(3))
    assert np.isnan(weight_entropy(np.zeros(3))) and np.isnan(mean_bin_index(np.zeros(3)))
    # Rows of a [T, G] matrix are steps.
    np.testing.assert_allclose(mean_bin_index(np.array([SHARE, [0.2, 0.3, 0.5]])), [0.5, 1.3])
    # nbar rollouts everywhere is no reduction; the run-level reduction skips undefined steps.
    assert wse_reduction(*weighted_standard_error(WEIGHT, SUCCESS, np.full(3, 4.0), 4.0)) == 0.0
    assert wse_reduction(np.array([0.3, np.nan, 0.1]), np.array([0.4, 0.5, 0.4])) == pytest.approx(0.5)
    assert np.isnan(wse_reduction(0.0, 0.0))  # every bin solved or hopeless: sigma = 0


def test_measures_leave_the_excluded_group_out_of_the_bin_index_and_entropy() -> None:
    # B = 2 bins plus the excluded group: half the data is excluded, the adversary gives it no weight.
    share, weight = np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.5, 0.0])
    measures = curriculum_measures(
        share, weight, np.array([0.5, 0.5, 1.0]), np.full(3, 4.0), num_bins=2, nbar=4.0
    )
    assert measures.mean_bin_share == 0.5 and measures.mean_bin_weight == 0.5 and measures.mean_bin_gap == 0
    assert measures.weight_entropy == pytest.approx(math.log(2))
    assert measures.effective_bins == pytest.approx(2.0)
    np.testing.assert_allclose(lead_lag_gap(share, weight), [0.25, 0.25, -0.5])
    assert measures.lead_lag_gap_l1 == 1.0
    # sigma = (1, 1, 0): WSE = 0.5 / 2 + 0.5 / 2 = WSE_uniform.
    assert (measures.wse, measures.wse_uniform, measures.wse_reduction) == (0.5, 0.5, 0.0)


def test_step_record_by_hand() -> None:
    plan = StepPlan(
        prompt_ids=np.array([5, 9, 2]),
        bins=np.array([0, 2, 2]),
        rollouts_per_prompt=np.array([2, 8, 2]),
        advantage_weights=np.array([0.5, 1.25, 1.25]),
        bin_weights=np.array([0.2, 0.0, 0.8]),
    )
    outcome = StepOutcome(
        correct_per_prompt=np.array([0, 3, 2]),
        surrogate_loss=None,
        generated_tokens=120,
        tokens_per_prompt=np.array([20, 70, 30]),
        metrics={"loss/total": 0.5},
    )
    share = np.array([1 / 3, 0.0, 2 / 3])
    success = np.array([0.0, np.nan, 0.5])
    rollouts = np.array([2.0, np.nan, 5.0])
    report = BinReport(
        share=share,
        weight=plan.bin_weights,
        score=np.array([np.nan, np.nan, 0.1]),
        rollouts_per_prompt=rollouts,
        reward_mean=np.array([-1.0, np.nan, 0.0]),
        success_rate=success,
        tokens=np.array([20.0, 0.0, 100.0]),
        lead_lag_gap=plan.bin_weights - share,
        shadow_price=0.03,
        measures=curriculum_measures(share, plan.bin_weights, success, rollouts, num_bins=3, nbar=4.0),
    )
    record = step_record(7, plan, outcome, report, pass_k=8)
    assert record["step"] == 7
    assert record["rollouts/total"] == 12 and record["rollouts/prompts"] == 3
    assert record["tokens/generated"] == 120
    assert record["pass/rollout_rate"] == pytest.approx(5 / 12)
    assert record["reward/mean"] == pytest.approx(2 * 5 / 12 - 1)
    assert record["pass/any_correct"] == pytest.approx(2 / 3)
    # Only the prompt with 8 rollouts counts for pass@8: 1 - C(5, 8)/C(8, 8) = 1 (5 failures < 8).
    assert record["pass/at_8"] == 1.0
    assert record["alloc/mu"] == 0.03 and record["loss/total"] == 0.5
    assert record["bins/score"] == [None, None, 0.1]
    assert record["bins/rollouts_per_prompt"] == [2.0, None, 5.0]
    assert record["bins/tokens"] == [20.0, 0.0, 100.0]
    assert record["bins/lead_lag_gap"] == pytest.approx([0.2 - 1 / 3, 0.0, 0.8 - 2 / 3])
    # m(qhat) = 4/3, m(q) = 1.6; bins 0 and 2 have sigma 0 and 1: WSE = 0.8 / sqrt(5), uniform 0.8 / 2.
    assert record["curriculum/mean_bin_gap"] == pytest.approx(1.6 - 4 / 3)
    assert record["curriculum/lead_lag_gap_l1"] == pytest.approx(2 * (1 / 3 - 0.2))
    assert record["curriculum/wse"] == pytest.approx(0.8 / math.sqrt(5))
    assert record["curriculum/wse_uniform"] == pytest.approx(0.4)
    json.dumps(record, allow_nan=False)  # NaN never reaches the JSON file


def test_a_simulated_step_records_every_bin_series_and_measure() -> None:
    _, curriculum = build_sim_run("prompt_gdro", "rollout_gdro", seed=0, num_prompts=64)
    plan = curriculum.plan(16)
    correct = plan.rollouts_per_prompt // 2
    tokens = np.arange(16) * 10
    report = curriculum.observe(plan, correct, np.zeros(16), tokens_per_prompt=tokens)
    outcome = StepOutcome(correct, None, int(tokens.sum()), tokens_per_prompt=tokens)
    record = step_record(1, plan, outcome, report, pass_k=8)
    groups = curriculum.num_groups
    assert NEW_KEYS <= record.keys()
    for name in BIN_SERIES:
        assert len(record[f"bins/{name}"]) == groups, name
    np.testing.assert_array_equal(record["bins/tokens"], np.bincount(plan.bins, tokens, groups))
    assert sum(record["bins/tokens"]) == record["tokens/generated"]
    assert sum(record["bins/lead_lag_gap"]) == pytest.approx(0.0, abs=1e-12)
    for name in CURRICULUM_MEASURES:
        assert isinstance(record[f"curriculum/{name}"], float), name
    json.dumps(record, allow_nan=False)
    # The simulator generates no tokens: an all-null list, never zeros.
    silent = curriculum.observe(plan, correct, np.zeros(16))
    assert np.isnan(silent.tokens).all() and len(silent.tokens) == groups


def test_train_py_policy_sim_writes_the_curriculum_measures_every_step(tmp_path: Path) -> None:
    records = run_train_py(
        tmp_path,
        [
            "policy=sim",
            "sampler=prompt_gdro",
            "allocator=rollout_gdro",
            "logger=none",
            "trainer.steps=40",
            "trainer.eval_every=20",
            "trainer.plot_every=10",
        ],
    )
    assert [r["step"] for r in records] == list(range(41))
    for record in records[1:]:
        assert NEW_KEYS <= record.keys(), sorted(NEW_KEYS - record.keys())
        assert record["bins/tokens"] == [None] * 10
        assert len(record["bins/lead_lag_gap"]) == 10
        assert all(
            record[f"curriculum/{name}"] is not None for name in ("mean_bin_gap", "wse", "wse_uniform")
        )


def test_flatten_spreads_bin_lists_and_drops_nulls() -> None:
    flat = flatten(
        {
            "step": 3,
            "reward/mean": 0.2,
            "alloc/mu": None,
            "bins/share": [0.5, None, 0.5],
            "bins/tokens": [None, None, None],
            "curriculum/wse": 0.25,
            "curriculum/wse_reduction": None,
        }
    )
    assert flat == {"reward/mean": 0.2, "bins/share/0": 0.5, "bins/share/2": 0.5, "curriculum/wse": 0.25}


def test_writer_truncates_the_steps_a_resumed_run_rewrites(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "metrics.jsonl")
    assert writer.truncate_after(2) == []  # no file yet
    for step in range(5):
        writer.write({"step": step})
    assert writer.truncate_after(2) == [{"step": 0}, {"step": 1}, {"step": 2}]
    writer.write({"step": 3, "again": True})
    assert read_metrics(tmp_path / "metrics.jsonl") == [
        {"step": 0},
        {"step": 1},
        {"step": 2},
        {"step": 3, "again": True},
    ]
