"""The world of ranks: process-group setup from the launcher's environment, and the few collectives the
trainer needs (a step's outcome is one `gather` of every rank's share, `gdro.train.grpo_step`).

`torchrun` starts one process per GPU and sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT. Under Hydra's submitit launchers (`hydra/launcher=slurm|local`) each of a job's tasks
(`tasks_per_node` per node) runs the Hydra job, and `export_submitit_ranks` derives the same variables
from the job's environment (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, the first node of the job as
master). `World.from_env` reads them and, when WORLD_SIZE > 1, initialises torch.distributed: NCCL on
CUDA, gloo on CPU. A single process (no variables) is a world of one whose collectives return their
input, so the trainer has one code path.

A group this module initialises is destroyed at interpreter exit (`atexit`): gloo's worker threads
still hold tensors when an undestroyed group is torn down during finalisation, and the process then
aborts (SIGABRT, "terminate called without an active exception") after its work is done, at random.
"""

from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# Ranks wait in collectives while others generate or evaluate: far longer than torch's 10 minutes.
DEFAULT_TIMEOUT_MIN = 120


@dataclass(frozen=True)
class World:
    """This process's place among `size` ranks (`local_rank` on its node)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes metrics, W&B, plots and checkpoint metadata."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one rank (torch.distributed is initialised)."""
        return self.size > 1

    @classmethod
    def from_env(cls, backend: str | None = None, timeout_min: int = DEFAULT_TIMEOUT_MIN) -> World:
        """The world the launcher describes; initialises the process group (once) when WORLD_SIZE > 1."""
        export_submitit_ranks()
        size = int(os.environ.get("WORLD_SIZE", "1"))
        world = cls(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), size)
        if size > 1 and not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(world.local_rank)
            dist.init_process_group(
                backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"),
                timeout=datetime.timedelta(minutes=timeout_min),
            )
            atexit.register(destroy_group)
        return world

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()

    def max(self, value: int) -> int:
        """The largest `value` of any rank."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.int64, device=_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def gather(self, value: Any) -> list[Any]:
        """Every rank's picklable `value`, in rank order, on every rank."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def broadcast(self, value: Any, source: int = 0) -> Any:
        """Rank `source`'s picklable `value`, on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=source)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.distributed:
            dist.barrier()


def destroy_group() -> None:
    """Destroy the default process group, if one is still up (a no-op otherwise)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def export_submitit_ranks() -> bool:
    """In a submitit task that torchrun did not start: set RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
    MASTER_ADDR and MASTER_PORT (derived from the job id) from the job's environment; returns whether it did.

    Every task keeps every GPU of its node visible (submitit's default would hide all but one): the
    trainer picks `cuda:LOCAL_RANK`, and vLLM picks its GPU from LOCAL_RANK too.
    """
    if "RANK" in os.environ or not os.environ.get("SUBMITIT_EXECUTOR"):
        return False
    from submitit.helpers import TorchDistributedEnvironment  # only submitit jobs need it

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return True


def _device() -> torch.device:
    """Where collectives' tensors live: NCCL needs them on this rank's GPU."""
    return (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
