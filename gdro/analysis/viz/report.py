"""A run's plots as PNG files (`write_run_plots`, `write_comparison_plot`) and its text summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from gdro.analysis.viz.figures import (
    eval_by_level_figure,
    eval_compare_figure,
    finite_mean,
    heatmap_figure,
    lead_lag_figure,
    snapshots_figure,
    weight_entropy_figure,
    wse_figure,
)
from gdro.analysis.viz.run import CurriculumRun

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


def write_run_plots(
    run: CurriculumRun,
    out_dir: str | Path | None = None,
    names: Sequence[str] = PLOT_FILES,
    dpi: int = DPI,
) -> list[Path]:
    """Write the files `names` (default every one of `PLOT_FILES`) into `out_dir` (default RUN_DIR/plots/)
    at `dpi`; returns the paths."""
    if out_dir is None:
        if run.run_dir is None:
            raise ValueError("a run without a folder needs an out_dir")
        out_dir = run.run_dir / "plots"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    draw: dict[str, Callable[[], Figure]] = {
        name: partial(heatmap_figure, run, key) for key, name in HEATMAP_FILES.items()
    }
    draw["lead_lag_gap.png"] = partial(lead_lag_figure, run)
    draw["weight_entropy.png"] = partial(weight_entropy_figure, run)
    draw["wse.png"] = partial(wse_figure, run)
    draw["snapshots.png"] = partial(snapshots_figure, run)
    draw["eval_pass_by_level.png"] = partial(eval_by_level_figure, run)
    paths = []
    for name in names:
        draw[name]().savefig(out_dir / name, dpi=dpi)
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
    means = {key: finite_mean(run.bins[key][last_third], axis=0) for key, _ in columns}
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
    lines.append(f"WSE reduction vs uniform nbar: {100 * run.wse_reduction():.1f}%")
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
