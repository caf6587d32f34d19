"""`World.from_env` under `torchrun` (2 CPU ranks, gloo): the collectives, and the group it initialised is
destroyed at exit while the interpreter is whole (an undestroyed gloo group aborts some exits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit
import torch.distributed as dist

# Registered first, so it runs last (atexit is last in, first out): after World's own handler.
atexit.register(lambda: print(f"group alive at exit: {dist.is_initialized()}", flush=True))

from gdro.train.parallel.world import World

world = World.from_env()
print(f"rank {world.rank} of {world.size}: sum {world.sum([world.rank + 1.0])[0]:g}, "
      f"gather {world.gather(world.rank)}, max {world.max(world.rank)}, "
      f"broadcast {world.broadcast(world.rank * 10 + 7, source=1)}", flush=True)
world.barrier()
"""


def test_two_ranks_run_the_collectives_and_exit_with_the_group_destroyed(tmp_path: Path) -> None:
    """Each rank sees sum 3, gather [0, 1], max 1, rank 1's broadcast 17, then exits 0 with no group left."""
    script = tmp_path / "world_exit.py"
    script.write_text(SCRIPT)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Both ranks write to one pipe, so their lines may interleave: count the texts, not lines.
    for rank in (0, 1):
        assert f"rank {rank} of 2: sum 3, gather [0, 1], max 1, broadcast 17" in result.stdout
    assert result.stdout.count("group alive at exit: False") == 2, result.stdout
    assert "terminate called" not in result.stderr
