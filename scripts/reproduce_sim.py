"""Every method of conf/method/ on the learning simulator, SEEDS seeds each at equal rollouts, then the results.

    python scripts/reproduce_sim.py [--seeds 20] [--steps 1000] [--runs DIR] [--out experiments/sim] [--jobs 2]

Trains the sweep of `gdro.analysis.results.sweep` (resumable: finished run folders are skipped) into DIR, then
writes OUT/RESULTS.md with `gdro.analysis.results.report.write_results`. `make reproduce-sim` runs it.
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
from gdro.analysis.results.sweep import plan_sweep, run_sweep, sim_overrides

TITLE = "Held-out success on the learning simulator, by method"


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the sweep and write the results; returns the RESULTS.md path."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..SEEDS-1 per method")
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run")
    parser.add_argument(
        "--runs", type=Path, help="folder of the run folders (default outputs/reproduce-sim/steps_STEPS)"
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/sim"), help="folder for RESULTS.md")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument(
        "--methods",
        nargs="+",
        help="conf/method/ choices besides grpo (default: all of gdro.analysis.results.methods)",
    )
    args = parser.parse_args(argv)
    methods = [m for m in METHODS if args.methods is None or m is GRPO or m.choice in args.methods]
    runs_dir = args.runs or Path("outputs/reproduce-sim") / f"steps_{args.steps}"
    began = time.perf_counter()
    run_sweep(plan_sweep(runs_dir, methods, args.seeds, sim_overrides(args.steps)), args.jobs)
    print(f"sweep: {time.perf_counter() - began:.0f} s")
    command = shlex.join(["python", "scripts/reproduce_sim.py", *argv])
    path = write_results(runs_dir, args.out, command, TITLE)
    print(f"wrote {path} ({time.perf_counter() - began:.0f} s in all)")
    return path


if __name__ == "__main__":
    main()
