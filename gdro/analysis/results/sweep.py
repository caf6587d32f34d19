"""A resumable sweep of methods x seeds on the learning simulator, run in this process (or a few).

Each run is `gdro.train.loop.train` on the composed config of `policy=sim` plus the method's overrides
(`gdro.analysis.results.methods`) and the seed, into RUNS/<method slug>/seed_<s>/, exactly what
`python train.py policy=sim ...` would write there. A run folder whose metrics.jsonl ends at the
configured last step (or its budget: `gdro.train.io.run_folder.is_finished`) is skipped; an unfinished
one (killed mid-run) starts over, as a run takes seconds; a folder written with another config is refused,
so a sweep of another size needs another RUNS folder.

With a RECORDS folder (experiments/<sweep>/runs/) each finished run's compact record
(`gdro.analysis.results.records`) is written to RECORDS/<method choice>/seed_<s>.json.gz, and a run whose
record is already there is not trained: its folder is restored from the record first (so an interrupted
sweep resumes on another machine from the committed records). A record of another config is refused.

At equal generated compute (`budget_overrides`): every method gets the same `trainer.budget_rollouts`
and evaluates at the same fractions of it; trainer.steps is the cap, raised to the steps GRPO needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gdro.analysis.results.methods import Method
from gdro.analysis.results.records import export_run, read_record, record_path, restore_run_folder
from gdro.config import parse_run_config, register_configs
from gdro.config.store import with_defaults
from gdro.train.io.run_folder import is_finished, read_config, same_run
from gdro.train.loop import train

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def sim_overrides(steps: int, evals: int = 10) -> list[str]:
    """The settings every simulator run of a sweep shares: `steps` steps, `evals` evaluations after step 0,
    one checkpoint (at the end) and one set of heatmaps (drawn at the end either way), no W&B. A run is
    (re)trained from scratch (`resume=null`): the sweep retrains only runs without a finished metrics.jsonl."""
    return [
        "policy=sim",
        "resume=null",
        "logger=none",
        f"trainer.steps={steps}",
        f"trainer.eval_every={max(1, steps // evals)}",
        f"trainer.save_every={steps}",
        f"trainer.plot_every={steps}",
        "trainer.keep_checkpoints=1",
        # The committed records hold the micro-batch budget of their day, which the simulator never reads:
        # kept, so that a sweep resumes from them.
        "trainer.max_tokens_per_microbatch=32768",
    ]


def budget_overrides(budget: int, per_step: int, steps: int, evals: int) -> list[str]:
    """A budget of `budget` generated rollouts, evaluated at each 1/evals of it, within at most
    max(steps, ceil(budget / per_step)) steps (per_step = nbar x M, what GRPO generates a step; a filter
    generates more, so it reaches the budget in fewer steps)."""
    return [
        f"trainer.budget_rollouts={budget}",
        f"trainer.eval_every_budget={1 / evals!r}",
        f"trainer.steps={max(steps, -(-budget // per_step))}",
    ]


def sim_budget_overrides(steps: int, budget: int | None = None, evals: int = 10) -> list[str]:
    """`sim_overrides` at equal generated compute: a budget of `budget` rollouts (default what GRPO
    generates in `steps` steps of the simulator's config), evaluated at each 1/evals of it."""
    per_step = rollouts_per_step(compose_run_config(sim_overrides(steps, evals)))
    budget = budget or steps * per_step
    return [*sim_overrides(steps, evals), *budget_overrides(budget, per_step, steps, evals)]


def rollouts_per_step(config: dict[str, Any]) -> int:
    """nbar x M of a resolved config: what a step of GRPO generates."""
    return round(config["allocator"]["nbar"] * config["trainer"]["prompts_per_step"])


def compose_run_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config `train.py OVERRIDES` would run (without the hydra node)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        config = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(config, resolve=True)


@dataclass(frozen=True)
class SweepRun:
    """One (method, seed) of the sweep, its folder and its resolved config."""

    method: Method
    seed: int
    run_dir: Path
    config: dict[str, Any]

    def record(self, records_dir: Path) -> Path:
        """Its compact record in `records_dir`."""
        return record_path(records_dir, self.method.choice, self.seed)


def plan_sweep(
    runs_dir: Path,
    methods: Sequence[Method],
    seeds: int,
    common: Sequence[str],
    folder: Callable[[Method], str] = lambda method: method.slug,
) -> list[SweepRun]:
    """Seeds 0..seeds-1 of every method, with `common` overrides first and the method's after, each in
    RUNS/<folder(method)>/seed_<s>/.

    Hydra composes each method once (about a second each); a seed's config is that one with its
    top-level `seed` set, which no other key of conf/ interpolates (a test checks the two agree).
    """
    runs = []
    for method in methods:
        config = compose_run_config([*common, *method.overrides])
        for seed in range(seeds):
            run_dir = runs_dir / folder(method) / f"seed_{seed}"
            runs.append(SweepRun(method, seed, run_dir, {**config, "seed": seed}))
    return runs


def is_pending(run: SweepRun) -> bool:
    """Whether the run still has to be trained: its folder does not hold it finished
    (`gdro.train.io.run_folder.is_finished`); a ValueError when the folder was written with another config."""
    written = read_config(run.run_dir)
    if written is not None and not same_run(written, run.config):
        raise ValueError(f"{run.run_dir} holds a run of another config; sweep into another folder")
    return not is_finished(run.run_dir, run.config)


def _execute(run: SweepRun) -> float:
    """Train one run into its folder; returns its wall seconds."""
    began = time.perf_counter()
    train(parse_run_config(run.config), run.run_dir, run.config, progress=False)
    return time.perf_counter() - began


def same_recorded_run(recorded: dict[str, Any], planned: dict[str, Any]) -> bool:
    """A committed record holds the planned run: their configs are equal, `cache_dir` (a path of the
    machine) aside, once each key the record lacks takes its default (`gdro.config.store.with_defaults`:
    a record written before a key was added still counts; a key set to another value does not)."""
    return same_run(
        with_defaults({**recorded, "cache_dir": None}), with_defaults({**planned, "cache_dir": None})
    )


def restore_records(runs: Sequence[SweepRun], records_dir: Path) -> int:
    """Restore the folder of every run whose record is in `records_dir` (and whose folder is empty);
    a ValueError names a record of another config (`same_recorded_run`). Returns how many folders it wrote."""
    restored = 0
    for run in runs:
        path = run.record(records_dir)
        if not path.exists():
            continue
        if not same_recorded_run(read_record(path)["config"], run.config):
            raise ValueError(f"{path} holds a run of another config; sweep into other records")
        restored += restore_run_folder(path, run.run_dir, run.config)
    return restored


def export_records(runs: Sequence[SweepRun], records_dir: Path) -> int:
    """Write the record of every finished run that has none in `records_dir`; returns how many."""
    return sum(export_run(run.run_dir, run.record(records_dir)) for run in runs if run.run_dir.is_dir())


def run_sweep(runs: Sequence[SweepRun], jobs: int = 1, records_dir: Path | None = None) -> list[SweepRun]:
    """Train every unfinished run, `jobs` at a time in worker processes (1: in this process), restoring
    from and writing records to `records_dir` when given; prints a line per run; returns the runs trained."""
    if records_dir is not None:
        print(f"{restore_records(runs, records_dir)} run folders restored from {records_dir}", flush=True)
    pending = [run for run in runs if is_pending(run)]
    print(
        f"{len(runs) - len(pending)} of {len(runs)} runs already finished; training {len(pending)}",
        flush=True,
    )
    with ProcessPoolExecutor(jobs) if jobs > 1 else nullcontext() as pool:
        walls = pool.map(_execute, pending) if pool is not None else map(_execute, pending)
        for run, wall in zip(pending, walls, strict=True):
            print(f"  {run.method.name}, seed {run.seed}: {wall:.1f} s -> {run.run_dir}", flush=True)
            if records_dir is not None:
                export_run(run.run_dir, run.record(records_dir))
    return list(pending)
