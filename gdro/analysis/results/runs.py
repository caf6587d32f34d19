"""Run folders as results: held-out evaluations per step, cost, and the method and seed they belong to.

A run folder holds `config.json` (the resolved config) and `metrics.jsonl` (`gdro.train.io.metrics`): eval
steps carry `eval/<metric>` pooled, `eval/<metric>/level_<l>` per level (the embedded task) or
`eval/<benchmark>/<metric>` per benchmark (`gdro.data.benchmarks`), metric "pass@k" or "mean@k". Only
`eval/` is read (not `eval_rollout/`). A run counts when its last record ends it (step `trainer.steps`, or
its compute budget reached: `gdro.train.io.run_folder.ends_run`). The same records and config from W&B
make a `RunResult` through `result_from_records`, and a compact record (`gdro.analysis.results.records`)
through `result_from_compact`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gdro.analysis.results.activity import adversary_activity
from gdro.analysis.results.methods import METHODS, method_key
from gdro.analysis.results.records import read_record, run_totals
from gdro.config.store import with_defaults
from gdro.train.io.metrics import read_metrics
from gdro.train.io.run_folder import ends_run

_EVAL_KEY = re.compile(r"^eval/(?:([a-z][a-z0-9_]*)/)?((?:pass|mean)@\d+)(?:/level_(\d+))?$")
# Config keys that may differ between the seeds of one method.
PER_RUN_KEYS = ("seed", "resume")


class UnfinishedRun(ValueError):
    """A run folder whose metrics.jsonl stops before `trainer.steps` (still running, or killed)."""


@dataclass
class RunResult:
    """One finished run.

    run_dir: the run folder, or "wandb:<entity>/<project>/<id>" for a run read from W&B;
    evals: metric ("pass@8") -> DataFrame indexed by eval step, columns "pooled", then the levels (int),
    then the benchmarks (str, "aime" among them: the mean of aime24 and aime25);
    rollouts: sum over steps of rollouts/total; tokens: sum of tokens/generated; step_seconds: sum of
    time/step_seconds (the training steps' wall time, evaluation and checkpoints excluded);
    activity: what the adversaries did over the run (`adversary_activity`);
    totals: the run's sums and means per step (`gdro.analysis.results.records.run_totals`): generated
    rollouts and tokens, steps taken, informative fraction, generation rounds, tokens per step;
    records: its metrics records (thinned when read from a compact record), for the curriculum plots.
    """

    run_dir: Path | str
    config: dict[str, Any]
    method: str
    seed: int
    steps: int
    evals: dict[str, pd.DataFrame]
    rollouts: int
    tokens: int
    step_seconds: float
    activity: dict[str, float] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)


def _eval_tables(records: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    rows: dict[str, dict[int, dict[Any, float]]] = {}
    for record in records:
        for key, value in record.items():
            match = _EVAL_KEY.match(key)
            if match is None or value is None:
                continue
            benchmark, metric, level = match.groups()
            column = benchmark if benchmark is not None else "pooled" if level is None else int(level)
            rows.setdefault(metric, {}).setdefault(record["step"], {})[column] = float(value)
    tables = {}
    for metric, by_step in rows.items():
        frame = pd.DataFrame.from_dict(by_step, orient="index").sort_index()
        levels = sorted(c for c in frame.columns if isinstance(c, int))
        benchmarks = sorted(c for c in frame.columns if isinstance(c, str) and c != "pooled")
        tables[metric] = frame.reindex(columns=["pooled", *levels, *benchmarks])
    return tables


def load_result(run_dir: str | Path) -> RunResult:
    """Read a finished run folder; a run whose metrics stop before `trainer.steps` is refused."""
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    return result_from_records(read_metrics(run_dir / "metrics.jsonl"), config, run_dir)


def result_from_records(
    records: list[dict[str, Any]],
    config: dict[str, Any],
    run_dir: Path | str,
    totals: dict[str, Any] | None = None,
) -> RunResult:
    """A `RunResult` from a run's metrics records (in step order) and resolved config; refused (ValueError)
    when the records stop before the run's end. `totals`: the full run's (`run_totals`) when `records` are
    thinned; default computed from `records`."""
    if not records or not ends_run(records[-1], config):
        last = records[-1]["step"] if records else None
        steps = config["trainer"]["steps"]
        raise UnfinishedRun(f"{run_dir} is unfinished: its last step is {last}, trainer.steps = {steps}")
    trained = [r for r in records if r["step"] >= 1]
    totals = totals if totals is not None else run_totals(records)
    return RunResult(
        run_dir=run_dir,
        config=config,
        method=method_key(config),
        seed=int(config["seed"]),
        steps=int(records[-1]["step"]),
        evals=_eval_tables(records),
        rollouts=int(totals["rollouts"]),
        tokens=int(totals["tokens"]),
        step_seconds=float(totals["step_seconds"]),
        activity=totals.get("activity") or adversary_activity(trained),
        totals=totals,
        records=records,
    )


def result_from_compact(path: Path) -> RunResult:
    """A `RunResult` from a compact record (`gdro.analysis.results.records`)."""
    record = read_record(path)
    return result_from_records(record["records"], record["config"], path, record["totals"])


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every folder under `root` (itself included) holding both metrics.jsonl and config.json, sorted."""
    root = Path(root)
    return sorted(
        path.parent for path in root.rglob("metrics.jsonl") if (path.parent / "config.json").exists()
    )


def _shared_config(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key not in PER_RUN_KEYS}


def _differing_keys(first: Any, other: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested config dicts differ."""
    if isinstance(first, dict) and isinstance(other, dict):
        keys = sorted(first.keys() | other.keys())
        return [d for key in keys for d in _differing_keys(first.get(key), other.get(key), f"{prefix}{key}.")]
    return [] if first == other else [prefix.rstrip(".")]


def group_by_method(results: Iterable[RunResult]) -> dict[str, list[RunResult]]:
    """Runs per method key, in the order of `METHODS` (then other keys sorted), each sorted by seed.

    The runs of one method must share their whole config but the seed (and `resume`), a key a run lacks
    counting as its default (`gdro.config.store.with_defaults`: runs recorded before it was added), and no
    seed may repeat: otherwise a ValueError names the keys or the seed.
    """
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.method, []).append(result)
    for key, runs in groups.items():
        runs.sort(key=lambda r: r.seed)
        reference = _shared_config(with_defaults(runs[0].config))
        for run in runs[1:]:
            differing = _differing_keys(reference, _shared_config(with_defaults(run.config)))
            if differing:
                raise ValueError(
                    f"runs of {key!r} differ in more than the seed: {run.run_dir} and {runs[0].run_dir} "
                    f"in {', '.join(differing)}"
                )
        seeds = [run.seed for run in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"runs of {key!r} repeat a seed: {seeds}")
    known = [method.key for method in METHODS if method.key in groups]
    return {key: groups[key] for key in [*known, *sorted(groups.keys() - set(known))]}
