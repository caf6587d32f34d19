"""Figures of the emergent curriculum (docs/algorithm.md §8): step x bin heatmaps, the lead-lag gap, the
weight entropy, the weighted standard error, snapshots per bin, and eval pass@k per level (one run or
several).

They draw what `CurriculumRun` holds, the per-bin series and the measures logged each step
(`gdro.core.curriculum_metrics`), and compute nothing but rolling means for display. Figures are built
on `matplotlib.figure.Figure` without pyplot (rendered by the Agg canvas, no display, nothing to close).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from gdro.analysis.viz.run import CurriculumRun


def finite_mean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean over finite entries; NaN where there are none (without numpy's all-NaN warning)."""
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, values, 0.0).sum(axis=axis) / finite.sum(axis=axis)


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
    "tokens": _HeatmapSpec("generated tokens per bin", "completion tokens of the bin's rollouts", "viridis"),
    "lead_lag_gap": _HeatmapSpec(
        "weight minus share per bin q(b) - qhat(b)", "q(b) - qhat(b) (> 0: weighted above its data)", "RdBu_r"
    ),
}


def heatmap_figure(run: CurriculumRun, key: str) -> Figure:
    """Step x bin heatmap of `bins/<key>` (one of `BIN_SERIES`); grey where the value is null (bin empty).

    Bin 0 (hardest) is the top row. Rollouts are coloured around the budget nbar (white); rewards on
    the fixed range [-1, 1]; the weight-minus-share gap symmetrically around 0 (white).
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
    elif key == "lead_lag_gap":
        largest = np.nanmax(np.abs(values), initial=0.0)
        norm = Normalize(-largest, largest) if largest > 0 else Normalize(-1.0, 1.0)
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
    gap = run.measures["mean_bin_gap"]
    window = _window(run)
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    _trace(top, run.steps, run.measures["mean_bin_share"], window, "data: share-weighted", "tab:blue")
    _trace(top, run.steps, run.measures["mean_bin_weight"], window, "adversary: weight-weighted", "tab:red")
    top.set_ylabel("mean bin index (bins; 0 = hardest)")
    top.legend(loc="best", fontsize=8)
    top.set_title("Where the batch's prompts sit and where the data adversary puts its weight")
    _trace(bottom, run.steps, gap, window, "gap = weight - data", "tab:purple")
    bottom.axhline(0.0, color="black", linewidth=0.8, linestyle="--", label="no lead or lag")
    bottom.set_ylabel("gap (bins; < 0: weight leans harder)")
    bottom.set_xlabel("training step")
    bottom.legend(loc="best", fontsize=8)
    final = gap[2 * len(gap) // 3 :]
    bottom.set_title(f"Lead-lag gap; mean over the final third of steps: {finite_mean(final):+.2f} bins")
    fig.suptitle(run.label)
    return fig


def weight_entropy_figure(run: CurriculumRun) -> Figure:
    """Entropy H of the adversary's bin weights (nats) and the effective support exp(H) (bins)."""
    window = _window(run)
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    _trace(top, run.steps, run.measures["weight_entropy"], window, "H = -sum_b q(b) log q(b)", "tab:green")
    top.axhline(
        math.log(run.num_bins),
        color="gray",
        linestyle="--",
        label=f"log B (uniform over {run.num_bins} bins)",
    )
    top.set_ylabel("weight entropy H (nats)")
    top.legend(loc="best", fontsize=8)
    top.set_title("Entropy of the data adversary's bin weights")
    _trace(bottom, run.steps, run.measures["effective_bins"], window, "exp(H)", "tab:orange")
    bottom.axhline(run.num_bins, color="gray", linestyle="--", label=f"B = {run.num_bins} bins")
    bottom.set_ylabel("effective support exp(H) (bins)")
    bottom.set_xlabel("training step")
    bottom.legend(loc="best", fontsize=8)
    bottom.set_title("Effective number of bins carrying weight")
    fig.suptitle(run.label)
    return fig


def wse_figure(run: CurriculumRun) -> Figure:
    """WSE_t of the run's allocation against WSE_uniform_t (nbar rollouts everywhere)."""
    window = _window(run)
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.add_subplot()
    uniform_label = f"uniform: every prompt nbar = {run.nbar:g} rollouts"
    _trace(ax, run.steps, run.measures["wse_uniform"], window, uniform_label, "tab:gray")
    _trace(ax, run.steps, run.measures["wse"], window, "this run's rollouts n_b", "tab:blue")
    ax.set_xlabel("training step")
    ax.set_ylabel("WSE = sum_b q(b) sigma_b / sqrt(n_b)\n(reward units, +1/-1 scale)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(
        f"{run.label}: weighted standard-error proxy\n"
        f"mean reduction vs uniform nbar: {100 * run.wse_reduction():.1f}%  "
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
            means = finite_mean(run.bins[key][window], axis=0)
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
