"""Compact run records: what the results read of one finished run, small enough to commit.

RECORDS/<method slug>/seed_<s>.json.gz holds, gzip-compressed JSON (mtime 0: the same run gives the same
bytes):

    config     the resolved config (config.json)
    totals     the full run's sums and means the tables read (`run_totals`, over every step record)
    records    metrics.jsonl thinned: step 0, every evaluation record, the last record, and every k-th
               step record with k = ceil(T_run / STEP_RECORDS) (T_run: the run's last step), all keys kept

so the held-out curves (evaluations) are exact, the cost and spend tables exact (totals), and the
curriculum plots drawn from about STEP_RECORDS steps. A 1000-step simulator run is 10 to 30 KB.

`restore_run_folder` writes a record back as a run folder's config.json and metrics.jsonl (thinned): the
folder then reads as finished (`gdro.train.io.run_folder.is_finished`), so a sweep, or `train.py` under
`resume=auto`, skips a run whose record is committed, on any machine whose resolved config is the same.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

from gdro.analysis.results.activity import adversary_activity
from gdro.train.io.metrics import read_metrics
from gdro.train.io.run_folder import CONFIG_FILE, METRICS_FILE, ends_run, read_config

STEP_RECORDS = 50
"""About this many step records are kept per run (every k-th step)."""
SUFFIX = ".json.gz"
RESTORED = "RESTORED_FROM_RECORD"
"""A marker file in a run folder written from a record (its metrics.jsonl is thinned)."""


def record_path(records_dir: Path, slug: str, seed: int) -> Path:
    """RECORDS/<slug>/seed_<seed>.json.gz."""
    return records_dir / slug / f"seed_{seed}{SUFFIX}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def run_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the step records (step >= 1): activity (`adversary_activity`, exact over every step), rollouts (sum of rollouts/total, trained), tokens (sum of
    tokens/generated), step_seconds (sum of time/step_seconds), generated_rollouts / generated_tokens
    (the last compute/*_total; tokens None on the simulator), steps (the last step), and the means per
    step of rollouts/informative_fraction, compute/gen_batches and compute/tokens_generated (NaN where
    no record has the key)."""
    trained = [r for r in records if r["step"] >= 1]

    def logged(key: str) -> list[float]:
        return [float(r[key]) for r in trained if r.get(key) is not None and not _is_nan(r[key])]

    last = trained[-1] if trained else {}
    return {
        "activity": adversary_activity(trained),
        "rollouts": sum(int(r["rollouts/total"]) for r in trained),
        "tokens": sum(int(r.get("tokens/generated") or 0) for r in trained),
        "step_seconds": sum(float(r.get("time/step_seconds", 0.0)) for r in trained),
        "generated_rollouts": int(
            last.get("compute/rollouts_generated_total", sum(logged("rollouts/total")))
        ),
        "generated_tokens": last.get("compute/tokens_generated_total"),
        "steps": int(last.get("step", 0)),
        "informative_fraction": _mean(logged("rollouts/informative_fraction")),
        "gen_batches": _mean(logged("compute/gen_batches")),
        "tokens_per_step": _mean(logged("compute/tokens_generated")),
    }


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def thin(records: list[dict[str, Any]], every: int | None = None) -> list[dict[str, Any]]:
    """Step 0, every record with an eval/ key, the last record, and every `every`-th step (default
    ceil(T_run / STEP_RECORDS))."""
    if not records:
        return []
    every = every or max(1, math.ceil(records[-1]["step"] / STEP_RECORDS))
    last = records[-1]["step"]
    return [
        r
        for r in records
        if r["step"] in (0, last) or r["step"] % every == 0 or any(k.startswith("eval/") for k in r)
    ]


def compact(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact record of a finished run (module docstring)."""
    if not records or not ends_run(records[-1], config):
        raise ValueError("only a finished run has a compact record")
    return {"config": config, "totals": run_totals(records), "records": thin(records)}


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Write `record` gzip-compressed (mtime 0, keys sorted) to `path` through a temporary; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
        zipped.write(data)
    temporary.replace(path)
    return path


def read_record(path: Path) -> dict[str, Any]:
    """A compact record's dict (config, totals, records)."""
    with gzip.open(path, "rt") as file:
        return json.load(file)


def find_records(records_dir: Path) -> list[Path]:
    """Every compact record under `records_dir`, sorted."""
    return sorted(records_dir.rglob(f"*{SUFFIX}")) if records_dir.is_dir() else []


def export_run(run_dir: Path, path: Path) -> bool:
    """Write the compact record of the finished run in `run_dir` to `path`, unless `path` exists or the
    folder was itself restored from a record or is unfinished; returns whether it wrote."""
    config = read_config(run_dir)
    if path.exists() or (run_dir / RESTORED).exists() or config is None:
        return False
    records = read_metrics(run_dir / METRICS_FILE)
    if not records or not ends_run(records[-1], config):
        return False
    write_record(path, compact(config, records))
    return True


def restore_run_folder(path: Path, run_dir: Path, config: dict[str, Any] | None = None) -> bool:
    """Write the record at `path` as `run_dir`'s config.json (`config` when given: this machine's resolved
    config of the same run, which may differ in paths such as cache_dir) and (thinned) metrics.jsonl,
    when `run_dir` has no config.json yet; returns whether it wrote."""
    if (run_dir / CONFIG_FILE).exists():
        return False
    record = read_record(path)
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in record["records"])
    (run_dir / METRICS_FILE).write_text(lines)
    (run_dir / RESTORED).write_text(f"{path}\n")
    (run_dir / CONFIG_FILE).write_text(json.dumps(config or record["config"], indent=2))
    return True
