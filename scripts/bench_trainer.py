"""Our `train.py` against TRL's `GRPOTrainer`: `make bench-trainer`, or
`python scripts/bench_trainer.py [--steps 10] [--warmup 2] [--threads 1 2] [--repeats 3] [--order ours trl]
[--out DIR] [OVERRIDES ...]`.

Both trainers run on the same tiny model, tokenizer, prompts and settings in this process, at each torch thread
count `repeats` runs of each, interleaved (ours, TRL, ours, TRL, ...; `gdro.analysis.bench.trainer_throughput`);
prints per thread count the generated tokens/s, the phase split (generate, old and ref log-probs, update) and
the ratio ours / TRL with its range over the rounds, and writes DIR/trainer_throughput.json (every setting and
run, the versions) and DIR/README.md (`gdro.analysis.bench.trainer_report`). Hydra overrides change our run
config, and TRL's settings follow it (e.g. trainer.prompts_per_step=32). Needs the dev requirements (trl).
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
    parser.add_argument("--steps", type=int, default=10, help="timed steps (generation batches) per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, per run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each trainer per thread count")
    parser.add_argument("--order", nargs=2, default=list(TRAINERS), choices=TRAINERS, help="which runs first")
    parser.add_argument(
        "--out", type=Path, default=REPO / "experiments" / "bench", help="where the report goes"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of our run config")
    args = parser.parse_args()
    runs, configs, results = run_benchmark(
        args.overrides, args.steps, args.warmup, args.threads, args.repeats, args.order
    )
    command = shlex.join(["python", "scripts/bench_trainer.py", *sys.argv[1:]])
    report = build_report(runs, configs, results, command, REPO)
    record, page = write_report(report, args.out)
    header, *sections = markdown(report).split("\n## ")
    print(header)
    for section in sections:
        if "torch thread" in section.split("\n")[0]:
            print("## " + section)
    print(f"wrote {record} and {page}")


if __name__ == "__main__":
    main()
