"""Every method of conf/method/ on the learning simulator, SEEDS seeds each at equal generated rollouts,
then the results.

    python scripts/reproduce_sim.py [--seeds 20] [--steps 1000] [--budget B] [--runs DIR]
        [--records experiments/sim/runs] [--out experiments/sim] [--jobs 2] [--methods ...]

Every run gets the same budget of B generated rollouts (`trainer.budget_rollouts`; default STEPS x M x
nbar, what GRPO generates in STEPS steps of the simulator's config) and evaluates at each tenth of it;
trainer.steps is the cap, raised to what GRPO needs. Trains the sweep of `gdro.analysis.results.sweep` into
DIR (resumable: finished run folders are skipped; a run whose compact record is in RECORDS is not trained),
writes each finished run's record to RECORDS, then OUT/RESULTS.md from the records alone with
`gdro.analysis.results.report.write_results`. `make reproduce-sim` runs it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.results.methods import GRPO, METHODS
from gdro.analysis.results.report import write_results
from gdro.analysis.results.sweep import compose_run_config, plan_sweep, run_sweep, sim_budget_overrides
from gdro.config import parse_run_config

TITLE = "Held-out success on the learning simulator, by method, at equal generated rollouts"
EVALS = 10


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the sweep and write the results; returns the RESULTS.md path."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..SEEDS-1 per method")
    parser.add_argument("--steps", type=int, default=1000, help="GRPO's steps: the default budget's")
    parser.add_argument("--budget", type=int, help="generated rollouts per run (default STEPS x M x nbar)")
    parser.add_argument("--runs", type=Path, help="run folders (default outputs/reproduce-sim/budget_B)")
    parser.add_argument(
        "--records", type=Path, default=Path("experiments/sim/runs"), help="compact run records"
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/sim"), help="folder for RESULTS.md")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument(
        "--methods",
        nargs="+",
        help="conf/method/ choices besides grpo (default: every file of conf/method/)",
    )
    args = parser.parse_args(argv)
    methods = [m for m in METHODS if args.methods is None or m is GRPO or m.choice in args.methods]
    common = sim_budget_overrides(args.steps, args.budget, EVALS)
    budget = parse_run_config(compose_run_config(common)).trainer.budget_rollouts
    runs_dir = args.runs or Path("outputs/reproduce-sim") / f"budget_{budget}"
    began = time.perf_counter()
    run_sweep(plan_sweep(runs_dir, methods, args.seeds, common), args.jobs, args.records)
    print(f"sweep: {time.perf_counter() - began:.0f} s")
    command = shlex.join(["python", "scripts/reproduce_sim.py", *argv])
    path = write_results(args.records, args.out, command, TITLE)
    print(f"wrote {path} ({time.perf_counter() - began:.0f} s in all)")
    return path


if __name__ == "__main__":
    main()
