"""Every method of conf/method/ on the embedded frontier task (`experiment=frontier`), SEEDS seeds each at
equal generated rollouts, then the results.

    python scripts/reproduce_embedded.py [--seeds 5] [--jobs 2] [--budget B] [--runs DIR]
        [--records experiments/embedded/runs] [--out experiments/embedded] [--methods grpo ...] [-- OVERRIDE ...]

Every run gets the same budget of B generated rollouts (`trainer.budget_rollouts`; default what GRPO
generates in the experiment's steps: 150 x 32 x 4 = 19,200) and evaluates at each sixth of it;
trainer.steps is the cap, raised to what GRPO needs. Builds the one base model every run starts from
(cached), restores the run folders of the runs whose compact record is in RECORDS (they train nothing),
trains the sweep as Hydra multiruns side by side (`gdro.analysis.results.multirun`: one torch thread per
run, resumable), writes each finished run's record to RECORDS, then OUT/RESULTS.md from the records alone
with `gdro.analysis.results.report.write_results`. `make reproduce-embedded` runs it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.results.methods import GRPO, METHODS
from gdro.analysis.results.multirun import multirun_commands, run_side_by_side
from gdro.analysis.results.report import write_results
from gdro.analysis.results.sweep import (
    budget_overrides,
    compose_run_config,
    export_records,
    plan_sweep,
    restore_records,
    rollouts_per_step,
)
from gdro.config import parse_run_config
from gdro.models.base_model import ensure_base_model

TITLE = "Held-out success on the embedded frontier task, by method, at equal generated rollouts"
# The committed records were trained with transformers `generate` and one micro-batch per update, before
# those defaults changed (policy.decode=shrinking, max_tokens_per_microbatch=2048, both faster): the sweep
# keeps their settings, so that it resumes from the records and extends them alike.
COMMON = (
    "experiment=frontier",
    "logger=none",
    "trainer.torch_threads=1",
    "policy.decode=generate",
    "trainer.max_tokens_per_microbatch=32768",
)
EVALS = 6


def main(argv: Sequence[str] | None = None) -> Path:
    """Build the base model, run the sweep, write the results; returns the RESULTS.md path."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..SEEDS-1 per method")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (processes)")
    parser.add_argument("--runs", type=Path, default=Path("outputs/reproduce-embedded"), help="run folders")
    parser.add_argument(
        "--budget", type=int, help="generated rollouts per run (default: GRPO's in the experiment)"
    )
    parser.add_argument(
        "--records", type=Path, default=Path("experiments/embedded/runs"), help="compact run records"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("experiments/embedded"), help="folder for RESULTS.md"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        help="conf/method/ choices besides grpo (default: all of gdro.analysis.results.methods)",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of every run, after --")
    args = parser.parse_args(argv)
    methods = [m for m in METHODS if args.methods is None or m is GRPO or m.choice in args.methods]
    config = compose_run_config([*COMMON, *args.overrides])
    steps, per_step = config["trainer"]["steps"], rollouts_per_step(config)
    budget = args.budget or steps * per_step
    common = [*COMMON, *args.overrides, *budget_overrides(budget, per_step, steps, EVALS)]
    run = parse_run_config(compose_run_config(common))
    plan = plan_sweep(args.runs.resolve(), methods, args.seeds, common, lambda method: method.choice)
    print(f"{restore_records(plan, args.records)} run folders restored from {args.records}", flush=True)
    began = time.perf_counter()
    ensure_base_model(
        Path(run.cache_dir), run.dataset.task(), run.model.architecture(), run.model.warm_start, device="cpu"
    )
    commands = multirun_commands(methods, args.seeds, args.jobs, args.runs.resolve(), common)
    for command in commands:
        print(shlex.join(command[1:]), flush=True)
    run_side_by_side(commands, args.runs / "logs")
    print(f"sweep: {time.perf_counter() - began:.0f} s", flush=True)
    print(f"{export_records(plan, args.records)} records written to {args.records}", flush=True)
    command = shlex.join(["python", "scripts/reproduce_embedded.py", *argv])
    path = write_results(args.records, args.out, command, TITLE)
    print(f"wrote {path} ({time.perf_counter() - began:.0f} s in all)")
    return path


if __name__ == "__main__":
    main()
