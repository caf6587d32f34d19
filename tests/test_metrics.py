"""The metrics contract: step records, W&B flattening, and resume truncation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gdro.core.curriculum import BinReport, StepPlan
from gdro.train.loggers import flatten
from gdro.train.metrics import MetricsWriter, read_metrics, step_record
from gdro.train.policy import StepOutcome


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
        metrics={"loss/total": 0.5},
    )
    report = BinReport(
        share=np.array([1 / 3, 0.0, 2 / 3]),
        weight=plan.bin_weights,
        score=np.array([np.nan, np.nan, 0.1]),
        rollouts_per_prompt=np.array([2.0, np.nan, 5.0]),
        reward_mean=np.array([-1.0, np.nan, 0.0]),
        success_rate=np.array([0.0, np.nan, 0.5]),
        shadow_price=0.03,
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
    json.dumps(record)  # NaN never reaches the JSON file


def test_flatten_spreads_bin_lists_and_drops_nulls() -> None:
    flat = flatten({"step": 3, "reward/mean": 0.2, "alloc/mu": None, "bins/share": [0.5, None, 0.5]})
    assert flat == {"reward/mean": 0.2, "bins/share/0": 0.5, "bins/share/2": 0.5}


def test_writer_truncates_the_steps_a_resumed_run_rewrites(tmp_path: Path) -> None:
    writer = MetricsWriter(tmp_path / "metrics.jsonl")
    for step in range(5):
        writer.write({"step": step})
    writer.truncate_after(2)
    writer.write({"step": 3, "again": True})
    assert read_metrics(tmp_path / "metrics.jsonl") == [
        {"step": 0},
        {"step": 1},
        {"step": 2},
        {"step": 3, "again": True},
    ]
