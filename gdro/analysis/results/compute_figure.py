"""The held-out metric against generated compute, one line per method (mean over seeds, band: the 95%
Student-t interval): left against rollouts generated, right against completion tokens when the runs
count them (not the simulator). The j-th evaluation of every seed is averaged, x included: with
`trainer.eval_every_budget` every seed evaluates at the same fractions of the budget."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from gdro.analysis.results.equal_compute import ROLLOUTS_KEY, TOKENS_KEY, compute_points
from gdro.analysis.results.runs import RunResult
from gdro.analysis.results.stats import mean_interval
from gdro.analysis.results.table import MethodSummary


def compute_file(metric: str) -> str:
    """ "pass@8" -> "compute_pass_at_8.png"."""
    return "compute_" + metric.replace("@", "_at_") + ".png"


def compute_curve(
    runs: Sequence[RunResult], metric: str, key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (mean over seeds of the generated total at the j-th evaluation), the mean metric and its
    interval half-width (0 for one seed), over the evaluations every seed has."""
    points = [compute_points(run, metric, key) for run in runs]
    count = min(len(x) for x, _ in points)
    x = np.array([np.mean([p[0][j] for p in points]) for j in range(count)])
    estimates = [mean_interval([p[1][j] for p in points]) for j in range(count)]
    means = np.array([e.mean for e in estimates])
    return x, means, np.nan_to_num(np.array([e.half_width for e in estimates]))


def has_tokens(summaries: Sequence[MethodSummary]) -> bool:
    """Whether every run counts its generated tokens (the model policies)."""
    return all(r.get(TOKENS_KEY) is not None for s in summaries for run in s.runs for r in run.records[-1:])


def compute_figure(summaries: Sequence[MethodSummary], metric: str) -> Figure:
    """The figure of the module docstring."""
    keys = [(ROLLOUTS_KEY, "rollouts generated")]
    if has_tokens(summaries):
        keys.append((TOKENS_KEY, "completion tokens generated"))
    fig = Figure(figsize=(6.5 * len(keys), 5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    colors = matplotlib.colormaps["tab10"](np.arange(len(summaries)) % 10)
    for axis, (key, label) in zip(axes, keys, strict=True):
        for summary, color in zip(summaries, colors, strict=True):
            x, means, half = compute_curve(summary.runs, metric, key)
            axis.plot(
                x, means, color=color, linewidth=1.6, label=f"{summary.name} ({len(summary.runs)} seeds)"
            )
            axis.fill_between(x, means - half, means + half, color=color, alpha=0.2)
        axis.set_xlabel(f"{label} (cumulative, discarded ones included)")
        axis.set_ylabel(f"held-out {metric}, pooled over levels")
        axis.set_title(f"{metric} at equal generated compute: mean, band: 95% t interval")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    return fig
