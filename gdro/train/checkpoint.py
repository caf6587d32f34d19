"""Checkpoints: `run_dir/checkpoints/step_NNNNNN/` with the curriculum, RNG states and the policy.

state.json holds the step, every controller's state (data order included) and torch's RNG state, all
JSON; the policy writes its own files beside it. A checkpoint is written to a temporary folder and
renamed, then `checkpoints/latest` names it, so an interrupted save never becomes the latest.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from gdro.core.curriculum import Curriculum
from gdro.train.policy import Policy

LATEST = "latest"


def save_checkpoint(run_dir: Path, step: int, curriculum: Curriculum, policy: Policy) -> Path:
    """Write the checkpoint of `step` and point `latest` at it; returns its folder."""
    root = run_dir / "checkpoints"
    target = root / f"step_{step:06d}"
    staging = root / f".{target.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    state = {
        "step": step,
        "curriculum": curriculum.state_dict(),
        "torch_rng": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }
    (staging / "state.json").write_text(json.dumps(state))
    policy.save(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (root / LATEST).write_text(target.name + "\n")
    return target


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """The checkpoint folder `resume` names: a checkpoint, a run folder (its latest) or `latest` (this run's).

    `latest` with no checkpoint yet returns None (start fresh), so a preempted job can always pass it.
    """
    if resume is None:
        return None
    if resume == LATEST:
        pointer = run_dir / "checkpoints" / LATEST
        return run_dir / "checkpoints" / pointer.read_text().strip() if pointer.exists() else None
    path = Path(resume)
    if (path / "state.json").exists():
        return path
    pointer = path / "checkpoints" / LATEST
    if pointer.exists():
        return path / "checkpoints" / pointer.read_text().strip()
    raise FileNotFoundError(
        f"resume={resume}: not a checkpoint folder (no state.json) nor a run folder with checkpoints/latest"
    )


def load_checkpoint(path: Path, curriculum: Curriculum, policy: Policy) -> int:
    """Restore the curriculum, the policy and torch's RNG from `path`; returns the step it was saved at."""
    state: dict[str, Any] = json.loads((path / "state.json").read_text())
    curriculum.load_state_dict(state["curriculum"])
    policy.load(path)
    rng = torch.frombuffer(bytearray(base64.b64decode(state["torch_rng"])), dtype=torch.uint8)
    torch.set_rng_state(rng)
    return int(state["step"])
