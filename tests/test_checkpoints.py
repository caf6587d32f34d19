"""Checkpoints survive a crash: `latest` always names a complete, loadable checkpoint; old ones are pruned.

The broken variants these tests reject (the save of the previous version): deleting a folder that
`latest` names before its replacement is in place, writing `latest` in place (a crash leaves it
empty), and keeping every checkpoint.
"""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conf_helpers import compose_config, forked_train_py

from gdro.config import RunConfig, parse_run_config
from gdro.core.curriculum import Curriculum
from gdro.train.build import build_curriculum, build_learner
from gdro.train.io.checkpoint import (
    CHECKPOINT_NAME,
    LATEST,
    CheckpointError,
    list_checkpoints,
    load_checkpoint,
    resolve_resume,
    save_checkpoint,
)
from gdro.train.learner import Learner
from gdro.train.task import check_fingerprint

SMALL_SIM = ["policy=sim", "logger=none", "policy.num_prompts=64"]


class SimulatedCrash(Exception):
    """The process died here."""


@pytest.fixture(scope="module")
def run() -> RunConfig:
    return parse_run_config(compose_config(SMALL_SIM))


def fresh(run: RunConfig) -> tuple[Learner, Curriculum]:
    policy = build_learner(run)
    return policy, build_curriculum(run, policy.num_prompts)


def advance(policy: Learner, curriculum: Curriculum) -> None:
    """One training step, so every checkpoint holds a different state."""
    plan = curriculum.plan(8)
    outcome = policy.train_step(plan)
    curriculum.observe(plan, outcome.correct_per_prompt, outcome.surrogate_loss)


def snapshot(policy: Learner, curriculum: Curriculum) -> str:
    return json.dumps({"policy": policy.simulator.state_dict(), "curriculum": curriculum.state_dict()})


def resume_latest(run: RunConfig, run_dir: Path) -> tuple[Path, int, str]:
    """Resolve `resume=latest` and load it into fresh objects, as train.py does: (folder, step, state)."""
    checkpoint = resolve_resume(LATEST, run_dir)
    assert checkpoint is not None, "no latest checkpoint"
    policy, curriculum = fresh(run)
    with torch.random.fork_rng(devices=[]):
        step = load_checkpoint(checkpoint, curriculum, policy)
    assert step == int(CHECKPOINT_NAME.fullmatch(checkpoint.name)[1])
    return checkpoint, step, snapshot(policy, curriculum)


def temporaries(run_dir: Path) -> list[str]:
    return sorted(entry.name for entry in (run_dir / "checkpoints").iterdir() if entry.name.startswith("."))


def save_steps(run: RunConfig, run_dir: Path, steps: range, keep: int) -> dict[int, str]:
    """Train and save `steps`; the state saved at each."""
    policy, curriculum = fresh(run)
    saved = {}
    for step in steps:
        advance(policy, curriculum)
        save_checkpoint(run_dir, step, curriculum, policy, keep=keep)
        saved[step] = snapshot(policy, curriculum)
    return saved


def test_keeps_the_newest_checkpoints_and_latest_names_the_last(run: RunConfig, tmp_path: Path) -> None:
    saved = save_steps(run, tmp_path, range(1, 7), keep=3)
    assert sorted(list_checkpoints(tmp_path / "checkpoints")) == ["step_000004", "step_000005", "step_000006"]
    checkpoint, step, state = resume_latest(run, tmp_path)
    assert checkpoint.name == "step_000006" and step == 6 and state == saved[6]
    assert temporaries(tmp_path) == []
    save_steps(run, tmp_path, range(7, 8), keep=1)
    assert list(list_checkpoints(tmp_path / "checkpoints")) == ["step_000007"]


def test_a_failing_policy_save_leaves_the_previous_latest_loadable(
    run: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = save_steps(run, tmp_path, range(1, 3), keep=3)
    policy, curriculum = fresh(run)
    advance(policy, curriculum)

    def save_half_then_fail(directory: Path) -> None:
        (directory / "simulator.json").write_text('{"skill": [0.1, ')
        raise OSError("No space left on device")

    monkeypatch.setattr(policy, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, 3, curriculum, policy, keep=3)
    checkpoint, step, state = resume_latest(run, tmp_path)
    assert (checkpoint.name, step, state) == ("step_000002", 2, saved[2])
    assert temporaries(tmp_path) == []  # the half-written save is removed: a full disk is not kept full
    monkeypatch.undo()
    save_checkpoint(tmp_path, 3, curriculum, policy, keep=3)
    assert resume_latest(run, tmp_path)[1] == 3
    assert temporaries(tmp_path) == []


def test_stale_temporaries_are_ignored_by_resume_and_removed_by_the_next_save(
    run: RunConfig, tmp_path: Path
) -> None:
    saved = save_steps(run, tmp_path, range(1, 3), keep=3)
    root = tmp_path / "checkpoints"
    (root / ".step_000003.5f2a.tmp").mkdir()  # a save killed while writing
    (root / ".step_000003.5f2a.tmp" / "state.json").write_text('{"step": 3, "curr')
    (root / ".step_000003.tmp").mkdir()  # the previous version's staging folder
    (root / ".step_000001.deleted.77aa.tmp").mkdir()  # a deletion killed half-way
    (root / ".latest.9c1e.tmp").write_text("step_0000")  # a pointer update killed while writing
    assert resume_latest(run, tmp_path)[1:] == (2, saved[2])
    save_steps(run, tmp_path, range(3, 4), keep=3)
    assert temporaries(tmp_path) == []
    assert sorted(list_checkpoints(root)) == ["step_000001", "step_000002", "step_000003"]


def test_saving_a_step_again_after_an_earlier_resume(run: RunConfig, tmp_path: Path) -> None:
    """A run resumed from step 1 saves steps 2 and 3 again: new revisions, never the folder latest names."""
    first = save_steps(run, tmp_path, range(1, 4), keep=3)
    again = save_steps(run, tmp_path, range(3, 4), keep=3)
    assert again[3] != first[3]
    assert resume_latest(run, tmp_path)[0].name == "step_000003.1"
    assert sorted(list_checkpoints(tmp_path / "checkpoints")) == [
        "step_000001",
        "step_000002",
        "step_000003.1",
    ]
    rerun = save_steps(run, tmp_path, range(2, 3), keep=3)
    checkpoint, step, state = resume_latest(run, tmp_path)
    assert (checkpoint.name, step, state) == ("step_000002.1", 2, rerun[2])
    # The abandoned step 3 and the superseded step 2 are gone; step 1 is still before latest.
    assert sorted(list_checkpoints(tmp_path / "checkpoints")) == ["step_000001", "step_000002.1"]


def test_a_checkpoint_of_other_prompts_is_refused_with_the_reason() -> None:
    check_fingerprint("0123456789abcdef", "0123456789abcdef")
    check_fingerprint(None, None)  # a generated task: its config fixes the prompts
    with pytest.raises(ValueError, match="misalign the classifier's per-prompt history"):
        check_fingerprint("0123456789abcdef", "fedcba9876543210")


def test_latest_that_names_no_checkpoint_is_an_error_not_a_silent_fresh_start(tmp_path: Path) -> None:
    assert resolve_resume(LATEST, tmp_path) is None  # no save yet: start fresh
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / LATEST).write_text("step_000004\n")
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        resolve_resume(LATEST, tmp_path)
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        resolve_resume(str(tmp_path), tmp_path / "elsewhere")


@contextmanager
def crash_at(monkeypatch: pytest.MonkeyPatch, point: int) -> Iterator[None]:
    """Die just before the `point`-th file-system change (counted from 1) of the block.

    Changes: mkdir, rename, replace, unlink and rmdir (shutil.rmtree and pathlib go through them),
    and opening a file to write, which dies after the open: the file is created or truncated, empty.
    """
    count = itertools.count(1)

    def intercept(original):
        def change(*args, **kwargs):
            if next(count) == point:
                raise SimulatedCrash
            return original(*args, **kwargs)

        return change

    original_open = io.open

    def open_file(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wxa+") and next(count) == point:
            original_open(file, mode, *args, **kwargs).close()
            raise SimulatedCrash
        return original_open(file, mode, *args, **kwargs)

    with monkeypatch.context() as patch:
        for name in ("mkdir", "rename", "replace", "unlink", "rmdir"):
            patch.setattr(os, name, intercept(getattr(os, name)))
        patch.setattr(io, "open", open_file)
        yield


@pytest.mark.parametrize("resave", [False, True], ids=["next_step", "same_step_again"])
def test_a_crash_at_every_file_system_change_leaves_latest_complete(
    run: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resave: bool
) -> None:
    """Steps 1-3 saved with keep=2, then step 4 (or step 3 again, as a resumed run would) dies at point k."""
    for point in itertools.count(1):
        run_dir = tmp_path / f"crash_{point}"
        saved = save_steps(run, run_dir, range(1, 4), keep=2)
        policy, curriculum = fresh(run)
        for _ in range(5):
            advance(policy, curriculum)
        step = 3 if resave else 4
        try:
            with crash_at(monkeypatch, point):
                save_checkpoint(run_dir, step, curriculum, policy, keep=2)
        except SimulatedCrash:
            _, loaded_step, state = resume_latest(run, run_dir)
            assert (loaded_step, state) in {(3, saved[3]), (step, snapshot(policy, curriculum))}, point
            save_steps(run, run_dir, range(5, 6), keep=2)  # the restarted run saves over the debris
            assert resume_latest(run, run_dir)[1] == 5
            continue
        assert point > 5, "the save made too few changes for the count to be meaningful"
        assert (resume_latest(run, run_dir)[1:]) == (step, snapshot(policy, curriculum))
        break


KILLS = 6  # at least; up to MAX_KILLS until two kills have landed inside a save
MAX_KILLS = 12
KEEP = 3


def test_sigkill_at_random_moments_always_leaves_a_loadable_latest(tmp_path: Path) -> None:
    """`train.py` saving every step, SIGKILLed at seeded random moments, each process resuming the last.

    policy=sim with its default 2,048 prompts: writing the ~2 MB of state takes most of a step, so
    most kills land inside a save (a hidden `.step_*` folder is left), some inside pruning or between.
    """
    rng = random.Random(7)
    run_dir = tmp_path / "run"
    overrides = [
        "policy=sim",
        "logger=none",
        "trainer.steps=1000000",
        "trainer.save_every=1",
        "trainer.eval_every=1000000",
        "trainer.plot_every=1000000",
        f"trainer.keep_checkpoints={KEEP}",
        "resume=latest",
    ]
    run = parse_run_config(compose_config(overrides))
    processes = multiprocessing.get_context("forkserver")
    processes.set_forkserver_preload(["gdro.train.loop", "hydra"])
    pointer = run_dir / "checkpoints" / LATEST
    started = time.perf_counter()
    steps, landed_in_save, previous_temporaries = [0], 0, []
    for kill in range(MAX_KILLS):
        if kill >= KILLS and landed_in_save >= 2:
            break
        before = pointer.read_text() if pointer.exists() else None
        log = tmp_path / f"train_{kill}.log"
        process = processes.Process(
            target=forked_train_py, args=([*overrides, f"hydra.run.dir={run_dir}"], log)
        )
        process.start()
        try:
            deadline = time.monotonic() + 120
            # Kill only once this process has saved (so it resumed and cleaned up), at a random phase.
            while not (pointer.exists() and pointer.read_text() not in (before, "")):
                assert process.is_alive(), log.read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint saved"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            process.kill()  # SIGKILL
            process.join()
        left = temporaries(run_dir)
        landed_in_save += any(name.startswith(".step_") and ".deleted." not in name for name in left)
        checkpoint, step, _ = resume_latest(run, run_dir)
        assert (checkpoint / "simulator.json").is_file()
        assert step > steps[-1], f"kill {kill}: latest went from step {steps[-1]} back to {step}"
        steps.append(step)
        # At most one save in flight: KEEP checkpoints, plus the new one when killed before pruning.
        assert len(list_checkpoints(run_dir / "checkpoints")) <= KEEP + 1, sorted(
            list_checkpoints(run_dir / "checkpoints")
        )
        assert not set(previous_temporaries) & set(left), "a save did not remove a crashed save's leftovers"
        previous_temporaries = left
    elapsed = time.perf_counter() - started
    print(
        f"{len(steps) - 1} kills in {elapsed:.1f} s, {landed_in_save} inside a save; latest steps {steps[1:]}"
    )
    assert landed_in_save >= 2, "the kills never hit a save in progress: the test does not exercise the race"
