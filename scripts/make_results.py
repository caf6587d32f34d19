"""Write RESULTS.md, one figure per metric and the curriculum plots from a folder of run folders.

    python scripts/make_results.py --runs DIR --out experiments/sim [--metric pass@8 --metric mean@8]

Every finished run under DIR (a folder with metrics.jsonl and config.json, at any depth) is grouped by
method (`gdro.analysis.results.methods.method_key`), and each method is compared with GRPO paired by seed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.results.report import write_results


def main(argv: Sequence[str] | None = None) -> Path:
    """Parse the arguments, write the results; returns the RESULTS.md path."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True, help="folder holding the run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for RESULTS.md and the figures")
    parser.add_argument(
        "--metric", action="append", help="eval metric, e.g. pass@8 (default: every one found)"
    )
    parser.add_argument("--title", default="Results", help="the first line of RESULTS.md")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "scripts/make_results.py", *argv])
    path = write_results(args.runs, args.out, command, args.title, args.metric)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
