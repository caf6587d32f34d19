"""gdro.analysis.viz and scripts/plot_curriculum.py: every PNG is written, the figures draw the series and the
measures logged in metrics.jsonl (checked against values computed here independently: by hand on a tiny
synthetic run, in plain Python on a simulator run), and the training loop draws from memory."""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conf_helpers import compose_config, load_script

from gdro.analysis.viz import (
    PLOT_FILES,
    heatmap_figure,
    lead_lag_figure,
    load_run,
    records_from_wandb_history,
    run_from_records,
    summary_table,
    weight_entropy_figure,
    write_run_plots,
    wse_figure,
)
from gdro.config import parse_run_config
from gdro.core.curriculum import BIN_SERIES
from gdro.core.curriculum_metrics import CURRICULUM_MEASURES
from gdro.train import loop
from gdro.train.io.loggers import flatten
from gdro.train.loop import train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
    """1 - mean_t WSE_t / mean_t WSE_uniform_t, re-derived from metrics.jsonl without gdro.analysis.viz."""
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
    written = load_script("plot_curriculum").main([str(sim_run), "--out", str(tmp_path / "compare")])
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


def metrics_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def bin_matrix(records: list[dict], key: str) -> np.ma.MaskedArray:
    """[G, T] of `bins/<key>` over the training records, masked where null: what the heatmap must show."""
    rows = [record[f"bins/{key}"] for record in records if record["step"] >= 1]
    values = np.array([[math.nan if v is None else v for v in row] for row in rows]).T
    return np.ma.masked_invalid(values)


def assert_heatmap_shows(figure, expected: np.ma.MaskedArray) -> None:
    shown = figure.axes[0].images[0].get_array()
    assert shown.shape == expected.shape
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), np.ma.getmaskarray(expected))
    np.testing.assert_array_equal(shown.compressed(), expected.compressed())


def test_every_heatmap_shows_the_per_bin_series_of_the_metrics(sim_run: Path) -> None:
    run = load_run(sim_run)
    records = metrics_records(sim_run)
    for key in (name for name in BIN_SERIES if name != "tokens"):  # the simulator logs no tokens
        expected = bin_matrix(records, key)
        assert expected.shape == (10, 300)
        assert_heatmap_shows(heatmap_figure(run, key), expected)
    assert np.ma.getmaskarray(bin_matrix(records, "rollouts_per_prompt")).any()  # the mask is exercised
    assert_heatmap_shows(heatmap_figure(run, "tokens"), bin_matrix(records, "tokens"))  # all null in the sim
    with pytest.raises(ValueError, match="no heatmap for 'bogus'"):
        heatmap_figure(run, "bogus")


def test_logged_measures_match_plain_python_and_the_figures_draw_them(sim_run: Path) -> None:
    """Mean-bin gap and weight entropy re-derived from each record's bin lists (plain Python), and the
    figures' per-step lines are the logged series."""
    records = [r for r in metrics_records(sim_run) if r["step"] >= 1]
    for record in records:
        share, weight = record["bins/share"], record["bins/weight"]
        data = sum(b * s for b, s in enumerate(share)) / sum(share)
        adversary = sum(b * w for b, w in enumerate(weight)) / sum(weight)
        assert record["curriculum/mean_bin_gap"] == pytest.approx(adversary - data, abs=1e-12)
        q = [w / sum(weight) for w in weight]
        entropy = -sum(x * math.log(x) for x in q if x > 0)
        assert record["curriculum/weight_entropy"] == pytest.approx(entropy, abs=1e-12)
        assert record["curriculum/effective_bins"] == pytest.approx(math.exp(entropy))
        gap = [w - s for w, s in zip(weight, share, strict=True)]
        assert record["bins/lead_lag_gap"] == pytest.approx(gap, abs=1e-12)
        assert record["curriculum/lead_lag_gap_l1"] == pytest.approx(sum(abs(g) for g in gap), abs=1e-12)
        if record["curriculum/wse_uniform"]:
            reduction = 1 - record["curriculum/wse"] / record["curriculum/wse_uniform"]
            assert record["curriculum/wse_reduction"] == pytest.approx(reduction)

    run = load_run(sim_run)

    def series(key: str) -> np.ndarray:
        return np.array(
            [math.nan if r[f"curriculum/{key}"] is None else r[f"curriculum/{key}"] for r in records]
        )

    # With 300 steps the window is 6: each trace draws the per-step line first, then its rolling mean.
    top, bottom = lead_lag_figure(run).axes
    np.testing.assert_array_equal(top.lines[0].get_ydata(), series("mean_bin_share"))
    np.testing.assert_array_equal(top.lines[2].get_ydata(), series("mean_bin_weight"))
    np.testing.assert_array_equal(bottom.lines[0].get_ydata(), series("mean_bin_gap"))
    top, bottom = weight_entropy_figure(run).axes
    np.testing.assert_array_equal(top.lines[0].get_ydata(), series("weight_entropy"))
    np.testing.assert_array_equal(bottom.lines[0].get_ydata(), series("effective_bins"))
    (ax, *_) = wse_figure(run).axes
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), series("wse_uniform"))
    np.testing.assert_array_equal(ax.lines[2].get_ydata(), series("wse"))


def write_tiny_run(run_dir: Path, **drop: str) -> None:
    """2 steps, 3 bins, nbar 4; values chosen for hand arithmetic (the measures as the core logs them)."""
    run_dir.mkdir()
    config = {
        "sampler": {"name": "prompt_gdro", "mode": "reweight"},
        "allocator": {"name": "rollout_gdro", "nbar": 4},
        "classifier": {"num_bins": 3, "bin_edges": None, "exclude_extremes": False, "k": 8},
        "seed": 1,
    }
    entropy_1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
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
            "bins/lead_lag_gap": [-0.25, 0.25, 0.0],
            "curriculum/mean_bin_share": 0.5,
            "curriculum/mean_bin_weight": 0.75,
            "curriculum/mean_bin_gap": 0.25,
            "curriculum/lead_lag_gap_l1": 0.5,
            "curriculum/weight_entropy": entropy_1,
            "curriculum/effective_bins": math.exp(entropy_1),
            "curriculum/wse": 0.3,
            "curriculum/wse_uniform": 0.35,
            "curriculum/wse_reduction": 1 - 0.3 / 0.35,
        },
        {
            "step": 2,
            "alloc/mu": 0.1,
            "bins/share": [0.2, 0.3, 0.5],
            "bins/weight": [1 / 3, 1 / 3, 1 / 3],
            "bins/rollouts_per_prompt": [4.0, 4.0, 4.0],
            "bins/success_rate": [0.0, 0.5, 1.0],
            "bins/reward_mean": [-1.0, 0.0, 1.0],
            "bins/lead_lag_gap": [1 / 3 - 0.2, 1 / 3 - 0.3, 1 / 3 - 0.5],
            "curriculum/mean_bin_share": 1.3,
            "curriculum/mean_bin_weight": 1.0,
            "curriculum/mean_bin_gap": -0.3,
            "curriculum/lead_lag_gap_l1": 1 / 3,
            "curriculum/weight_entropy": math.log(3),
            "curriculum/effective_bins": 3.0,
            "curriculum/wse": 0.2,
            "curriculum/wse_uniform": None,
            "curriculum/wse_reduction": None,
            "eval/pass@8": 0.625,
            "eval/pass@8/level_0": 1.0,
            "eval/pass@8/level_1": 0.25,
        },
    ]
    for key in drop.values():
        for record in records[1:]:
            del record[key]
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_tiny_run_reads_its_logged_measures_by_hand(tmp_path: Path) -> None:
    write_tiny_run(tmp_path / "tiny")
    run = load_run(tmp_path / "tiny")
    assert run.label == "prompt_gdro + rollout_gdro (seed 1)"
    assert run.nbar == 4.0 and run.num_bins == 3
    np.testing.assert_array_equal(run.steps, [1, 2])
    assert np.isnan(run.bins["rollouts_per_prompt"][0, 2])
    assert "tokens" not in run.bins  # only the series the records hold
    assert run.eval_pass.loc[2, 1] == 0.25 and list(run.eval_pass.index) == [0, 2]
    np.testing.assert_array_equal(run.measures["mean_bin_gap"], [0.25, -0.3])
    np.testing.assert_array_equal(
        run.measures["effective_bins"], [math.exp(run.measures["weight_entropy"][0]), 3]
    )
    assert set(run.measures) == set(CURRICULUM_MEASURES)
    # Step 2's WSE_uniform is null, so the run's reduction is step 1's alone: 1 - 0.3 / 0.35.
    assert np.isnan(run.measures["wse_uniform"][1])
    assert run.wse_reduction() == pytest.approx(1 - 0.3 / 0.35)
    assert "WSE reduction vs uniform nbar: 14.3%" in summary_table(run)

    # Degenerate sizes still plot.
    for path in write_run_plots(run):
        assert_png(path, min_bytes=5_000)


def test_metrics_without_the_curriculum_measures_are_refused(tmp_path: Path) -> None:
    write_tiny_run(tmp_path / "old", key="curriculum/wse")
    with pytest.raises(ValueError, match="curriculum/wse: metrics written before"):
        load_run(tmp_path / "old")


def test_excluded_group_is_labelled_and_kept_out_of_the_bins(tmp_path: Path) -> None:
    record = {"step": 1, "bins/share": [0.5, 0.25, 0.25], "bins/weight": [0.5, 0.5, 0.0]}
    record |= {f"curriculum/{name}": None for name in CURRICULUM_MEASURES}
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
    records = metrics_records(sim_run)
    history = pd.DataFrame([{"_step": r["step"], "_runtime": 1.0, **flatten(r)} for r in records])
    from_wandb = run_from_records(
        records_from_wandb_history(history), json.loads((sim_run / "config.json").read_text())
    )
    from_folder = load_run(sim_run)
    np.testing.assert_array_equal(from_wandb.steps, from_folder.steps)
    assert from_wandb.bins.keys() == from_folder.bins.keys()  # bins/tokens too, all null in both
    for name, values in from_folder.bins.items():
        np.testing.assert_array_equal(from_wandb.bins[name], values, err_msg=name)
    for name, values in from_folder.measures.items():
        np.testing.assert_array_equal(from_wandb.measures[name], values, err_msg=name)
    pd.testing.assert_frame_equal(from_wandb.eval_pass, from_folder.eval_pass)


class FigureLogger:
    """A logger that keeps the heatmaps the loop logs, by step."""

    def __init__(self) -> None:
        self.figures: dict[int, dict] = {}

    def log(self, record: dict) -> None:
        pass

    def log_figures(self, step: int, figures: dict) -> None:
        self.figures[step] = figures

    def finish(self) -> None:
        pass


def test_the_loop_draws_from_memory_without_rereading_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rejects the loop that re-read metrics.jsonl (load_run) at every plot and for the summary: the
    file is read only once, by a resume's truncation, and the heatmaps still cover every step so far."""
    reads: list[Path] = []
    read_text = Path.read_text

    def counting_read_text(path: Path, *args, **kwargs) -> str:
        if path.name == "metrics.jsonl":
            reads.append(path)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting_read_text)
    figure_logger = FigureLogger()
    monkeypatch.setattr(loop, "build_logger", lambda *args: figure_logger)
    common = [
        "policy=sim",
        "logger=none",
        "sampler=prompt_gdro",
        "trainer.plot_every=10",
        "trainer.save_every=20",
    ]
    config = compose_config([*common, "trainer.steps=20"])
    train(parse_run_config(config), tmp_path, config, progress=False)
    assert reads == [] and sorted(figure_logger.figures) == [10, 20]

    config = compose_config([*common, "trainer.steps=30", "resume=latest"])
    train(parse_run_config(config), tmp_path, config, progress=False)
    assert reads == [tmp_path / "metrics.jsonl"]  # the truncation to the checkpoint's step
    assert sorted(figure_logger.figures) == [10, 20, 30]
    monkeypatch.undo()
    records = metrics_records(tmp_path)
    for step, figures in figure_logger.figures.items():
        for key in ("share", "weight", "rollouts_per_prompt", "reward_mean"):
            assert_heatmap_shows(figures[f"curriculum/{key}"], bin_matrix(records[: step + 1], key))
