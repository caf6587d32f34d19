"""Equal generated compute in the results: compact run records (thinned, exact totals, restored as a
finished run folder) and the equal-compute tables on synthetic runs with hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conf_helpers import compose_config

from gdro.analysis.results import equal_compute
from gdro.analysis.results.equal_compute import (
    equal_compute_table,
    normalized_auc,
    spend_table,
    summarize_compute,
)
from gdro.analysis.results.methods import GRPO, METHOD_NAMES
from gdro.analysis.results.records import (
    RESTORED,
    export_run,
    read_record,
    record_path,
    restore_run_folder,
    thin,
)
from gdro.analysis.results.report import load_results
from gdro.analysis.results.runs import group_by_method, load_result
from gdro.analysis.results.stats import mean_interval, paired_gain
from gdro.analysis.results.table import summarize
from gdro.config import parse_run_config
from gdro.train.io.run_folder import is_finished
from gdro.train.loop import train

BUDGET = 5120  # 20 steps of GRPO's 256 rollouts (M = 64, nbar = 4)
GRPO_Y = [(0.5, 0.6), (0.6, 0.7), (0.55, 0.75)]  # per seed: (y at half the budget, y at the budget)
OTHER_Y = [(0.6, 0.7), (0.6, 0.8), (0.7, 0.9)]
OTHER_PER_STEP = 384  # a filter's 1.5 rounds a step: it reaches 2560 at step 7, the budget at step 14


def write_run(run_dir: Path, overrides: list[str], seed: int, per_step: int, ys: tuple) -> dict:
    """A finished budgeted run: `per_step` rollouts generated a step (256 trained, 1 + (per_step - 256) /
    256 rounds), informative fraction 0.25 (seed + 1), 10 tokens a step; evals at 0 (y 0.3), at the first
    step past half the budget and at the budget."""
    config = compose_config(
        [
            "policy=sim",
            "trainer.steps=20",
            f"trainer.budget_rollouts={BUDGET}",
            "trainer.eval_every_budget=0.5",
        ]
        + [f"seed={seed}", *overrides]
    )
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    records, total, step = [{"step": 0, "eval/pass@8": 0.3, "compute/budget_fraction": 0.0}], 0, 0
    while total < BUDGET:
        step += 1
        before, total = total, total + per_step
        record = {
            "step": step,
            "rollouts/total": 256,
            "tokens/generated": 0,
            "compute/rollouts_generated": per_step,
            "compute/rollouts_generated_total": total,
            "compute/tokens_generated": 10,
            "compute/gen_batches": per_step / 256,
            "rollouts/informative_fraction": 0.25 * (seed + 1),
            "time/step_seconds": 0.5,
        }
        if before < BUDGET / 2 <= total:
            record.update({"eval/pass@8": ys[0], "compute/budget_fraction": 0.5})
        if total >= BUDGET:
            record.update({"eval/pass@8": ys[1], "compute/budget_fraction": 1.0})
        records.append(record)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for seed, ys in enumerate(GRPO_Y):
        write_run(root / "grpo" / str(seed), [], seed, 256, ys)
    for seed, ys in enumerate(OTHER_Y):
        write_run(root / "other" / str(seed), ["sampler=prompt_gdro"], seed, OTHER_PER_STEP, ys)
    return root


def test_auc_by_hand() -> None:
    x, y = [0.0, 2560.0, 5120.0], [0.3, 0.5, 0.6]
    assert normalized_auc(*map(_array, (x, y)), 5120) == pytest.approx((0.3 + 2 * 0.5 + 0.6) / 4)
    # Past the budget: cut at B by interpolation; short of it: held at the last value.
    assert normalized_auc(_array([0, 50, 150]), _array([0.0, 1.0, 2.0]), 100) == pytest.approx(
        (25 + 50 * 1.25) / 100
    )
    assert normalized_auc(_array([0, 50]), _array([0.0, 1.0]), 100) == pytest.approx((25 + 50) / 100)


def _array(values: list) -> object:
    import numpy as np

    return np.array(values, dtype=float)


def _other_auc(ys: tuple) -> float:
    """Points (0, 0.3), (2688, a), (5376, b), cut at 5120."""
    a, b = ys
    end = a + (b - a) * (5120 - 2688) / 2688
    return (0.5 * (0.3 + a) * 2688 + 0.5 * (a + end) * (5120 - 2688)) / 5120


def test_the_equal_compute_tables_hold_the_hand_computed_values(
    runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_key = "prompt_gdro + fixed"  # stands in for DAPO dynamic sampling, the second reference
    monkeypatch.setattr(equal_compute, "references", lambda: [(GRPO.key, GRPO.name), (other_key, "Dynamic")])
    summaries = summarize(
        group_by_method(load_result(d) for d in sorted(runs.glob("*/*"))), GRPO.key, ["pass@8"]
    )
    grpo, other = summarize_compute(summaries, "pass@8")
    grpo_auc = {s: (0.3 + 2 * a + b) / 4 for s, (a, b) in enumerate(GRPO_Y)}
    other_auc = {s: _other_auc(ys) for s, ys in enumerate(OTHER_Y)}
    assert grpo.auc == pytest.approx(grpo_auc) and other.auc == pytest.approx(other_auc)
    assert other.at_budget == {0: 0.7, 1: 0.8, 2: 0.9}
    value_gain, auc_gain = other.gains["GRPO"]
    assert value_gain.mean == pytest.approx((0.1 + 0.1 + 0.15) / 3)
    expected = paired_gain(other_auc, grpo_auc)
    assert (auc_gain.mean, auc_gain.half_width) == pytest.approx((expected.mean, expected.half_width))
    lines = equal_compute_table([grpo, other], "pass@8")
    assert lines[0] == (
        "| method | seeds | generated rollouts | pass@8 at budget | gain over GRPO | gain over Dynamic | "
        "AUC / B | AUC gain over GRPO | AUC gain over Dynamic |"
    )
    value = mean_interval([0.7, 0.8, 0.9])
    auc = mean_interval(list(other_auc.values()))
    name = METHOD_NAMES[other_key]
    assert lines[3].startswith(
        f"| {name} | 3 | 5376 ± 0 | {value.mean:.4f} ± {value.half_width:.4f} | +0.1167"
    )
    assert f"| (reference) | {auc.mean:.4f} ± {auc.half_width:.4f} | +" in lines[3]
    assert lines[2].startswith("| GRPO | 3 | 5120 ± 0 | ") and "| (reference) |" in lines[2]
    spend = spend_table([grpo, other])
    informative = mean_interval([0.25, 0.5, 0.75])
    assert spend[2] == (
        f"| GRPO | {informative.mean:.3f} ± {informative.half_width:.3f} | 1.00 ± 0.00 | 10 ± 0 | 20 ± 0 |"
    )
    assert spend[3].endswith("| 1.50 ± 0.00 | 10 ± 0 | 14 ± 0 |")


def test_without_the_second_reference_its_columns_are_left_out(runs: Path) -> None:
    summaries = summarize(
        group_by_method(load_result(d) for d in sorted(runs.glob("*/*"))), GRPO.key, ["pass@8"]
    )
    lines = equal_compute_table(summarize_compute(summaries, "pass@8"), "pass@8")
    assert "Dynamic" not in lines[0] and lines[0].count("gain over") == 2


def test_compact_records_are_thinned_exact_and_restore_a_finished_folder(runs: Path, tmp_path: Path) -> None:
    records_dir = tmp_path / "records"
    for run_dir in sorted(runs.glob("*/*")):
        assert export_run(run_dir, record_path(records_dir, run_dir.parent.name, int(run_dir.name)))
    path = record_path(records_dir, "grpo", 1)
    assert not export_run(runs / "grpo" / "1", path)  # a record is never overwritten
    record = read_record(path)
    assert [r["step"] for r in record["records"]] == list(range(21))  # 20 steps: every step kept
    assert [r["step"] for r in thin(record["records"], every=7)] == [0, 7, 10, 14, 20]
    from_record = load_results(records_dir)[0]
    from_folders = [load_result(d) for d in sorted(runs.glob("*/*"))]
    assert [(r.method, r.seed, r.rollouts, json.dumps(r.totals, sort_keys=True)) for r in from_record] == [
        (r.method, r.seed, r.rollouts, json.dumps(r.totals, sort_keys=True)) for r in from_folders
    ]
    assert math.isclose(from_record[0].totals["informative_fraction"], 0.25)

    restored = tmp_path / "restored"
    assert restore_run_folder(path, restored)
    assert (restored / RESTORED).exists() and is_finished(restored, record["config"])
    assert not export_run(restored, tmp_path / "again.json.gz")  # a restored folder is not re-exported


def test_the_record_of_a_1000_step_simulator_run_is_at_most_50_kb(tmp_path: Path) -> None:
    """Prompt-GDRO resample, the largest record of the simulator sweep (its bins move the most)."""
    config = compose_config(
        ["policy=sim", "logger=none", "method=prompt_gdro_resample", "trainer.steps=1000"]
        + ["trainer.save_every=1000", "trainer.eval_every=100"]
    )
    train(parse_run_config(config), tmp_path / "run", config, progress=False)
    path = tmp_path / "record.json.gz"
    assert export_run(tmp_path / "run", path)
    assert path.stat().st_size <= 50_000
    assert len(read_record(path)["records"]) == 51  # step 0 and every 20th step (the evals among them)


def test_a_record_written_before_a_key_existed_is_the_same_run_at_that_keys_default() -> None:
    """`with_defaults` gives a config every key its schemas define: a key the record lacks (added later, its
    default keeping the old behaviour) compares equal at its default and unequal at any other value."""
    from gdro.analysis.results.sweep import same_recorded_run
    from gdro.config.store import with_defaults

    today = compose_config(["experiment=frontier", "logger=none"])
    older = json.loads(json.dumps(today))
    del older["trainer"]["compile_forward"]  # a key added after the record
    del older["policy"]["vllm"]["enforce_eager"]  # in a nested node too
    assert with_defaults(older) == with_defaults(today)
    assert same_recorded_run({**older, "cache_dir": "/elsewhere"}, today)
    compiled = json.loads(json.dumps(today))
    compiled["trainer"]["compile_forward"] = True
    assert not same_recorded_run(older, compiled)
    assert not same_recorded_run(older, {**today, "seed": today["seed"] + 1})
    assert with_defaults(today) == today  # a composed config already holds every key
