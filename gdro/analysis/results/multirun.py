"""Methods x seeds as Hydra multiruns of `train.py`, split over a few processes run side by side.

Every (method, seed) is one job of `python train.py -m <common> method=... seed=...` (Hydra's basic launcher,
one job after another in its process), written to RUNS/<method choice>/seed_<s>/ whatever process ran it.
The methods are dealt round-robin to `jobs` processes, each given every seed, so with one torch thread per
run `jobs` runs share the cores; a process runs seed 0 of each of its methods, then seed 1, ..., so a sweep
stopped early holds the same seeds for every method. Jobs start with `resume=auto`: a run folder whose metrics.jsonl already
ends at the last step resumes at that step and trains nothing (it costs the model's loading, seconds), one
that was killed resumes from its latest checkpoint, so a sweep can be finished over several sittings.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.results.methods import Method

REPO = Path(__file__).resolve().parents[3]
RUN_SUBDIR = "hydra.sweep.subdir=${hydra:runtime.choices.method}/seed_${seed}"


def multirun_commands(
    methods: Sequence[Method], seeds: int, jobs: int, runs_dir: Path, common: Sequence[str]
) -> list[list[str]]:
    """One `train.py -m` command per process (at most `jobs`, none empty): methods[j::jobs], seeds 0..seeds-1."""
    if seeds < 1 or jobs < 1:
        raise ValueError(f"need seeds >= 1 and jobs >= 1, got seeds={seeds}, jobs={jobs}")
    seed_list = ",".join(str(seed) for seed in range(seeds))
    commands = []
    for share in (methods[j::jobs] for j in range(min(jobs, len(methods)))):
        commands.append(
            [
                sys.executable,
                "train.py",
                "-m",
                *common,
                "resume=auto",
                f"seed={seed_list}",
                "method=" + ",".join(method.choice for method in share),
                f"hydra.sweep.dir={runs_dir}",
                RUN_SUBDIR,
            ]
        )
    return commands


def run_side_by_side(commands: Sequence[Sequence[str]], log_dir: Path) -> None:
    """Start every command at once (cwd: the repository), each logging to log_dir/process_<j>.log; wait for
    all; a RuntimeError names the ones that failed and their logs."""
    log_dir.mkdir(parents=True, exist_ok=True)
    running = []
    for j, command in enumerate(commands):
        log_path = log_dir / f"process_{j}.log"
        with log_path.open("w") as log:
            running.append(
                (log_path, subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
            )
    codes = [(path, process.wait()) for path, process in running]
    failed = [f"{path} (exit {code})" for path, code in codes if code != 0]
    if failed:
        raise RuntimeError("multirun processes failed; see " + ", ".join(failed))
