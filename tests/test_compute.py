"""The compute counters and the informative fraction: by hand, summed over a run, continued on resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from conf_helpers import compose_config

from gdro.config import parse_run_config
from gdro.core.compute import ComputeTotals, informative_groups, signal_stats
from gdro.train.io.metrics import read_metrics
from gdro.train.loop import train


def test_signal_stats_by_hand() -> None:
    # Groups: (n, c, bin) = (4, 0, 0), (4, 2, 0), (2, 1, 1), (6, 6, 1), (1, 1, 1), (3, 1, 2); 4 groups.
    n = np.array([4, 4, 2, 6, 1, 3])
    c = np.array([0, 2, 1, 6, 1, 1])
    bins = np.array([0, 0, 1, 1, 1, 2])
    assert informative_groups(n, c).tolist() == [False, True, True, False, False, True]
    stats = signal_stats(n, c, bins, num_groups=4)
    assert stats.informative_fraction == (4 + 2 + 3) / 20
    assert stats.zero_variance_groups == 3  # all wrong, all right, and the group of one
    assert stats.bin_informative_fraction[:3].tolist() == [4 / 8, 2 / 9, 1.0]
    assert math.isnan(stats.bin_informative_fraction[3])  # no rollouts in the excluded group


def test_totals_add_up_and_a_policy_without_tokens_keeps_them_null() -> None:
    totals = ComputeTotals()
    assert totals.add(8, 100) == (8, 100)
    assert totals.add(8, 50) == (16, 150)
    assert totals.add(8, None) == (24, None)
    restored = ComputeTotals()
    restored.load_state_dict(json.loads(json.dumps(totals.state_dict())))
    assert restored == totals
    legacy = [{"step": 0}, {"step": 1, "rollouts/total": 8, "tokens/generated": 10}]
    assert ComputeTotals.from_records(legacy) == ComputeTotals(8, 10)
    current = [{"step": 1, "compute/rollouts_generated": 12, "compute/tokens_generated": None}]
    assert ComputeTotals.from_records(current) == ComputeTotals(12, None)


def _run_sim(run_dir: Path, overrides: list[str]) -> list[dict]:
    config = compose_config(["policy=sim", "logger=none", "trainer.save_every=4", *overrides])
    train(parse_run_config(config), run_dir, config, progress=False)
    return read_metrics(run_dir / "metrics.jsonl")


def _assert_totals_add_up(records: list[dict]) -> None:
    steps = records[1:]
    for index, record in enumerate(steps):
        generated = sum(r["compute/rollouts_generated"] for r in steps[: index + 1])
        assert record["compute/rollouts_generated_total"] == generated
        assert record["compute/rollouts_generated"] == record["rollouts/total"]  # no filter: all trained
        assert record["compute/gen_batches"] == 1
        assert record["compute/tokens_generated"] is None
        assert record["compute/tokens_generated_total"] is None
        assert 0.0 <= record["rollouts/informative_fraction"] <= 1.0
        assert len(record["bins/informative_fraction"]) == len(record["bins/share"])


def test_a_resumed_run_continues_the_totals_also_from_a_checkpoint_without_them(tmp_path: Path) -> None:
    straight = _run_sim(tmp_path / "straight", ["trainer.steps=12"])
    _assert_totals_add_up(straight)
    _run_sim(tmp_path / "split", ["trainer.steps=8"])
    resumed = _run_sim(tmp_path / "split", ["trainer.steps=12", "resume=latest"])
    key = "compute/rollouts_generated_total"
    assert [r.get(key) for r in resumed] == [r.get(key) for r in straight]

    # A checkpoint written before the totals were saved (and before manifests): summed from metrics.jsonl.
    _run_sim(tmp_path / "legacy", ["trainer.steps=8"])
    checkpoint = tmp_path / "legacy" / "checkpoints" / "step_000008"
    state = json.loads((checkpoint / "state.json").read_text())
    del state["compute"]
    (checkpoint / "state.json").write_text(json.dumps(state))
    (checkpoint / "manifest.json").unlink()
    legacy = _run_sim(tmp_path / "legacy", ["trainer.steps=12", "resume=latest"])
    assert [r.get(key) for r in legacy] == [r.get(key) for r in straight]
