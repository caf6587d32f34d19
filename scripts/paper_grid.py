"""Launch a reproduction plan (experiments/*.yaml) as Hydra multiruns, or print every job it would run.

    python scripts/paper_grid.py --plan experiments/paper_table1.yaml --scale 1.7b --seeds 3 --dry
    python scripts/paper_grid.py --plan experiments/paper_table1.yaml --scale all --seeds 3 --launcher slurm \\
        -- hydra.launcher.partition=gpu hydra.launcher.account=ACCOUNT

Every (scale, method) is composed and validated as `train.py` would (a broken override fails here, with
Hydra's error), then `--dry` prints one line per job with its GPU-hours (`gdro.analysis.results.cost`) and the
multirun commands; without it the commands run one after the other from the repository root, into
ROOT/<scale>/<method>/<n> (ROOT: --sweep-root, default outputs/<plan name>), stopping at the first that
fails. KEY=VALUE overrides after `--` go to every job (`hydra.*` ones only to the launch).
`make paper-table1` and `make paper-ablations` run this.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.results.plan import (
    LAUNCHERS,
    dry_run_lines,
    jobs_of,
    load_plan,
    multirun_command,
    resolve_cells,
    select_methods,
    select_scales,
)

REPO = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, resolve the plan's jobs, print them (--dry) or launch them; the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--plan", type=Path, required=True, help="a plan file, e.g. experiments/paper_table1.yaml"
    )
    parser.add_argument("--scale", default="all", help="one of the plan's scales, or all")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..SEEDS-1 per cell")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="slurm", help="hydra/launcher choice")
    parser.add_argument("--methods", nargs="+", help="a subset of the plan's methods (default: all)")
    parser.add_argument("--sweep-root", type=Path, help="folder of the runs (default outputs/<plan name>)")
    parser.add_argument("--dry", action="store_true", help="print the jobs and commands, launch nothing")
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE overrides for every job")
    args = parser.parse_args(argv)
    plan = load_plan(args.plan)
    root = args.sweep_root or Path("outputs") / plan.name
    cells = resolve_cells(
        plan, select_scales(plan, args.scale), select_methods(plan, args.methods), args.overrides
    )
    commands = [multirun_command(cell, args.seeds, args.launcher, plan.gpus_per_job, root) for cell in cells]
    if args.dry:
        print(f"plan {args.plan}: {len(cells)} cells x {args.seeds} seeds, launcher {args.launcher}")
        print("\n".join(dry_run_lines(jobs_of(cells, args.seeds), plan.gpus_per_job)))
        print("\ncommands (from the repository root):")
        print("\n".join("  " + shlex.join(["python", *command]) for command in commands))
        return 0
    for command in commands:
        print(shlex.join(["python", *command]), flush=True)
        status = subprocess.run([sys.executable, *command], cwd=REPO).returncode
        if status != 0:
            print(f"stopped: the command above exited with {status}", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
