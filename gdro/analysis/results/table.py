"""The results tables: per method, held-out metrics pooled and per level at the final and the best
checkpoint (mean and Student-t interval over seeds), the gain over the baseline paired by seed, and the
cost per run; written as Markdown.

Best checkpoint of a run, per metric: the eval step t >= 1 with the highest pooled value (the earliest
on a tie); its per-level values are read at that same step. Step 0 (before training) is never best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gdro.analysis.results.activity import ACTIVITY
from gdro.analysis.results.methods import METHOD_NAMES
from gdro.analysis.results.runs import RunResult
from gdro.analysis.results.stats import Estimate, mean_interval, paired_gain

CHECKPOINTS = ("final", "best")
EMPTY = Estimate(math.nan, math.nan, 0)  # no value: printed "-"


def checkpoint_values(run: RunResult, metric: str, checkpoint: str) -> pd.Series:
    """The metric's eval row (index "pooled", then the levels) at the final or the best checkpoint."""
    frame = run.evals[metric]
    if checkpoint == "final":
        return frame.loc[frame.index.max()]
    trained = frame[frame.index >= 1]
    if trained.empty:
        raise ValueError(f"{run.run_dir} has no {metric} evaluation after step 0")
    return trained.loc[trained["pooled"].idxmax()]


@dataclass
class MethodSummary:
    """One method over its seeds. values / gains: (metric, checkpoint) -> column ("pooled" or a level)
    -> Estimate; gains are paired by seed against the baseline (empty for the baseline itself)."""

    key: str
    name: str
    runs: list[RunResult]
    values: dict[tuple[str, str], dict[Any, Estimate]] = field(default_factory=dict)
    gains: dict[tuple[str, str], dict[Any, Estimate]] = field(default_factory=dict)
    rollouts: Estimate = EMPTY
    tokens: Estimate = EMPTY
    step_seconds: Estimate = EMPTY
    activity: dict[str, Estimate] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return [run.seed for run in self.runs]


def _per_seed(runs: Sequence[RunResult], metric: str, checkpoint: str) -> dict[int, pd.Series]:
    return {run.seed: checkpoint_values(run, metric, checkpoint) for run in runs}


def summarize(
    groups: dict[str, list[RunResult]],
    baseline: str,
    metrics: Sequence[str],
    confidence: float = 0.95,
) -> list[MethodSummary]:
    """A `MethodSummary` per group (runs by method key, `group_by_method`), gains against `baseline`."""
    if baseline not in groups:
        raise ValueError(f"no runs of the baseline {baseline!r}; methods found: {sorted(groups)}")
    summaries = []
    for key, runs in groups.items():
        summary = MethodSummary(key, METHOD_NAMES.get(key, key), runs)
        for metric in metrics:
            for checkpoint in CHECKPOINTS:
                rows = _per_seed(runs, metric, checkpoint)
                base = _per_seed(groups[baseline], metric, checkpoint)
                columns = next(iter(rows.values())).index
                summary.values[metric, checkpoint] = {
                    c: mean_interval([row[c] for row in rows.values()], confidence) for c in columns
                }
                if key != baseline:
                    summary.gains[metric, checkpoint] = {
                        c: paired_gain(
                            {s: row[c] for s, row in rows.items()},
                            {s: row[c] for s, row in base.items()},
                            confidence,
                        )
                        for c in columns
                    }
        summary.rollouts = mean_interval([run.rollouts for run in runs], confidence)
        summary.tokens = mean_interval([run.tokens for run in runs], confidence)
        summary.step_seconds = mean_interval([run.step_seconds for run in runs], confidence)
        for name in ACTIVITY:
            logged = [run.activity[name] for run in runs if not math.isnan(run.activity.get(name, math.nan))]
            summary.activity[name] = mean_interval(logged, confidence) if logged else EMPTY
        summaries.append(summary)
    return summaries


def format_estimate(estimate: Estimate, digits: int, signed: bool = False) -> str:
    """ "0.6000 ± 0.0123" (mean ± half-width), "+0.0100 ± 0.0040" when signed; "-" when empty."""
    if estimate.n == 0:
        return "-"
    rounded = round(estimate.mean, digits) or 0.0  # -0.0 is falsy: a gain that rounds to 0 reads +0.000
    mean = f"{rounded:+.{digits}f}" if signed else f"{rounded:.{digits}f}"
    if math.isnan(estimate.half_width):
        return mean
    return f"{mean} ± {estimate.half_width:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def pooled_table(summaries: Sequence[MethodSummary], metric: str, baseline_name: str) -> list[str]:
    """Per method: seeds, the pooled metric at the final and the best checkpoint, each with its gain."""
    header = ["method", "seeds"]
    for checkpoint in CHECKPOINTS:
        header += [f"{metric} {checkpoint}", f"gain over {baseline_name} ({checkpoint})"]
    rows = []
    for s in summaries:
        row = [s.name, str(len(s.runs))]
        for checkpoint in CHECKPOINTS:
            gain = s.gains.get((metric, checkpoint))
            row += [
                format_estimate(s.values[metric, checkpoint]["pooled"], 4),
                "(baseline)" if gain is None else format_estimate(gain["pooled"], 4, signed=True),
            ]
        rows.append(row)
    return _table(header, rows)


def level_table(summaries: Sequence[MethodSummary], metric: str, checkpoint: str, gains: bool) -> list[str]:
    """Per method and latent level: the metric (or its paired gain) at one checkpoint, 3 decimals."""
    source = [
        (s, s.gains.get((metric, checkpoint)) if gains else s.values[metric, checkpoint]) for s in summaries
    ]
    levels = [c for c in summaries[0].values[metric, checkpoint] if c != "pooled"]
    rows = [
        [s.name, *(format_estimate(cells[level], 3, signed=gains) for level in levels)]
        for s, cells in source
        if cells is not None
    ]
    return _table(["method", *(f"L{level}" for level in levels)], rows)


def cost_table(summaries: Sequence[MethodSummary]) -> list[str]:
    """Per method: rollouts trained (a filter's rejects not included: they are in the equal-compute
    table's generated rollouts), generated tokens and the training steps' wall time per run."""
    rows = [
        [
            s.name,
            format_estimate(s.rollouts, 0),
            format_estimate(s.tokens, 0),
            format_estimate(s.step_seconds, 2),
        ]
        for s in summaries
    ]
    return _table(
        ["method", "rollouts trained per run", "generated tokens per run", "step wall time per run (s)"], rows
    )


def activity_table(summaries: Sequence[MethodSummary]) -> list[str]:
    """Per method: what its adversaries did (`gdro.analysis.results.activity.ACTIVITY`), mean over seeds."""
    rows = [
        [
            s.name,
            format_estimate(s.activity["weight_max"], 3),
            f"{format_estimate(s.activity['bin_rollouts_min'], 2)} to {format_estimate(s.activity['bin_rollouts_max'], 2)}",
            f"{s.activity['surrogate_abs'].mean:.1e}" if s.activity["surrogate_abs"].n else "-",
        ]
        for s in summaries
    ]
    return _table(
        ["method", "largest w_i", "per-bin mean n_i, lowest to highest", "mean abs surrogate"], rows
    )
