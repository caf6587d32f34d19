"""One run's emergent curriculum as arrays, from a run folder, a W&B history or records in memory.

Input is the `metrics.jsonl` contract of `gdro/train/io/metrics.py`: step 0 holds the evaluation before
training; steps t >= 1 the per-bin lists `bins/<series>` (indexed by bin, bin 0 hardest, null where a
bin is absent) and the docs/algorithm.md §8 measures `curriculum/<name>`, computed per step by the core
(`gdro.core.curriculum_metrics`); nothing here recomputes them. Metrics files written before the
measures were logged (no `curriculum/*` keys) are not supported: rerun them.

The training loop appends each record to a `CurriculumHistory` and draws from it, so it never re-reads
`metrics.jsonl`; `load_run` and `run_from_records` go through the same history.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gdro.analysis.results.methods import method_key
from gdro.core.curriculum import BIN_SERIES
from gdro.core.curriculum_metrics import CURRICULUM_MEASURES, wse_reduction
from gdro.core.difficulty import BIN_EDGE_PRESETS

_EVAL_KEY = re.compile(r"^eval/(pass|mean)@(\d+)(?:/level_(\d+))?$")
_WANDB_BIN_KEY = re.compile(r"^(bins/\w+)/(\d+)$")


@dataclass
class CurriculumRun:
    """One run's curriculum, ready to plot.

    steps: [T] training steps t >= 1; bins: series name (`BIN_SERIES`) -> [T, G] float (NaN where
    null); G = B bins, plus the excluded group last when `classifier.exclude_extremes` is on;
    measures: name (`CURRICULUM_MEASURES`) -> [T] float (NaN where null); mu: [T] shadow price (NaN
    without one); eval_pass / eval_mean: pass@k and mean@k per eval step (index) and column "pooled"
    or latent level l (int, level 0 easiest); nbar: the allocator's mean rollouts per prompt.
    """

    run_dir: Path | None
    label: str
    config: dict[str, Any]
    nbar: float
    steps: np.ndarray
    bins: dict[str, np.ndarray]
    measures: dict[str, np.ndarray]
    mu: np.ndarray
    num_bins: int
    bin_labels: list[str]
    eval_k: int
    eval_pass: pd.DataFrame
    eval_mean: pd.DataFrame

    def wse_reduction(self) -> float:
        """1 - mean_t WSE_t / mean_t WSE_uniform_t over the run's steps (a fraction; see the core)."""
        return wse_reduction(self.measures["wse"], self.measures["wse_uniform"])


def run_label(config: dict[str, Any]) -> str:
    """E.g. "prompt_gdro + rollout_gdro (seed 0)"; a resampling sampler is marked "[resample]"."""
    return f"{method_key(config)} (seed {config['seed']})"


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


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


class CurriculumHistory:
    """The records of a run, appended one at a time and kept as per-step rows for `run()`.

    Training records are those with step >= 1 and `bins/share`: the first fixes which `bins/<series>`
    are kept (a later record without one of them reads as all NaN there) and must carry every
    `curriculum/<name>`. Any record may carry `eval/pass@k[/level_l]` and `eval/mean@k[...]`.
    """

    def __init__(self, config: dict[str, Any], run_dir: Path | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.steps: list[int] = []
        self.mu: list[float] = []
        self.bins: dict[str, list[list[float]]] = {}
        self.measures: dict[str, list[float]] = {name: [] for name in CURRICULUM_MEASURES}
        self.eval_k = 0
        self.eval_rows: dict[str, dict[int, dict[Any, float]]] = {"pass": {}, "mean": {}}

    def append(self, record: dict[str, Any]) -> None:
        """Add one metrics record."""
        self._append_eval(record)
        if record["step"] < 1 or "bins/share" not in record:
            return
        if not self.steps:
            missing = [
                f"curriculum/{name}" for name in CURRICULUM_MEASURES if f"curriculum/{name}" not in record
            ]
            if missing:
                raise ValueError(
                    f"step {record['step']} of {self.run_dir} has no {', '.join(missing)}: metrics written "
                    "before the per-step curriculum measures are not supported; rerun the run"
                )
            self.bins = {name: [] for name in BIN_SERIES if f"bins/{name}" in record}
        self.steps.append(int(record["step"]))
        self.mu.append(_float(record.get("alloc/mu")))
        num_groups = len(record["bins/share"])
        for name, rows in self.bins.items():
            rows.append([_float(v) for v in record.get(f"bins/{name}") or [None] * num_groups])
        for name, values in self.measures.items():
            values.append(_float(record[f"curriculum/{name}"]))

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        """Add records in order."""
        for record in records:
            self.append(record)

    def _append_eval(self, record: dict[str, Any]) -> None:
        for key, value in record.items():
            match = _EVAL_KEY.match(key)
            if match is None or value is None:
                continue
            kind, level = match.group(1), match.group(3)
            self.eval_k = int(match.group(2))
            column = "pooled" if level is None else int(level)
            self.eval_rows[kind].setdefault(record["step"], {})[column] = float(value)

    def _eval_table(self, kind: str) -> pd.DataFrame:
        """Index eval step, columns "pooled" then levels ascending."""
        frame = pd.DataFrame.from_dict(self.eval_rows[kind], orient="index").sort_index()
        levels = sorted(c for c in frame.columns if c != "pooled")
        frame = frame.reindex(columns=["pooled", *levels])
        frame.index.name = "step"
        return frame

    def run(self) -> CurriculumRun:
        """The history so far as a `CurriculumRun`."""
        if not self.steps:
            raise ValueError(
                f"no training steps (step >= 1 with bins/share) in the records of {self.run_dir}"
            )
        bins = {name: np.array(rows, dtype=np.float64) for name, rows in self.bins.items()}
        num_groups = bins["share"].shape[1]
        classifier = self.config.get("classifier", {})
        num_bins = num_groups - 1 if classifier.get("exclude_extremes", False) else num_groups
        return CurriculumRun(
            run_dir=self.run_dir,
            label=run_label(self.config),
            config=self.config,
            nbar=float(self.config["allocator"]["nbar"]),
            steps=np.array(self.steps, dtype=np.int64),
            bins=bins,
            measures={name: np.array(values, dtype=np.float64) for name, values in self.measures.items()},
            mu=np.array(self.mu, dtype=np.float64),
            num_bins=num_bins,
            bin_labels=_bin_labels(classifier, num_bins, num_groups),
            eval_k=self.eval_k,
            eval_pass=self._eval_table("pass"),
            eval_mean=self._eval_table("mean"),
        )


def run_from_records(
    records: Iterable[dict[str, Any]], config: dict[str, Any], run_dir: Path | None = None
) -> CurriculumRun:
    """A `CurriculumRun` from metrics records (the lines of `metrics.jsonl`) and the resolved config."""
    history = CurriculumHistory(config, run_dir)
    history.extend(records)
    return history.run()


def load_run(run_dir: str | Path) -> CurriculumRun:
    """Read RUN_DIR/metrics.jsonl and RUN_DIR/config.json."""
    run_dir = Path(run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    config = json.loads((run_dir / "config.json").read_text())
    return run_from_records(records, config, run_dir)


def records_from_wandb_history(history: pd.DataFrame) -> list[dict[str, Any]]:
    """Metrics records from a W&B history table (`wandb.Api().run(path).scan_history()` as a DataFrame).

    W&B holds the per-bin lists flattened (`bins/share/<b>`, see `gdro.train.io.loggers.flatten`) and the
    step in `_step`; this regroups them into lists (None where missing) and drops NaN scalars. W&B never
    saw the nulls, so a training step's `bins/<series>` or `curriculum/<name>` without any value comes
    back all null.
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
        if "bins/share" in record:
            for name in BIN_SERIES:
                record.setdefault(f"bins/{name}", [None] * num_groups)
            for name in CURRICULUM_MEASURES:
                record.setdefault(f"curriculum/{name}", None)
        records.append(record)
    return records
