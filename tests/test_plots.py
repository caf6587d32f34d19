"""gdro.viz and scripts/plot_curriculum.py: every PNG is written, and the measures match values
computed here independently (by hand on a tiny synthetic run, in plain Python on a simulator run)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conf_helpers import CONF_DIR, compose_config

from gdro.config import parse_run_config
from gdro.train.loggers import flatten
from gdro.train.loop import train
from gdro.viz import (
    PLOT_FILES,
    effective_support,
    heatmap_figure,
    lead_lag_gap,
    load_run,
    records_from_wandb_history,
    run_from_records,
    summary_table,
    weight_entropy,
    weighted_standard_error,
    write_run_plots,
    wse_reduction,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_plot_script():
    spec = importlib.util.spec_from_file_location(
        "plot_curriculum", CONF_DIR.parent / "scripts" / "plot_curriculum.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path: Path, min_bytes: int) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400, f"{path.name} is {width}x{height}"
    assert len(data) > min_bytes, f"{path.name} has only {len(data)} bytes"


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("sim_run")
    config = compose_config(
        [
            "policy=sim",
            "logger=none",
            "sampler=prompt_gdro",
            "allocator=rollout_gdro",
            "trainer.steps=300",
            "trainer.eval_every=50",
            "trainer.save_every=300",
        ]
    )
    train(parse_run_config(config), run_dir, config, progress=False)
    return run_dir


def wse_reduction_in_plain_python(run_dir: Path) -> float:
    """1 - mean_t WSE_t / mean_t WSE_uniform_t, re-derived from metrics.jsonl without gdro.viz."""
    nbar = json.loads((run_dir / "config.json").read_text())["allocator"]["nbar"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    wse_steps, uniform_steps = [], []
    for record in records:
        if record["step"] == 0:
            continue
        total_weight = sum(w for w in record["bins/weight"] if w is not None)
        wse = uniform = 0.0
        for w, p, n in zip(
            record["bins/weight"],
            record["bins/success_rate"],
            record["bins/rollouts_per_prompt"],
            strict=True,
        ):
            if w is None or p is None or n is None:
                continue
            sigma = 2.0 * math.sqrt(p * (1.0 - p))
            wse += w / total_weight * sigma / math.sqrt(n)
            uniform += w / total_weight * sigma / math.sqrt(nbar)
        wse_steps.append(wse)
        uniform_steps.append(uniform)
    return 1.0 - (sum(wse_steps) / len(wse_steps)) / (sum(uniform_steps) / len(uniform_steps))


def test_plot_script_writes_every_png_and_prints_the_wse_reduction(
    sim_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = load_plot_script().main([str(sim_run), "--out", str(tmp_path / "compare")])
    printed = capsys.readouterr().out
    expected = [sim_run / "plots" / name for name in PLOT_FILES]
    expected.append(tmp_path / "compare" / "eval_pass_by_level_compare.png")
    assert written == expected
    for path in expected:
        assert str(path) in printed
        assert_png(path, min_bytes=20_000)

    match = re.search(r"WSE reduction vs uniform nbar: (-?\d+\.\d)%", printed)
    assert match, printed
    assert abs(float(match.group(1)) - 100 * wse_reduction_in_plain_python(sim_run)) <= 0.05 + 1e-9


def test_summary_table_lists_every_bin_and_the_first_and_last_eval(sim_run: Path) -> None:
    table = summary_table(load_run(sim_run))
    lines = table.splitlines()
    assert lines[0] == "prompt_gdro + rollout_gdro (seed 0): steps 1-300, nbar = 4"
    assert sum(line.startswith(f"{b} [") for line in lines for b in range(10)) == 10
    assert "step 0" in table and "step 300" in table
    assert any(line.startswith("pooled") for line in lines)
    assert any(line.startswith("level 9") for line in lines)
    assert "WSE reduction vs uniform nbar:" in table


def test_heatmap_figure_returns_a_figure_for_every_bin_series(sim_run: Path) -> None:
    run = load_run(sim_run)
    for key in ("share", "weight", "score", "rollouts_per_prompt", "reward_mean", "success_rate"):
        assert heatmap_figure(run, key).axes
    with pytest.raises(ValueError, match="no heatmap for 'tokens'"):
        heatmap_figure(run, "tokens")


def write_tiny_run(run_dir: Path) -> None:
    """2 steps, 3 bins, nbar 4; values chosen for hand arithmetic."""
    run_dir.mkdir()
    config = {
        "sampler": {"name": "prompt_gdro", "mode": "reweight"},
        "allocator": {"name": "rollout_gdro", "nbar": 4},
        "classifier": {"num_bins": 3, "bin_edges": None, "exclude_extremes": False, "k": 8},
        "seed": 1,
    }
    records = [
        {"step": 0, "eval/pass@8": 0.5, "eval/pass@8/level_0": 0.75, "eval/pass@8/level_1": 0.25},
        {
            "step": 1,
            "alloc/mu": 0.0,
            "bins/share": [0.5, 0.5, 0.0],
            "bins/weight": [0.25, 0.75, 0.0],
            "bins/rollouts_per_prompt": [2.0, 8.0, None],
            "bins/success_rate": [0.5, 0.9, None],
            "bins/reward_mean": [0.0, 0.8, None],
        },
        {
            "step": 2,
            "alloc/mu": 0.1,
            "bins/share": [0.2, 0.3, 0.5],
            "bins/weight": [1 / 3, 1 / 3, 1 / 3],
            "bins/rollouts_per_prompt": [4.0, 4.0, 4.0],
            "bins/success_rate": [0.0, 0.5, 1.0],
            "bins/reward_mean": [-1.0, 0.0, 1.0],
            "eval/pass@8": 0.625,
            "eval/pass@8/level_0": 1.0,
            "eval/pass@8/level_1": 0.25,
        },
    ]
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_measures_by_hand_on_a_tiny_run(tmp_path: Path) -> None:
    write_tiny_run(tmp_path / "tiny")
    run = load_run(tmp_path / "tiny")
    assert run.label == "prompt_gdro + rollout_gdro (seed 1)"
    assert run.nbar == 4.0 and run.num_bins == 3
    np.testing.assert_array_equal(run.steps, [1, 2])
    assert np.isnan(run.bins["rollouts_per_prompt"][0, 2])
    assert run.eval_pass.loc[2, 1] == 0.25 and list(run.eval_pass.index) == [0, 2]

    # step 1: data at (0 + 1) / 2 = 0.5, weight at 0.75 -> +0.25; step 2: data 0.3 + 2 * 0.5 = 1.3, weight 1.
    np.testing.assert_allclose(lead_lag_gap(run.bins["share"], run.bins["weight"]), [0.25, -0.3])
    entropy_step_1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(weight_entropy(run.bins["weight"]), [entropy_step_1, math.log(3)])
    np.testing.assert_allclose(effective_support(run.bins["weight"]), [math.exp(entropy_step_1), 3.0])

    # step 1: sigma = 2 sqrt(.5 .5) = 1 and 2 sqrt(.9 .1) = 0.6, bin 2 missing; step 2: only bin 1 has sigma > 0.
    wse, uniform = weighted_standard_error(
        run.bins["weight"], run.bins["success_rate"], run.bins["rollouts_per_prompt"], run.nbar
    )
    wse_1 = 0.25 * 1.0 / math.sqrt(2) + 0.75 * 0.6 / math.sqrt(8)
    uniform_1 = (0.25 * 1.0 + 0.75 * 0.6) / 2
    np.testing.assert_allclose(wse, [wse_1, 1 / 6])
    np.testing.assert_allclose(uniform, [uniform_1, 1 / 6])
    assert wse_reduction(wse, uniform) == pytest.approx(1 - (wse_1 + 1 / 6) / (uniform_1 + 1 / 6))
    # nbar rollouts everywhere is no reduction at all.
    assert (
        wse_reduction(
            *weighted_standard_error(run.bins["weight"], run.bins["success_rate"], np.full((2, 3), 4.0), 4)
        )
        == 0.0
    )

    # Degenerate sizes still plot.
    for path in write_run_plots(run):
        assert_png(path, min_bytes=5_000)


def test_excluded_group_is_labelled_and_kept_out_of_the_bins(tmp_path: Path) -> None:
    record = {"step": 1, "bins/share": [0.5, 0.25, 0.25], "bins/weight": [0.5, 0.5, 0.0]}
    config = {
        "sampler": {"name": "uniform"},
        "allocator": {"name": "fixed", "nbar": 4},
        "classifier": {"num_bins": 2, "bin_edges": [0.3], "exclude_extremes": True, "k": 8},
        "seed": 0,
    }
    run = run_from_records([record], config)
    assert run.num_bins == 2
    assert run.bin_labels == ["0 [0, 0.3)", "1 [0.3, 1]", "excluded (0 or 1)"]


def test_a_wandb_history_gives_the_same_run_as_the_folder(sim_run: Path) -> None:
    records = [json.loads(line) for line in (sim_run / "metrics.jsonl").read_text().splitlines()]
    history = pd.DataFrame([{"_step": r["step"], "_runtime": 1.0, **flatten(r)} for r in records])
    from_wandb = run_from_records(
        records_from_wandb_history(history), json.loads((sim_run / "config.json").read_text())
    )
    from_folder = load_run(sim_run)
    np.testing.assert_array_equal(from_wandb.steps, from_folder.steps)
    for name, values in from_folder.bins.items():
        np.testing.assert_array_equal(from_wandb.bins[name], values, err_msg=name)
    pd.testing.assert_frame_equal(from_wandb.eval_pass, from_folder.eval_pass)
