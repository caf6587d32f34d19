"""Methods compared at equal generated compute: the held-out metric against the rollouts generated so far.

Per run, its evaluations are points (x_j, y_j): x_j = compute/rollouts_generated_total of the eval record
(0 at step 0; every rollout generated, also those a filter discarded), y_j the pooled metric. With B the
run's budget (`trainer.budget_rollouts`; without one, its last x):

    value at budget   y of the last evaluation (the one at the budget for a budgeted run)
    AUC / B           (1 / B) * integral_0^B y(x) dx, y piecewise linear through the points, cut at B
                      (interpolated) and held at its last value when the run stopped short of B (the
                      steps cap): the mean metric over the budget, in the metric's units

Each with the gain over GRPO and over DAPO dynamic sampling (when its runs exist) paired by seed
(`gdro.analysis.results.stats.paired_gain`). What each method spent, per run, then mean over seeds: the
informative fraction (mean over steps of rollouts/informative_fraction), generation rounds per step
(compute/gen_batches), generated tokens per step, optimizer steps taken (the run's last step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gdro.analysis.results.methods import GRPO, METHODS
from gdro.analysis.results.runs import RunResult
from gdro.analysis.results.stats import Estimate, mean_interval, paired_gain
from gdro.analysis.results.table import MethodSummary, format_estimate

DAPO_CHOICE = "dapo_dynamic_sampling"
ROLLOUTS_KEY = "compute/rollouts_generated_total"
TOKENS_KEY = "compute/tokens_generated_total"
SPEND = ("informative_fraction", "gen_batches", "tokens_per_step", "steps")


def references() -> list[tuple[str, str]]:
    """(method key, name) of the methods gains are taken over: GRPO, then DAPO dynamic sampling when
    conf/method/ has it."""
    dapo = [(m.key, m.name) for m in METHODS if m.choice == DAPO_CHOICE]
    return [(GRPO.key, GRPO.name), *dapo]


def compute_points(run: RunResult, metric: str, key: str = ROLLOUTS_KEY) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the run's evaluations: the generated total `key` at each eval step (0 at step 0; NaN
    where a record lacks it), the pooled metric."""
    totals = {r["step"]: r.get(key) for r in run.records}
    pooled = run.evals[metric]["pooled"]
    x = [0.0 if step == 0 else _float(totals.get(step)) for step in pooled.index]
    return np.array(x, dtype=np.float64), pooled.to_numpy(dtype=np.float64)


def _float(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def run_budget(run: RunResult) -> float:
    """B: trainer.budget_rollouts, or the run's generated rollouts when it has no budget."""
    budget = run.config["trainer"].get("budget_rollouts")
    return float(budget if budget is not None else run.totals["generated_rollouts"])


def normalized_auc(x: np.ndarray, y: np.ndarray, budget: float) -> float:
    """(1 / B) integral_0^B y dx of the piecewise-linear curve (module docstring)."""
    if x[-1] < budget:
        x, y = np.append(x, budget), np.append(y, y[-1])
    inside = x < budget
    end = float(np.interp(budget, x, y))
    xs, ys = np.append(x[inside], budget), np.append(y[inside], end)
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0) / budget)


@dataclass
class ComputeSummary:
    """One method at equal compute: per seed the value at budget and the AUC / B, their estimates and
    gains over each reference (name -> (value gain, AUC gain)), what it spent, its mean generated rollouts."""

    key: str
    name: str
    runs: list[RunResult]
    at_budget: dict[int, float]
    auc: dict[int, float]
    gains: dict[str, tuple[Estimate, Estimate]] = field(default_factory=dict)
    spend: dict[str, Estimate] = field(default_factory=dict)

    @property
    def generated(self) -> Estimate:
        return mean_interval([run.totals["generated_rollouts"] for run in self.runs])


def summarize_compute(summaries: Sequence[MethodSummary], metric: str) -> list[ComputeSummary]:
    """A `ComputeSummary` per method of `summaries`, gains over the `references` that have runs."""
    out = []
    for summary in summaries:
        at_budget, auc = {}, {}
        for run in summary.runs:
            x, y = compute_points(run, metric)
            at_budget[run.seed] = float(y[-1])
            auc[run.seed] = normalized_auc(x, y, run_budget(run))
        spend = {
            name: mean_interval([float(v) for run in summary.runs if not _missing(v := run.totals.get(name))])
            for name in SPEND
        }
        out.append(ComputeSummary(summary.key, summary.name, summary.runs, at_budget, auc, spend=spend))
    by_key = {c.key: c for c in out}
    for reference_key, reference_name in references():
        reference = by_key.get(reference_key)
        if reference is None:
            continue
        for c in out:
            if c.key != reference_key:
                c.gains[reference_name] = (
                    paired_gain(c.at_budget, reference.at_budget),
                    paired_gain(c.auc, reference.auc),
                )
    return out


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _row_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def equal_compute_table(compute: Sequence[ComputeSummary], metric: str) -> list[str]:
    """Per method: seeds, generated rollouts, the value at budget and AUC / B, each with its gains over
    the references that have runs (a reference's own cell reads "(reference)")."""
    names = [name for _, name in references() if any(name in c.gains for c in compute)]
    header = ["method", "seeds", "generated rollouts", f"{metric} at budget"]
    header += [f"gain over {name}" for name in names] + ["AUC / B"]
    header += [f"AUC gain over {name}" for name in names]
    rows = []
    for c in compute:
        value = [_gain(c, name, 0) for name in names]
        area = [_gain(c, name, 1) for name in names]
        row = [c.name, str(len(c.runs)), format_estimate(c.generated, 0)]
        row += [format_estimate(mean_interval(list(c.at_budget.values())), 4), *value]
        row += [format_estimate(mean_interval(list(c.auc.values())), 4), *area]
        rows.append(row)
    return _row_table(header, rows)


def _gain(c: ComputeSummary, name: str, index: int) -> str:
    gains = c.gains.get(name)
    return "(reference)" if gains is None else format_estimate(gains[index], 4, signed=True)


def spend_table(compute: Sequence[ComputeSummary]) -> list[str]:
    """Per method: informative fraction, generation rounds per step, tokens per step, optimizer steps."""
    rows = [
        [
            c.name,
            format_estimate(c.spend["informative_fraction"], 3),
            format_estimate(c.spend["gen_batches"], 2),
            format_estimate(c.spend["tokens_per_step"], 0),
            format_estimate(c.spend["steps"], 0),
        ]
        for c in compute
    ]
    header = ["method", "informative fraction", "generation rounds per step", "tokens per step", "steps"]
    return _row_table(header, rows)
