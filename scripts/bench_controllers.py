"""Benchmark the controllers' per-step cost: `python scripts/bench_controllers.py [--json PATH]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gdro.sim.bench import format_table, records_as_json, run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the records to this JSON file")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed steps first, so bins fill")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512, 4096], help="M values")
    parser.add_argument("--bins", type=int, nargs="+", default=[3, 10], help="B values (presets 3, 6, 10)")
    args = parser.parse_args()
    records = run_benchmark(tuple(args.batch_sizes), tuple(args.bins), args.repeats, args.warmup)
    print(format_table(records))
    if args.json is not None:
        args.json.write_text(json.dumps(records_as_json(records), indent=2) + "\n")


if __name__ == "__main__":
    main()
