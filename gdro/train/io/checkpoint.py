"""Checkpoints: `run_dir/checkpoints/step_NNNNNN/` with the curriculum, RNG states and the learner's state.

state.json holds the step, every controller's state (data order included), torch's RNG state and the
run's generated-compute totals (`compute`, absent in checkpoints written before them), all JSON; the learner writes its own files beside it (`policy.pt` and `task.json`, or `simulator.json`).
`checkpoints/latest` holds the name of the checkpoint to resume from.

Crash safety (a SIGKILL or a power cut at any instant leaves `latest` naming a complete checkpoint):
- No checkpoint is written under a name that exists. It is written into a hidden temporary folder
  (`.step_NNNNNN.<random>.tmp`), its files and the folder are fsynced, and `os.replace` gives it a
  free name: `step_NNNNNN`, or `step_NNNNNN.R` (revision R) when a resumed run saves a step that is
  still on disk. So a folder under a checkpoint name is always complete, and the checkpoint `latest`
  names is never touched while it is the latest: replacing a folder in place (delete, then rename)
  or moving it aside first would both open a window where `latest` names a missing folder.
- `latest` is replaced atomically: a temporary file, fsynced, then `os.replace`; the folder entries
  are fsynced after each rename.
- Deleting comes last, once `latest` names the new checkpoint: each doomed folder is first renamed to
  a hidden temporary name, then removed, so a crash during the removal leaves only a temporary entry.
  Temporary entries (`.*.tmp`, also those of a crashed save) are removed after the next save.

Verified (`gdro.train.io.manifest`): the last file written into the temporary folder, before the rename,
is `manifest.json`, every file's size and SHA-256. `resolve_resume` verifies before anything is loaded:
- `resume: auto` takes the checkpoint `latest` names if it verifies, else the newest before it that does.
  Each one that fails is logged with the reason and renamed aside, `step_NNNNNN.bad-<kind>` (kind:
  missing, size, digest, manifest, unlisted), never deleted (pruning ignores these names); `latest` is
  pointed at the one loaded. When none verifies the error lists each and why.
- `resume: PATH` with a checkpoint that fails raises, naming the file; nothing is renamed.
- A checkpoint written before manifests has none: it is loaded as it is, with the warning "unverified".

A failed write (full disk, quota, I/O error, read-only: `gdro.train.io.storage`) raises a `StorageError`
naming the path and the free space; the temporary folder is removed and `latest` still names the last good
checkpoint. Temporaries left by a killed process are removed when the next run starts and after each save.

With several ranks, rank 0 creates the temporary folder and tells the others; every rank then writes
its part of the learner's state (DeepSpeed's shards) into it, and rank 0 writes state.json (with every
rank's torch RNG state); all ranks hash a share of the files for the manifest, and rank 0 writes it,
renames, points `latest` and prunes. Verifying is shared the same way, and every rank gets rank 0's choice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch

from gdro.core.curriculum import Curriculum
from gdro.train.io.durable import fsync_directory, fsync_tree
from gdro.train.io.manifest import MANIFEST_FILE, Verdict, verify, write_manifest
from gdro.train.io.storage import storage_errors
from gdro.train.learner import Learner
from gdro.train.parallel.world import World

T = TypeVar("T")
log = logging.getLogger(__name__)

LATEST = "latest"
AUTO = "auto"  # resume=auto (or resume=latest): this run folder's latest checkpoint, if any
CHECKPOINT_NAME = re.compile(r"step_(\d+)(?:\.(\d+))?")  # step_000010, or step_000010.1 once re-saved
TEMPORARY_SUFFIX = ".tmp"  # with a leading "." : a save, a pointer or a deletion in progress
SET_ASIDE = ".bad-"  # step_NNNNNN.bad-<kind>: a checkpoint that failed verification, kept for inspection


class CheckpointError(RuntimeError):
    """A checkpoint to resume from fails verification (or none of a run folder's does)."""


def save_checkpoint(
    run_dir: Path,
    step: int,
    curriculum: Curriculum,
    learner: Learner,
    *,
    keep: int,
    world: World | None = None,
    config_digest: str | None = None,
    compute: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of `step` (its manifest records `config_digest`; state.json holds `compute`,
    the run's `gdro.core.compute.ComputeTotals` state), point `latest` at it, then
    prune; returns its folder. A failed write raises (a `StorageError` for a file system's failure) and
    leaves no temporary folder behind.

    Pruning keeps the new checkpoint and the `keep - 1` before it in step order; it deletes older
    ones, superseded revisions of a step, checkpoints of later steps (an abandoned future: this run
    resumed from an earlier step and truncated metrics.jsonl there) and temporaries of crashed saves.
    """
    world = world if world is not None else World()
    root = run_dir / "checkpoints"
    staging = None
    if world.is_main:
        with storage_errors(root, "creating a checkpoint folder in"):
            if not root.is_dir():
                root.mkdir(parents=True)
                fsync_directory(run_dir)
            staging = _temporary(root, f"step_{step:06d}")
            staging.mkdir()
    staging = world.broadcast(staging)
    rng_states = world.gather(_encode_rng(torch.get_rng_state()))
    target = None
    with _removed_on_failure(staging), storage_errors(staging, f"writing the checkpoint of step {step} into"):
        learner.save(staging)  # every rank: DeepSpeed writes each rank's shards
        world.barrier()
        if world.is_main:
            state = {
                "step": step,
                "curriculum": curriculum.state_dict(),
                "torch_rng": rng_states[0],
                "torch_rng_ranks": rng_states,
            }
            if compute is not None:
                state["compute"] = compute
            (staging / "state.json").write_text(json.dumps(state))
        write_manifest(staging, step, config_digest, world)  # the last file
        if world.is_main:
            fsync_tree(staging)
            target = root / _unused_name(root, step)
            os.replace(staging, target)
            fsync_directory(root)
    if world.is_main:
        with storage_errors(root / LATEST, "writing the pointer"):
            _point_latest(root, target.name)
        _prune(root, target.name, keep)
    return world.broadcast(target)


def resolve_resume(resume: str | None, run_dir: Path, world: World | None = None) -> Path | None:
    """The verified checkpoint folder `resume` names: a checkpoint, a run folder (its latest), or `auto`
    (also spelled `latest`): this run folder's newest checkpoint that verifies (module docstring).
    Collective: every rank gets the same folder.

    `auto` with no checkpoint yet returns None (start fresh): it is the default, so a job that SLURM
    requeues into the same run folder (preemption, time limit) continues where it stopped.
    """
    world = world if world is not None else World()
    if resume is None:
        return None
    if resume in (AUTO, LATEST):
        return _newest_verified(run_dir / "checkpoints", world)
    checkpoint = _decided_by_main(world, lambda: _named_checkpoint(Path(resume)))
    verdict = verify_checkpoint(checkpoint, world)
    if verdict.status == "bad":
        raise CheckpointError(f"resume={resume}: {verdict.detail}")
    return checkpoint


def load_checkpoint(
    path: Path,
    curriculum: Curriculum,
    learner: Learner,
    world: World | None = None,
    *,
    verified: bool = False,
) -> int:
    """Restore the curriculum, the learner and torch's RNG (this rank's) from `path`; returns the step it was
    saved at. `path` is verified first unless `verified` (`resolve_resume` did). A checkpoint of a run with
    another number of ranks is refused."""
    world = world if world is not None else World()
    if not verified:
        verdict = verify_checkpoint(path, world)
        if verdict.status == "bad":
            raise CheckpointError(f"{path} fails verification: {verdict.detail}")
    state: dict[str, Any] = json.loads((path / "state.json").read_text())
    rng_states = state.get("torch_rng_ranks", [state["torch_rng"]])
    if len(rng_states) != world.size:
        raise ValueError(
            f"{path} was saved by {len(rng_states)} rank(s); this run has {world.size}: resume with as many"
        )
    learner.load(path)  # first: it checks the prompts are the ones the checkpoint was trained on
    curriculum.load_state_dict(state["curriculum"])
    rng = torch.frombuffer(bytearray(base64.b64decode(rng_states[world.rank])), dtype=torch.uint8)
    torch.set_rng_state(rng)
    return int(state["step"])


def saved_compute_totals(path: Path) -> dict[str, Any] | None:
    """The compute totals the checkpoint at `path` saved; None for one written before they were saved."""
    state: dict[str, Any] = json.loads((path / "state.json").read_text())
    return state.get("compute")


def verify_checkpoint(path: Path, world: World | None = None) -> Verdict:
    """Collective: `path` against its manifest (`gdro.train.io.manifest.verify`; the step from its name
    when it has a checkpoint's name); logs the warning for a checkpoint without one."""
    world = world if world is not None else World()
    match = CHECKPOINT_NAME.fullmatch(path.name)
    verdict = verify(path, int(match[1]) if match else None, world)
    if verdict.status == "unverified" and world.is_main:
        log.warning("%s: unverified: written before manifests; loading it as it is", path)
    return verdict


def curriculum_digest(curriculum: Curriculum) -> str:
    """SHA-256 of the curriculum's state (what `state.json` stores): equal iff the controllers agree."""
    return hashlib.sha256(json.dumps(curriculum.state_dict(), sort_keys=True).encode()).hexdigest()


def _encode_rng(state: torch.Tensor) -> str:
    """torch's RNG state as base64 text for JSON."""
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def list_checkpoints(root: Path) -> dict[str, tuple[int, int]]:
    """Checkpoint folder name -> (step, revision) for every complete checkpoint in `root`."""
    found = {}
    for entry in root.iterdir() if root.is_dir() else ():
        match = CHECKPOINT_NAME.fullmatch(entry.name)
        if match and entry.is_dir():
            found[entry.name] = (int(match[1]), int(match[2] or 0))
    return found


def _named_checkpoint(path: Path) -> Path:
    """The checkpoint `resume=PATH` names: PATH itself (a checkpoint folder) or its run folder's latest."""
    if (path / "state.json").exists() or (path / MANIFEST_FILE).exists():
        return path
    checkpoint = _follow_latest(path / "checkpoints")
    if checkpoint is None:
        raise FileNotFoundError(
            f"resume={path}: not a checkpoint folder (no state.json) nor a run folder with checkpoints/latest"
        )
    return checkpoint


def _follow_latest(root: Path) -> Path | None:
    """The checkpoint `root/latest` names; None when there is no `latest` (no save completed yet)."""
    pointer = root / LATEST
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    checkpoint = root / name
    if not CHECKPOINT_NAME.fullmatch(name) or not checkpoint.is_dir():
        raise FileNotFoundError(f"{pointer} names {name!r}, which is not a checkpoint folder")
    return checkpoint


def _newest_verified(root: Path, world: World) -> Path | None:
    """`resume: auto`: the checkpoint `latest` names, else the newest before it, that verifies; each one
    that fails is renamed aside. None when there is no `latest`; raises when none verifies."""
    candidates = _decided_by_main(world, lambda: _candidates(root))
    if candidates is None:
        return None
    failures = []
    for checkpoint in candidates:
        verdict = verify_checkpoint(checkpoint, world)
        if verdict.status != "bad":
            if failures and world.is_main:
                _point_latest(root, checkpoint.name)
                log.warning("resuming from %s, the newest checkpoint that verifies", checkpoint)
            return checkpoint
        aside = _decided_by_main(world, partial(_set_aside, checkpoint, verdict.kind))
        kept = f"; renamed to {aside.name}" if aside is not None else ""
        if world.is_main:
            log.warning("skipping checkpoint %s: %s%s", checkpoint.name, verdict.detail, kept)
        failures.append(f"{checkpoint.name}: {verdict.detail}{kept}")
    raise CheckpointError(
        f"no checkpoint of {root} verifies (each was kept for inspection; resume=null starts over):\n  "
        + "\n  ".join(failures)
    )


def _candidates(root: Path) -> list[Path] | None:
    """What `resume: auto` tries, in order: the checkpoint `latest` names, then every checkpoint before it,
    newest first; None when there is no `latest`."""
    pointer = root / LATEST
    if not pointer.exists():
        return None
    name = pointer.read_text().strip()
    match = CHECKPOINT_NAME.fullmatch(name)
    latest_key = (int(match[1]), int(match[2] or 0)) if match else None
    earlier = sorted(
        ((key, other) for other, key in list_checkpoints(root).items() if other != name),
        reverse=True,
    )
    before = [root / other for key, other in earlier if latest_key is None or key < latest_key]
    return [root / name, *before] if match else before


def _set_aside(checkpoint: Path, kind: str) -> Path | None:
    """Rename a checkpoint that failed verification to `<name>.bad-<kind>` (`-N` added while taken); None
    when there is no such folder."""
    if not checkpoint.is_dir() or not CHECKPOINT_NAME.fullmatch(checkpoint.name):
        return None
    target = checkpoint.with_name(f"{checkpoint.name}{SET_ASIDE}{kind}")
    number = 1
    while target.exists():
        number += 1
        target = checkpoint.with_name(f"{checkpoint.name}{SET_ASIDE}{kind}-{number}")
    os.replace(checkpoint, target)
    fsync_directory(checkpoint.parent)
    return target


def _decided_by_main(world: World, decide: Callable[[], T]) -> T:
    """`decide()` on rank 0 and its result on every rank; an OSError or CheckpointError it raises is raised
    on every rank (the others would otherwise wait for rank 0 forever)."""
    outcome: tuple[T | None, BaseException | None] = (None, None)
    if world.is_main:
        try:
            outcome = (decide(), None)
        except (OSError, CheckpointError) as error:
            outcome = (None, error)
    result, error = world.broadcast(outcome)
    if error is not None:
        raise error
    return result


def _unused_name(root: Path, step: int) -> str:
    """`step_NNNNNN`, or `step_NNNNNN.R` with R above every revision of this step in `root`."""
    name = f"step_{step:06d}"
    revisions = [revision for saved, revision in list_checkpoints(root).values() if saved == step]
    return name if not revisions else f"{name}.{max(revisions) + 1}"


def _point_latest(root: Path, name: str) -> None:
    """Atomically replace `root/latest` with a file holding `name`."""
    temporary = _temporary(root, LATEST)
    with temporary.open("x") as file:
        file.write(name + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, root / LATEST)
    fsync_directory(root)


def _prune(root: Path, latest: str, keep: int) -> None:
    """Delete all but `latest` and the `keep - 1` checkpoints before it, and temporary entries."""
    checkpoints = list_checkpoints(root)
    newest_revision: dict[int, tuple[int, int]] = {}
    for key in checkpoints.values():
        newest_revision[key[0]] = max(newest_revision.get(key[0], key), key)
    latest_key = checkpoints[latest]
    earlier = sorted(key for key in newest_revision.values() if key < latest_key)
    kept = {latest_key, *earlier[max(0, len(earlier) - (keep - 1)) :]}
    doomed = [name for name, key in checkpoints.items() if key not in kept]
    remove_temporaries(root)
    for name in doomed:  # out of the checkpoint names first, so a crash mid-delete leaves a temporary
        os.replace(root / name, _temporary(root, f"{name}.deleted"))
    if doomed:
        fsync_directory(root)
        remove_temporaries(root)


def _temporary(root: Path, stem: str) -> Path:
    """A fresh hidden name in `root` for an entry being written or deleted: `.stem.<random>.tmp`."""
    return root / f".{stem}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}"


def remove_temporaries(root: Path) -> list[Path]:
    """Remove every hidden temporary entry of `root` (a checkpoints folder): saves, pointers and deletions
    in progress or crashed; returns them."""
    removed = []
    for entry in sorted(root.iterdir()) if root.is_dir() else ():
        if entry.name.startswith(".") and entry.name.endswith(TEMPORARY_SUFFIX):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


@contextmanager
def _removed_on_failure(staging: Path) -> Iterator[None]:
    """Remove the temporary folder of a save whose writes fail, so it does not keep a full disk full."""
    try:
        yield
    except (OSError, RuntimeError):
        shutil.rmtree(staging, ignore_errors=True)
        raise
