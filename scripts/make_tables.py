"""Write Table 1 (Markdown and LaTeX) from finished runs in run folders or in a W&B project.

    python scripts/make_tables.py --runs outputs/paper_table1 [--plan experiments/paper_table1.yaml] [--out experiments/paper]
    python scripts/make_tables.py --wandb ENTITY/PROJECT [--out experiments/paper]

Runs are grouped by scale (the model they train) and method (`gdro.analysis.results.methods.method_key`), named and
ordered by the plan, which also gives the baseline and the paper's numbers; the tables are those of
`gdro.analysis.results.paper_table` (OUT/NAME.md and OUT/NAME.tex). `make table1` runs this.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.results.paper_table import collect_local, collect_wandb, write_tables
from gdro.analysis.results.plan import load_plan


def main(argv: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Parse the arguments, collect the runs, write the tables; returns the Markdown and LaTeX paths."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", type=Path, nargs="+", help="folders holding run folders, at any depth")
    source.add_argument("--wandb", metavar="ENTITY/PROJECT", help="a W&B project (public API)")
    parser.add_argument(
        "--wandb-filters",
        type=json.loads,
        default={"state": "finished"},
        help='W&B run filters as JSON (default: {"state": "finished"})',
    )
    parser.add_argument(
        "--plan", type=Path, default=Path("experiments/paper_table1.yaml"), help="a plan file"
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/paper"), help="folder for the tables")
    parser.add_argument("--name", default="table1", help="file name of the tables, without suffix")
    args = parser.parse_args(argv)
    if args.runs:
        results = collect_local(args.runs)
        where = ", ".join(f"`{root}`" for root in args.runs)
    else:
        results = collect_wandb(args.wandb, filters=args.wandb_filters)
        where = f"W&B `{args.wandb}`"
    command = shlex.join(["python", "scripts/make_tables.py", *argv])
    paths = write_tables(results, load_plan(args.plan), args.out, command, where, args.name)
    print("wrote " + " and ".join(str(path) for path in paths))
    return paths


if __name__ == "__main__":
    main()
