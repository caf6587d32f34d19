"""Figures of the results: one per metric comparing methods (mean over seeds with its Student-t band),
and the curriculum plots of one seed per method (`gdro.analysis.viz.write_run_plots`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from gdro.analysis.results.methods import method_slug
from gdro.analysis.results.runs import RunResult
from gdro.analysis.results.stats import mean_interval
from gdro.analysis.results.table import MethodSummary
from gdro.analysis.viz import load_run, run_from_records, write_run_plots

DPI = 100
# The curriculum plots kept per method (of `gdro.analysis.viz.PLOT_FILES`), drawn at CURRICULUM_DPI to stay small.
CURRICULUM_PLOTS = ("heatmap_share.png", "heatmap_weight.png", "heatmap_rollouts.png", "snapshots.png")
CURRICULUM_DPI = 70


def metric_file(metric: str) -> str:
    """ "pass@8" -> "pass_at_8.png"."""
    return metric.replace("@", "_at_") + ".png"


def _curve(runs: Sequence[RunResult], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eval steps every seed has, the mean pooled metric over seeds there, and its interval half-width (0
    for one seed). A run limited by a compute budget evaluates at fractions of it, which a filter method's
    seeds reach at different steps: their common steps are few (its curve over generated rollouts is the
    equal-compute figure's)."""
    frames = [run.evals[metric]["pooled"] for run in runs]
    steps = np.array(sorted(set.intersection(*(set(frame.index) for frame in frames))))
    estimates = [mean_interval([frame[step] for frame in frames]) for step in steps]
    means = np.array([e.mean for e in estimates])
    half_widths = np.nan_to_num(np.array([e.half_width for e in estimates]))
    return steps, means, half_widths


def metric_figure(summaries: Sequence[MethodSummary], metric: str) -> Figure:
    """Left: the pooled held-out metric over training steps, one line per method (mean over seeds, band:
    95% interval). Right: the metric per latent level at the final checkpoint, mean and interval."""
    fig = Figure(figsize=(13, 5), layout="constrained")
    over_steps, per_level = fig.subplots(1, 2, width_ratios=(1, 1.2))
    colors = matplotlib.colormaps["tab10"](np.arange(len(summaries)) % 10)
    offsets = np.linspace(-0.3, 0.3, len(summaries)) if len(summaries) > 1 else np.zeros(1)
    for summary, color, offset in zip(summaries, colors, offsets, strict=True):
        steps, means, half_widths = _curve(summary.runs, metric)
        over_steps.plot(
            steps, means, color=color, linewidth=1.6, label=f"{summary.name} ({len(summary.runs)} seeds)"
        )
        over_steps.fill_between(steps, means - half_widths, means + half_widths, color=color, alpha=0.2)
        cells = summary.values[metric, "final"]
        levels = [c for c in cells if c != "pooled"]
        per_level.errorbar(
            np.array(levels) + offset,
            [cells[level].mean for level in levels],
            yerr=np.nan_to_num([cells[level].half_width for level in levels]),
            fmt="o",
            markersize=3,
            capsize=2,
            color=color,
        )
    over_steps.set_xlabel("training step (step 0: before the first update)")
    over_steps.set_ylabel(f"held-out {metric}, pooled over levels")
    over_steps.set_title(f"pooled held-out {metric}: mean over seeds, band: 95% t interval")
    over_steps.grid(alpha=0.3)
    over_steps.legend(fontsize=8, loc="upper left")
    per_level.set_xlabel("latent level (0 easiest)")
    per_level.set_ylabel(f"held-out {metric} at the final checkpoint")
    per_level.set_title("per level, final checkpoint: mean and 95% t interval over seeds")
    per_level.set_ylim(-0.02, 1.02)
    per_level.grid(alpha=0.3)
    return fig


def write_figures(
    draw: Callable[[Sequence[MethodSummary], str], Figure],
    file_name: Callable[[str], str],
    summaries: Sequence[MethodSummary],
    metrics: Sequence[str],
    out_dir: Path,
) -> list[Path]:
    """`draw(summaries, metric)` for each metric into out_dir/<file_name(metric)>; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric in metrics:
        path = out_dir / file_name(metric)
        draw(summaries, metric).savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def write_curriculum_plots(
    summaries: Sequence[MethodSummary], out_dir: Path
) -> dict[str, tuple[int, list[Path]]]:
    """`CURRICULUM_PLOTS` of each method's lowest seed into out_dir/<method slug>/; returns method key ->
    (seed, paths)."""
    written = {}
    for summary in summaries:
        run = summary.runs[0]
        target = out_dir / method_slug(summary.key)
        folder = Path(run.run_dir) if isinstance(run.run_dir, Path) and run.run_dir.is_dir() else None
        plotted = run_from_records(run.records, run.config, folder) if run.records else load_run(run.run_dir)
        paths = write_run_plots(plotted, target, CURRICULUM_PLOTS, CURRICULUM_DPI)
        written[summary.key] = (run.seed, paths)
    return written
