"""Benchmark the controllers' per-step cost: `python scripts/bench_controllers.py [--json PATH]`.

Prints a table of median ms per step with the ratio to the uniform baseline measured in the same run,
then the rate of the whole `policy=sim` training loop (`train.py policy=sim`) in steps per second.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gdro.config import register_configs
from gdro.sim.bench import format_table, records_as_json, run_benchmark, sim_training_rate

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# The run `tests/test_train_sim.py` checks: both controllers, eval every 500 steps, checkpoints every 1000.
SIM_TRAINING = ["policy=sim", "sampler=prompt_gdro", "allocator=rollout_gdro", "logger=none"]
SIM_TRAINING += ["trainer.eval_every=500", "trainer.save_every=1000"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the records to this JSON file")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed steps first, so bins fill")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 4096], help="M values")
    parser.add_argument("--bins", type=int, nargs="+", default=[3, 10], help="B values (presets 3, 6, 10)")
    parser.add_argument(
        "--train-steps", type=int, default=2000, help="steps of the policy=sim run; 0 skips it"
    )
    args = parser.parse_args()
    records = run_benchmark(tuple(args.batch_sizes), tuple(args.bins), args.repeats, args.warmup)
    print(format_table(records))
    if args.train_steps > 0:
        register_configs()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            config = compose(
                config_name="config", overrides=[*SIM_TRAINING, f"trainer.steps={args.train_steps}"]
            )
        rate = sim_training_rate(OmegaConf.to_container(config, resolve=True))
        print(
            f"\npolicy=sim training loop ({' '.join(SIM_TRAINING[1:3])}, {args.train_steps} steps): {rate:.0f} steps/s"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(records_as_json(records), indent=2) + "\n")


if __name__ == "__main__":
    main()
