"""What a run folder holds: `config.json` (the resolved config it was trained with) and `metrics.jsonl`
(`gdro.train.io.metrics`), and the one rule for "this folder holds this run, finished".

The training loop asks it under `resume=auto` (a finished run is left as it is: a requeued job or a rerun
sweep skips it in seconds), and the simulator sweep (`gdro.analysis.results.sweep`) asks it to retrain
only the runs that are not finished.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gdro.train.budget import ComputeBudget
from gdro.train.io.metrics import read_metrics

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def read_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config `run_dir` was trained with; None when it has none yet."""
    path = run_dir / CONFIG_FILE
    return json.loads(path.read_text()) if path.exists() else None


def same_run(written: dict[str, Any], config: dict[str, Any]) -> bool:
    """Two resolved configs describe the same run: equal in every key but `resume` (how the run was
    started or continued, not what it computes)."""
    return {k: v for k, v in written.items() if k != "resume"} == {
        k: v for k, v in config.items() if k != "resume"
    }


def config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the resolved config but `resume` (`same_run`'s rule), recorded in checkpoint manifests."""
    kept = {k: v for k, v in config.items() if k != "resume"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def is_finished(run_dir: Path, config: dict[str, Any]) -> bool:
    """`run_dir` holds this run (`same_run` as its config.json), finished: its metrics.jsonl ends at step
    trainer.steps, or, with a compute budget (`gdro.train.budget`), at a step whose generated total
    reached it."""
    written, metrics_path = read_config(run_dir), run_dir / METRICS_FILE
    if written is None or not same_run(written, config) or not metrics_path.exists():
        return False
    records = read_metrics(metrics_path)
    return bool(records) and ends_run(records[-1], config)


def ends_run(record: dict[str, Any], config: dict[str, Any]) -> bool:
    """A metrics record is the last of the run `config` describes: at step trainer.steps, or (step >= 1)
    with the budget's generated total reached."""
    if record["step"] == config["trainer"]["steps"]:
        return True
    budget = ComputeBudget.from_trainer(config["trainer"])
    return budget is not None and record["step"] >= 1 and budget.reached(record.get(budget.total_key) or 0)
