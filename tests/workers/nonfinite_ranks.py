"""Run under `torchrun --nproc_per_node=2`: skipped updates on two DeepSpeed ranks, ZeRO-2 then ZeRO-3 (one
launch: the start-up is paid once).

    python -m torch.distributed.run --standalone --nproc_per_node=2 nonfinite_ranks.py OUT_DIR CACHE_DIR

For each stage, the embedded run of 4 steps (2 updates a step, a checkpoint every step) with the
gradients of updates 2, 5, 6 and 7 made NaN on rank 1 only (`nonfinite_faults`): every rank must skip
them, and stop at step 4 with `NonFiniteError`; then the same run again, unpoisoned, resumes from
`latest` and finishes. Each rank writes OUT_DIR/zero{stage}_rank{rank}.json: its error message (or
null) and `latest` after the stop; the run folder is OUT_DIR/zero{stage}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' helpers

from conf_helpers import compose_config  # noqa: E402
from nonfinite_faults import poison_updates  # noqa: E402

from gdro.config import parse_run_config  # noqa: E402
from gdro.errors import NonFiniteError  # noqa: E402
from gdro.train.loop import train  # noqa: E402
from gdro.train.parallel.world import World  # noqa: E402

SETTINGS = [
    "debug=quick",
    "trainer.backend=deepspeed",
    "trainer.steps=4",
    "trainer.save_every=1",
    "trainer.eval_every=1000",
    "trainer.torch_threads=1",
    "trainer.lr=0.001",
    "trainer.warmup_steps=0",
]
POISONED = {2, 5, 6, 7}  # one alone, then three in a row (trainer.max_nonfinite_skips = 3)


def main(out: Path, cache: Path) -> None:
    world = World.from_env()
    for stage in (2, 3):
        config = compose_config([*SETTINGS, f"deepspeed=zero{stage}", f"cache_dir={cache}"])
        run_dir = out / f"zero{stage}"
        undo = poison_updates(POISONED, rank=1)
        error = None
        try:
            train(parse_run_config(config), run_dir, config, progress=False, world=world)
        except NonFiniteError as stopped:
            error = str(stopped)
        finally:
            undo()
        latest = (run_dir / "checkpoints" / "latest").read_text().strip()
        world.barrier()
        train(parse_run_config(config), run_dir, config, progress=False, world=world)  # resume=auto
        report = {"error": error, "latest_after_stop": latest}
        (out / f"zero{stage}_rank{world.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
