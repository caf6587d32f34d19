"""Plot the emergent curriculum of run folders: `python scripts/plot_curriculum.py RUN_DIR [RUN_DIR ...] [--out DIR]`.

Writes every PNG of `gdro.analysis.viz.PLOT_FILES` into RUN_DIR/plots/ for each run, and the multi-run eval
comparison `eval_pass_by_level_compare.png` into --out (default: the first run's plots/).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from gdro.analysis.viz import load_run, write_comparison_plot, write_run_plots


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Write the plots; prints each file written and each run's mean WSE reduction. Returns the paths."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="folders with metrics.jsonl"
    )
    parser.add_argument(
        "--out", type=Path, help="folder for the comparison plot (default: first RUN_DIR/plots)"
    )
    args = parser.parse_args(argv)
    runs = [load_run(run_dir) for run_dir in args.run_dirs]
    written: list[Path] = []
    for run in runs:
        paths = write_run_plots(run)
        written += paths
        print(f"{run.run_dir}: {run.label}")
        for path in paths:
            print(f"  wrote {path}")
        print(f"  WSE reduction vs uniform nbar: {100 * run.wse_reduction():.1f}%")
    comparison = write_comparison_plot(runs, args.out or args.run_dirs[0] / "plots")
    print(f"wrote {comparison}")
    return [*written, comparison]


if __name__ == "__main__":
    main()
