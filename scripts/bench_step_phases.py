"""The GRPO step with and without the on-policy shortcut, or against a config variant, side by side in one
process: `python scripts/bench_step_phases.py [--rounds 10] [--warmup 1] [--threads 1] [--against KEY=VALUE]... [--out FILE]
[OVERRIDES ...]`.

Prints the median step and phase seconds (generate, old and ref log-probs, update) of both, interleaved
A B / B A (`gdro.analysis.bench.step_phases`), and writes them to FILE (default
experiments/bench/step_phases.json). Hydra overrides change the run config (default: what `train.py` runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gdro.analysis.bench.step_phases import PHASES, measure_step_phases

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "experiments" / "bench" / "step_phases.json",
        help="the JSON record",
    )
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        help="an override of the variant ('off'), in place of no shortcut; repeat for several",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (compiles happen there)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the run config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = measure_step_phases(args.overrides, args.rounds, args.warmup, args.against)
    for variant, medians in result["median_seconds"].items():
        phases = "  ".join(f"{phase} {medians[phase]:.3f}" for phase in PHASES)
        name = f"{'base' if variant == 'on' else 'variant'}" if args.against else f"shortcut {variant}"
        print(f"{name:12}  step {medians['step']:.3f} s, cpu {medians['cpu']:.3f} s  ({phases})")
    print(
        f"step time off / on: {result['step_ratio_off_over_on']:.3f} (medians),"
        f" {result['paired_step_ratio_median']:.3f} (median of the rounds' own ratios),"
        f" cpu {result['paired_cpu_ratio_median']:.3f}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
