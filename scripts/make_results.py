"""Write RESULTS.md, the figures and the curriculum plots from a folder of compact run records or of run
folders.

    python scripts/make_results.py --runs DIR --out experiments/sim [--metric pass@8 --metric mean@8]

DIR holds compact run records (`gdro.analysis.results.records`, e.g. the committed experiments/sim/runs/:
`make results-sim`), or else run folders (metrics.jsonl and config.json, at any depth). Every finished run
is grouped by method (`gdro.analysis.results.methods.method_key`) and compared with GRPO paired by seed, also
at equal generated compute (`gdro.analysis.results.equal_compute`).
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
