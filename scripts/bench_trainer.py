"""Our `train.py` against TRL's `GRPOTrainer`: `make bench-trainer`, or
`python scripts/bench_trainer.py [--steps 20] [--warmup 2] [--order ours trl] [--out DIR] [OVERRIDES ...]`.

Both trainers run on the same tiny model, tokenizer, prompts and settings, one after the other in this
process (`gdro.analysis.bench.trainer_throughput`); prints steps/s, generated tokens/s and the ratios ours / TRL, and
writes DIR/trainer_throughput.json (every setting, the versions) and DIR/README.md (`gdro.analysis.bench.trainer_report`).
Hydra overrides change our run config, and TRL's settings follow it (e.g. trainer.prompts_per_step=32).
Needs the dev requirements (trl).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from gdro.analysis.bench.trainer_report import build_report, markdown, write_report
from gdro.analysis.bench.trainer_throughput import TRAINERS, run_benchmark

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps (generation batches) per trainer")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, per trainer")
    parser.add_argument("--order", nargs=2, default=list(TRAINERS), choices=TRAINERS, help="which runs first")
    parser.add_argument(
        "--out", type=Path, default=REPO / "experiments" / "bench", help="where the report goes"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of our run config")
    args = parser.parse_args()
    run, config, results = run_benchmark(args.overrides, args.steps, args.warmup, args.order)
    command = shlex.join(["python", "scripts/bench_trainer.py", *sys.argv[1:]])
    report = build_report(run, config, results, command, REPO)
    record, page = write_report(report, args.out)
    print(markdown(report).split("\n## ")[0])
    print(f"wrote {record} and {page}")


if __name__ == "__main__":
    main()
