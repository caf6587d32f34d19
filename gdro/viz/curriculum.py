"""The emergent curriculum of one or more runs (spec section 8): load, measure, plot.

Input is a run folder: `metrics.jsonl` (the contract in `gdro/train/metrics.py`: step 0 holds the
evaluation before training, steps t >= 1 the per-step keys with per-bin lists `bins/<series>` indexed
by bin, bin 0 hardest, null where a bin is absent) and `config.json` (the resolved config).

Measures (pure numpy functions on [T, G] per-bin matrices, T steps, G groups):
    mean bin index   m_t(d) = sum_b b d_t(b) / sum_b d_t(b)
    lead-lag gap     m_t(q) - m_t(qhat)          weights minus data, in bins (< 0: weights lean harder)
    weight entropy   H_t = -sum_{b: q_t(b) > 0} q_t(b) log q_t(b)  (nats), effective support exp(H_t)
    WSE proxy        see `weighted_standard_error`

Plots are built on `matplotlib.figure.Figure` without pyplot (rendered by the Agg canvas, no display,
nothing to close) and written as PNGs by `write_run_plots` / `write_comparison_plot`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from gdro.core.curriculum import BIN_SERIES
from gdro.core.difficulty import BIN_EDGE_PRESETS

# Every PNG `write_run_plots` writes into RUN_DIR/plots/, and the multi-run comparison.
HEATMAP_FILES = {
    "share": "heatmap_share.png",
    "weight": "heatmap_weight.png",
    "rollouts_per_prompt": "heatmap_rollouts.png",
    "reward_mean": "heatmap_reward.png",
}
PLOT_FILES = (
    *HEATMAP_FILES.values(),
    "lead_lag_gap.png",
    "weight_entropy.png",
    "wse.png",
    "snapshots.png",
    "eval_pass_by_level.png",
)
COMPARISON_FILE = "eval_pass_by_level_compare.png"

DPI = 120
_EVAL_KEY = re.compile(r"^eval/(pass|mean)@(\d+)(?:/level_(\d+))?$")
_WANDB_BIN_KEY = re.compile(r"^(bins/\w+)/(\d+)$")


@dataclass
class CurriculumRun:
    """One run's curriculum, ready to measure and plot.

    steps: [T] training steps t >= 1; bins: series name -> [T, G] float (NaN where null); G = B bins,
    plus the excluded group last when `classifier.exclude_extremes` is on; mu: [T] shadow price (NaN
    without one); eval_pass / eval_mean: pass@k and mean@k per eval step (index) and column "pooled"
    or latent level l (int, level 0 easiest); nbar: the allocator's mean rollouts per prompt.
    """

    run_dir: Path | None
    label: str
    config: dict[str, Any]
    nbar: float
    steps: np.ndarray
    bins: dict[str, np.ndarray]
    mu: np.ndarray
    num_bins: int
    bin_labels: list[str]
    eval_k: int
    eval_pass: pd.DataFrame
    eval_mean: pd.DataFrame


def run_label(config: dict[str, Any]) -> str:
    """E.g. "prompt_gdro + rollout_gdro (seed 0)"; a resampling sampler is marked "[resample]"."""
    sampler = config["sampler"]["name"]
    if config["sampler"].get("mode") == "resample":
        sampler += " [resample]"
    return f"{sampler} + {config['allocator']['name']} (seed {config['seed']})"


def _bin_labels(classifier: dict[str, Any], num_bins: int, num_groups: int) -> list[str]:
    """ "b [lo, hi)" per bin from the classifier's pass@k edges, and "excluded" for the extra group."""
    edges = classifier.get("bin_edges") or BIN_EDGE_PRESETS.get(num_bins)
    if edges is not None and len(edges) == num_bins - 1:
        bounds = [0.0, *edges, 1.0]
        labels = [f"{b} [{bounds[b]:g}, {bounds[b + 1]:g})" for b in range(num_bins)]
        labels[-1] = labels[-1][:-1] + "]"
    else:
        labels = [str(b) for b in range(num_bins)]
    return labels + ["excluded (0 or 1)"] * (num_groups - num_bins)


def _eval_tables(records: Sequence[dict[str, Any]]) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """(k, pass@k table, mean@k table): index eval step, columns "pooled" then levels ascending."""
    rows: dict[str, dict[int, dict[Any, float]]] = {"pass": {}, "mean": {}}
    k = 0
    for record in records:
        for key, value in record.items():
            match = _EVAL_KEY.match(key)
            if match is None or value is None:
                continue
            kind, k, level = match.group(1), int(match.group(2)), match.group(3)
            column = "pooled" if level is None else int(level)
            rows[kind].setdefault(record["step"], {})[column] = float(value)

    def table(kind: str) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(rows[kind], orient="index").sort_index()
        levels = sorted(c for c in frame.columns if c != "pooled")
        frame = frame.reindex(columns=["pooled", *levels])
        frame.index.name = "step"
        return frame

    return k, table("pass"), table("mean")


def run_from_records(
    records: Sequence[dict[str, Any]], config: dict[str, Any], run_dir: Path | None = None
) -> CurriculumRun:
    """A `CurriculumRun` from metrics records (the lines of `metrics.jsonl`) and the resolved config."""
    train = [r for r in records if r["step"] >= 1 and "bins/share" in r]
    if not train:
        raise ValueError(f"no training steps (step >= 1 with bins/share) in the records of {run_dir}")

    def matrix(name: str) -> np.ndarray:
        key = f"bins/{name}"
        return np.array(
            [[np.nan if v is None else v for v in r[key]] if key in r else [] for r in train],
            dtype=np.float64,
        )

    bins = {name: matrix(name) for name in BIN_SERIES if f"bins/{name}" in train[0]}
    num_groups = bins["share"].shape[1]
    classifier = config.get("classifier", {})
    num_bins = num_groups - 1 if classifier.get("exclude_extremes", False) else num_groups
    eval_k, eval_pass, eval_mean = _eval_tables(records)
    return CurriculumRun(
        run_dir=run_dir,
        label=run_label(config),
        config=config,
        nbar=float(config["allocator"]["nbar"]),
        steps=np.array([r["step"] for r in train], dtype=np.int64),
        bins=bins,
        mu=np.array([np.nan if r.get("alloc/mu") is None else r["alloc/mu"] for r in train]),
        num_bins=num_bins,
        bin_labels=_bin_labels(classifier, num_bins, num_groups),
        eval_k=eval_k,
        eval_pass=eval_pass,
        eval_mean=eval_mean,
    )


def load_run(run_dir: str | Path) -> CurriculumRun:
    """Read RUN_DIR/metrics.jsonl and RUN_DIR/config.json."""
    run_dir = Path(run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    config = json.loads((run_dir / "config.json").read_text())
    return run_from_records(records, config, run_dir)


def records_from_wandb_history(history: pd.DataFrame) -> list[dict[str, Any]]:
    """Metrics records from a W&B history table (`wandb.Api().run(path).scan_history()` as a DataFrame).

    W&B holds the per-bin lists flattened (`bins/share/<b>`, see `gdro.train.loggers.flatten`) and the
    step in `_step`; this regroups them into lists (None where missing) and drops NaN scalars.
    """
    bin_columns: dict[str, dict[int, str]] = {}
    for column in history.columns:
        match = _WANDB_BIN_KEY.match(str(column))
        if match:
            bin_columns.setdefault(match.group(1), {})[int(match.group(2))] = column
    num_groups = 1 + max((b for columns in bin_columns.values() for b in columns), default=-1)
    flat_columns = {c for columns in bin_columns.values() for c in columns.values()}
    records = []
    for _, row in history.sort_values("_step").iterrows():
        record: dict[str, Any] = {"step": int(row["_step"])}
        for column, value in row.items():
            if column not in flat_columns and not str(column).startswith("_") and pd.notna(value):
                record[str(column)] = value
        for series, columns in bin_columns.items():
            values = [row[columns[b]] if b in columns else math.nan for b in range(num_groups)]
            if any(pd.notna(v) for v in values):
                record[series] = [float(v) if pd.notna(v) else None for v in values]
        records.append(record)
    return records


# ----------------------------------------------------------------------------------------------- measures


def _nanmean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over finite entries; NaN where there are none (without numpy's all-NaN warning)."""
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=axis) / finite.sum(axis=axis)


def _normalise(dist: np.ndarray) -> np.ndarray:
    """Rows of [T, B] scaled to sum 1, NaN entries as 0; a row summing to 0 becomes NaN."""
    dist = np.nan_to_num(np.asarray(dist, dtype=np.float64), nan=0.0)
    total = dist.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, dist / total, np.nan)


def mean_bin_index(dist: np.ndarray) -> np.ndarray:
    """m_t = sum_b b d_t(b) / sum_b d_t(b) for [T, B] non-negative d (NaN as 0); [T], in bins."""
    dist = _normalise(dist)
    return dist @ np.arange(dist.shape[1], dtype=np.float64)


def lead_lag_gap(share: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weight-weighted minus share-weighted mean bin index, m_t(q) - m_t(qhat); [T], in bins.

    share qhat and weight q are [T, B] over the B difficulty bins (leave out the excluded group, which
    has no bin index). Bin 0 is hardest, so a negative gap means the adversary's weight sits on
    harder bins than the batch's data.
    """
    return mean_bin_index(weight) - mean_bin_index(share)


def weight_entropy(weight: np.ndarray) -> np.ndarray:
    """H_t = -sum_{b: q_t(b) > 0} q_t(b) log q_t(b) in nats, q_t = weight row normalised to 1; [T].

    weight: [T, B] (NaN as 0). H is 0 for all weight on one bin, log B for uniform weight.
    """
    q = _normalise(weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    return np.where(np.isnan(q).all(axis=1), np.nan, -terms.sum(axis=1))


def effective_support(weight: np.ndarray) -> np.ndarray:
    """exp(H_t): the number of bins the weight is effectively spread over, in [1, B]; [T]."""
    return np.exp(weight_entropy(weight))


def weighted_standard_error(
    weight: np.ndarray, success_rate: np.ndarray, rollouts_per_prompt: np.ndarray, nbar: float
) -> tuple[np.ndarray, np.ndarray]:
    """The weighted standard-error proxy (spec section 8) of the allocation and of uniform nbar.

    With q_t(b) = weight_t(b) / sum_b' weight_t(b') (the adversary weight normalised to 1 over all
    groups, NaN as 0), sigma_t(b) = 2 sqrt(p_t(b) (1 - p_t(b))) the per-rollout std of the +-1 reward
    of bin b (p = its success rate this step) and n_t(b) its mean rollouts per prompt:

        WSE_t         = sum_b q_t(b) sigma_t(b) / sqrt(n_t(b))
        WSE_uniform_t = sum_b q_t(b) sigma_t(b) / sqrt(nbar)

    Both sums skip the same bins: those where q, p or n is missing (the bin was absent that step).
    All inputs are [T, G]; returns two [T] arrays in reward units, NaN for a step with no weight.
    """
    q = _normalise(weight)
    p = np.asarray(success_rate, dtype=np.float64)
    n = np.asarray(rollouts_per_prompt, dtype=np.float64)
    valid = np.isfinite(q) & np.isfinite(p) & np.isfinite(n) & (n > 0)
    with np.errstate(invalid="ignore"):
        weighted_sigma = np.where(valid, q * 2.0 * np.sqrt(np.clip(p * (1.0 - p), 0.0, None)), 0.0)
    wse = (weighted_sigma / np.sqrt(np.where(valid, n, 1.0))).sum(axis=1)
    wse_uniform = weighted_sigma.sum(axis=1) / math.sqrt(nbar)
    no_weight = np.isnan(q).all(axis=1)
    return np.where(no_weight, np.nan, wse), np.where(no_weight, np.nan, wse_uniform)


def wse_reduction(wse: np.ndarray, wse_uniform: np.ndarray) -> float:
    """1 - mean_t WSE_t / mean_t WSE_uniform_t over the steps where both are defined (a fraction).

    > 0: the allocation's weighted standard error is lower than spending nbar rollouts on every prompt.
    """
    both = np.isfinite(wse) & np.isfinite(wse_uniform)
    uniform_mean = float(np.mean(wse_uniform[both])) if both.any() else 0.0
    return 1.0 - float(np.mean(wse[both])) / uniform_mean if uniform_mean > 0 else math.nan


def run_wse(run: CurriculumRun) -> tuple[np.ndarray, np.ndarray, float]:
    """(WSE_t, WSE_uniform_t, mean reduction) of a run; see `weighted_standard_error`."""
    wse, uniform = weighted_standard_error(
        run.bins["weight"], run.bins["success_rate"], run.bins["rollouts_per_prompt"], run.nbar
    )
    return wse, uniform, wse_reduction(wse, uniform)


# ------------------------------------------------------------------------------------------------- figures


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling mean over `window` steps (NaN skipped)."""
    return pd.Series(values).rolling(window, center=True, min_periods=1).mean().to_numpy()


def _window(run: CurriculumRun) -> int:
    return max(1, len(run.steps) // 50)


def _trace(ax: Any, steps: np.ndarray, values: np.ndarray, window: int, label: str, color: str) -> None:
    """A faint per-step line and its rolling mean, one legend entry."""
    if window > 1:
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
        label += f" ({window}-step rolling mean; faint: per step)"
    ax.plot(steps, _smooth(values, window), color=color, linewidth=1.6, label=label)


@dataclass(frozen=True)
class _HeatmapSpec:
    title: str
    colorbar: str
    cmap: str


_HEATMAPS = {
    "share": _HeatmapSpec("prompt share per bin qhat(b)", "fraction of the step's M prompts", "viridis"),
    "weight": _HeatmapSpec(
        "data adversary's bin weight q(b)", "weight q(b) (sums to 1 over bins)", "viridis"
    ),
    "score": _HeatmapSpec("sampler score S(b)", "score S(b) (after the step's update)", "viridis"),
    "rollouts_per_prompt": _HeatmapSpec(
        "rollouts per prompt n_b", "rollouts per prompt (mean n_i over the bin's prompts)", "RdBu_r"
    ),
    "reward_mean": _HeatmapSpec("mean reward per bin", "mean reward of the bin's rollouts (+1/-1)", "RdBu"),
    "success_rate": _HeatmapSpec("rollout success rate per bin", "fraction of correct rollouts", "viridis"),
}


def heatmap_figure(run: CurriculumRun, key: str) -> Figure:
    """Step x bin heatmap of `bins/<key>` (one of `BIN_SERIES`); grey where the value is null (bin empty).

    Bin 0 (hardest) is the top row. Rollouts are coloured around the budget nbar (white); rewards on
    the fixed range [-1, 1].
    """
    if key not in _HEATMAPS:
        raise ValueError(f"no heatmap for {key!r}; choose one of {sorted(_HEATMAPS)}")
    spec = _HEATMAPS[key]
    values = run.bins[key].T
    norm: Normalize | None = None
    if key == "rollouts_per_prompt":
        low, high = np.nanmin(values, initial=run.nbar), np.nanmax(values, initial=run.nbar)
        norm = TwoSlopeNorm(vcenter=run.nbar, vmin=min(low, run.nbar - 1), vmax=max(high, run.nbar + 1))
    elif key == "reward_mean":
        norm = Normalize(-1.0, 1.0)
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(
        np.ma.masked_invalid(values),
        aspect="auto",
        interpolation="nearest",
        cmap=matplotlib.colormaps[spec.cmap].with_extremes(bad="0.85"),
        norm=norm,
        extent=(run.steps[0] - 0.5, run.steps[-1] + 0.5, values.shape[0] - 0.5, -0.5),
    )
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label(spec.colorbar)
    if key == "rollouts_per_prompt":
        colorbar.ax.axhline(run.nbar, color="black", linewidth=1.0)
    ax.set_yticks(range(values.shape[0]), run.bin_labels)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"difficulty bin: windowed pass@{run.config['classifier']['k']} range\n(bin 0 hardest)")
    extra = f", budget nbar = {run.nbar:g} (white)" if key == "rollouts_per_prompt" else ""
    empty = "\ngrey: no prompt of the step fell in that bin" if np.isnan(values).any() else ""
    ax.set_title(f"{run.label}: {spec.title}{extra}{empty}")
    return fig


def lead_lag_figure(run: CurriculumRun) -> Figure:
    """Mean bin index of the data (share) and of the adversary weight over steps, and their gap."""
    share, weight = run.bins["share"][:, : run.num_bins], run.bins["weight"][:, : run.num_bins]
    gap = lead_lag_gap(share, weight)
    window = _window(run)
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    _trace(top, run.steps, mean_bin_index(share), window, "data: share-weighted", "tab:blue")
    _trace(top, run.steps, mean_bin_index(weight), window, "adversary: weight-weighted", "tab:red")
    top.set_ylabel("mean bin index (bins; 0 = hardest)")
    top.legend(loc="best", fontsize=8)
    top.set_title("Where the batch's prompts sit and where the data adversary puts its weight")
    _trace(bottom, run.steps, gap, window, "gap = weight - data", "tab:purple")
    bottom.axhline(0.0, color="black", linewidth=0.8, linestyle="--", label="no lead or lag")
    bottom.set_ylabel("gap (bins; < 0: weight leans harder)")
    bottom.set_xlabel("training step")
    bottom.legend(loc="best", fontsize=8)
    final = gap[2 * len(gap) // 3 :]
    bottom.set_title(f"Lead-lag gap; mean over the final third of steps: {_nanmean(final):+.2f} bins")
    fig.suptitle(run.label)
    return fig


def weight_entropy_figure(run: CurriculumRun) -> Figure:
    """Entropy H of the adversary's bin weights (nats) and the effective support exp(H) (bins)."""
    weight = run.bins["weight"][:, : run.num_bins]
    entropy = weight_entropy(weight)
    window = _window(run)
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    _trace(top, run.steps, entropy, window, "H = -sum_b q(b) log q(b)", "tab:green")
    top.axhline(
        math.log(run.num_bins),
        color="gray",
        linestyle="--",
        label=f"log B (uniform over {run.num_bins} bins)",
    )
    top.set_ylabel("weight entropy H (nats)")
    top.legend(loc="best", fontsize=8)
    top.set_title("Entropy of the data adversary's bin weights")
    _trace(bottom, run.steps, np.exp(entropy), window, "exp(H)", "tab:orange")
    bottom.axhline(run.num_bins, color="gray", linestyle="--", label=f"B = {run.num_bins} bins")
    bottom.set_ylabel("effective support exp(H) (bins)")
    bottom.set_xlabel("training step")
    bottom.legend(loc="best", fontsize=8)
    bottom.set_title("Effective number of bins carrying weight")
    fig.suptitle(run.label)
    return fig


def wse_figure(run: CurriculumRun) -> Figure:
    """WSE_t of the run's allocation against WSE_uniform_t (nbar rollouts everywhere)."""
    wse, uniform, reduction = run_wse(run)
    window = _window(run)
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.add_subplot()
    _trace(ax, run.steps, uniform, window, f"uniform: every prompt nbar = {run.nbar:g} rollouts", "tab:gray")
    _trace(ax, run.steps, wse, window, "this run's rollouts n_b", "tab:blue")
    ax.set_xlabel("training step")
    ax.set_ylabel("WSE = sum_b q(b) sigma_b / sqrt(n_b)\n(reward units, +1/-1 scale)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(
        f"{run.label}: weighted standard-error proxy\n"
        f"mean reduction vs uniform nbar: {100 * reduction:.1f}%  "
        "(sigma_b = 2 sqrt(p_b (1 - p_b)), q = adversary weight)"
    )
    return fig


def _snapshot_windows(num_steps: int) -> list[slice]:
    """Index windows at the start, 1/3, 2/3 and end of training, each about 3% of the steps."""
    width = max(1, num_steps // 30)
    windows = []
    for fraction in (0.0, 1 / 3, 2 / 3, 1.0):
        start = min(max(0, round(fraction * (num_steps - 1)) - width // 2), num_steps - width)
        windows.append(slice(start, start + width))
    return windows


def snapshots_figure(run: CurriculumRun) -> Figure:
    """Bars per bin of share, weight and rollouts per prompt, averaged over four short windows."""
    windows = _snapshot_windows(len(run.steps))
    panels = [
        ("share", "prompt share qhat(b)\n(fraction of prompts)"),
        ("weight", "adversary weight q(b)\n(sums to 1)"),
        ("rollouts_per_prompt", "rollouts per prompt n_b\n(mean over the bin's prompts)"),
    ]
    groups = np.arange(run.bins["share"].shape[1])
    width = 0.8 / len(windows)
    colors = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(windows)))
    fig = Figure(figsize=(11, 8.5), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True)
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for i, (window, color) in enumerate(zip(windows, colors, strict=True)):
            means = _nanmean(run.bins[key][window], axis=0)
            steps = run.steps[window]
            ax.bar(
                groups + (i - (len(windows) - 1) / 2) * width,
                np.nan_to_num(means, nan=0.0),
                width=width,
                color=color,
                label=f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}-{steps[-1]}",
            )
        if key == "rollouts_per_prompt":
            ax.axhline(
                run.nbar, color="black", linestyle="--", linewidth=1.0, label=f"budget nbar = {run.nbar:g}"
            )
        ax.set_ylabel(ylabel)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axes[-1].set_xticks(groups, run.bin_labels, rotation=30, ha="right")
    axes[-1].set_xlabel(
        f"difficulty bin: windowed pass@{run.config['classifier']['k']} range (bin 0 hardest)"
    )
    fig.suptitle(
        f"{run.label}: the curriculum at the start, 1/3, 2/3 and end of training\n"
        "(each bar: mean over a short window of steps; no bar where the bin was empty)"
    )
    return fig


def _level_colors(levels: Sequence[int]) -> np.ndarray:
    return matplotlib.colormaps["plasma"](np.linspace(0.0, 0.9, max(1, len(levels))))


def eval_by_level_figure(run: CurriculumRun) -> Figure:
    """Eval pass@k per latent difficulty level over training steps, and pooled."""
    table = run.eval_pass
    levels = [c for c in table.columns if c != "pooled"]
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.add_subplot()
    for level, color in zip(levels, _level_colors(levels), strict=True):
        suffix = " (easiest)" if level == levels[0] else " (hardest)" if level == levels[-1] else ""
        ax.plot(
            table.index, table[level], marker="o", markersize=3, color=color, label=f"level {level}{suffix}"
        )
    ax.plot(table.index, table["pooled"], color="black", linewidth=2.2, linestyle="--", label="pooled")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step (step 0: before the first update)")
    ax.set_ylabel(f"eval pass@{run.eval_k} (fraction of eval prompts solved)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="difficulty level")
    ax.set_title(f"{run.label}: eval pass@{run.eval_k} per difficulty level")
    return fig


def _unique_labels(runs: Sequence[CurriculumRun]) -> list[str]:
    """Run labels, with the run folder's name appended where two runs share a label."""
    labels = [run.label for run in runs]
    return [
        f"{label} [{run.run_dir.name if run.run_dir else i}]" if labels.count(label) > 1 else label
        for i, (label, run) in enumerate(zip(labels, runs, strict=True))
    ]


def eval_compare_figure(runs: Sequence[CurriculumRun]) -> Figure:
    """Eval pass@k over steps for several runs: one colour per run, one panel per level and pooled."""
    columns: list[Any] = ["pooled"]
    columns += sorted({c for run in runs for c in run.eval_pass.columns if c != "pooled"})
    ncols = min(4, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig = Figure(figsize=(3.4 * ncols, 2.8 * nrows + 1.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    colors = matplotlib.colormaps["tab10"](np.arange(len(runs)) % 10)
    for ax, column in zip(axes, columns, strict=False):
        for run, label, color in zip(runs, _unique_labels(runs), colors, strict=True):
            if column in run.eval_pass.columns:
                ax.plot(
                    run.eval_pass.index,
                    run.eval_pass[column],
                    marker="o",
                    markersize=3,
                    color=color,
                    label=label,
                )
        ax.set_title("pooled (all levels)" if column == "pooled" else f"level {column}")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    for ax in axes.reshape(nrows, ncols)[:, 0]:
        ax.set_ylabel(f"eval pass@{runs[0].eval_k}")
    for ax in axes.reshape(nrows, ncols)[-1, :]:
        ax.set_xlabel("training step")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(runs)), fontsize=9)
    fig.suptitle(
        f"Eval pass@{runs[0].eval_k} (fraction of eval prompts solved) per difficulty level "
        "(level 0 easiest), one colour per run"
    )
    return fig


def write_run_plots(run: CurriculumRun, out_dir: str | Path | None = None) -> list[Path]:
    """Write every file of `PLOT_FILES` into `out_dir` (default RUN_DIR/plots/); returns the paths."""
    if out_dir is None:
        if run.run_dir is None:
            raise ValueError("a run without a folder needs an out_dir")
        out_dir = run.run_dir / "plots"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {name: heatmap_figure(run, key) for key, name in HEATMAP_FILES.items()}
    figures["lead_lag_gap.png"] = lead_lag_figure(run)
    figures["weight_entropy.png"] = weight_entropy_figure(run)
    figures["wse.png"] = wse_figure(run)
    figures["snapshots.png"] = snapshots_figure(run)
    figures["eval_pass_by_level.png"] = eval_by_level_figure(run)
    paths = []
    for name in PLOT_FILES:
        figures[name].savefig(out_dir / name, dpi=DPI)
        paths.append(out_dir / name)
    return paths


def write_comparison_plot(runs: Sequence[CurriculumRun], out_dir: str | Path) -> Path:
    """Write `eval_pass_by_level_compare.png` for `runs` into `out_dir`; returns its path."""
    path = Path(out_dir) / COMPARISON_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    eval_compare_figure(runs).savefig(path, dpi=DPI)
    return path


def summary_table(run: CurriculumRun) -> str:
    """Per-bin final-third means (share, weight, rollouts per prompt, reward), the WSE reduction, and
    eval pass@k pooled and per level at the first and last eval."""
    last_third = slice(2 * len(run.steps) // 3, None)
    steps = run.steps[last_third]
    columns = [("share", "share"), ("weight", "weight"), ("rollouts_per_prompt", "rollouts/prompt")]
    columns.append(("reward_mean", "reward"))
    means = {key: _nanmean(run.bins[key][last_third], axis=0) for key, _ in columns}
    label_width = max(len(label) for label in run.bin_labels) + 2
    lines = [
        f"{run.label}: steps {run.steps[0]}-{run.steps[-1]}, nbar = {run.nbar:g}",
        f"per-bin means over the final third (steps {steps[0]}-{steps[-1]}); bin 0 hardest",
        "bin".ljust(label_width) + "".join(f"{title:>17}" for _, title in columns),
    ]
    for b, label in enumerate(run.bin_labels):
        cells = "".join(
            f"{'-' if np.isnan(means[key][b]) else f'{means[key][b]:.3f}':>17}" for key, _ in columns
        )
        lines.append(label.ljust(label_width) + cells)
    _, _, reduction = run_wse(run)
    lines.append(f"WSE reduction vs uniform nbar: {100 * reduction:.1f}%")
    table = run.eval_pass
    if len(table):
        first, last = table.index[0], table.index[-1]
        lines.append(
            f"eval pass@{run.eval_k}".ljust(label_width) + f"{f'step {first}':>17}{f'step {last}':>17}"
        )
        for column in table.columns:
            name = "pooled" if column == "pooled" else f"level {column}"
            lines.append(
                name.ljust(label_width) + f"{table.at[first, column]:>17.3f}{table.at[last, column]:>17.3f}"
            )
    return "\n".join(lines)
