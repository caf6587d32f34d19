"""One writer per run folder: an exclusive `flock` on `<run_dir>/.lock`, held for the run's life.

Taken before the run writes anything of its own to the folder (Hydra's `.hydra/` and log file come
first). The holder writes its pid and host into the file; a second process fails at once with
`RunFolderBusy` naming the folder, that pid and host. With several ranks rank 0 holds it and the
others learn the outcome. The kernel releases the lock when the holder exits, however it exits; the
file stays (removing it would let two processes lock two different files under one name).

A job that SLURM requeued (SLURM_RESTART_COUNT > 0) may start while the previous run of the same job
is still finishing, on another node: it waits up to `trainer.lock_wait_s` (default 120 s: an NFSv4
lock of a dead client is released after its 90 s lease) and then fails the same way. Any other start
fails at once.

A file system without locks: `flock` fails with ENOLCK (NFS without lockd), and the run stops saying
so; `trainer.run_lock=false` runs without the lock (docs/scaling.md). On NFS mounted `nolock` or
`local_lock=flock`, flock succeeds but only excludes processes of the same node.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gdro.train.parallel.world import World

LOCK_FILE = ".lock"
POLL_SECONDS = 0.5

log = logging.getLogger(__name__)


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock (or the file system has no locks)."""


def requeued() -> bool:
    """Whether this process is a SLURM job that was requeued (it may race its own previous run)."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


@contextmanager
def hold_run_folder(run_dir: Path, wait_s: float, world: World, enabled: bool = True) -> Iterator[None]:
    """Hold `run_dir`'s lock (rank 0) for the block; every rank raises `RunFolderBusy` when rank 0 cannot
    take it. `wait_s`: how long a requeued job waits for the holder (any other start waits 0)."""
    descriptor, refusal = None, None
    if world.is_main and enabled:
        try:
            descriptor = acquire(run_dir, wait_s if requeued() else 0.0)
        except RunFolderBusy as error:
            refusal = str(error)
    refusal = world.broadcast(refusal)
    if refusal is not None:
        raise RunFolderBusy(refusal)
    try:
        yield
    finally:
        if descriptor is not None:
            os.close(descriptor)  # releases the flock


def acquire(run_dir: Path, wait_s: float) -> int:
    """Lock `run_dir/.lock` (created with the folder when missing), waiting up to `wait_s` seconds for a
    holder; write this process's pid and host into it; returns the open descriptor that holds the lock."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    waited = False
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(descriptor)
                raise RunFolderBusy(
                    f"{run_dir} is in use by {_holder(path)} (lock {path}); waited {wait_s:.0f} s. "
                    "Two processes writing one run folder corrupt it: stop the other one, or train into "
                    "another folder (hydra.run.dir=...)"
                ) from None
            if not waited:
                log.warning("%s is held by %s: waiting up to %.0f s", path, _holder(path), wait_s)
                waited = True
            time.sleep(POLL_SECONDS)
        except OSError as error:
            os.close(descriptor)
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            raise RunFolderBusy(
                f"cannot lock {path}: {os.strerror(error.errno)}; the file system of {run_dir} has no "
                "locks (NFS without lockd?). Train into a folder on a file system with locks, or run "
                "with trainer.run_lock=false once you are sure no other process writes this folder"
            ) from error
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    os.fsync(descriptor)
    return descriptor


def _holder(path: Path) -> str:
    """What the lock file says of its holder: `pid P on HOST`."""
    text = path.read_text().strip() if path.exists() else ""
    return text or "a process that has not written its pid yet"
