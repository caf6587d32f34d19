"""A run folder on failing storage and a run folder wanted by two processes, with real processes and a
real small file system (a tmpfs: mounting needs root, which CI has; a test that cannot mount fails).

The broken variants these tests reject: the save before this change, which died on a full disk with
torch's "iostream error" (or Python's bare errno) naming no path and left its temporary folder to keep
the disk full; and the loop without a lock, where a second `train.py` into a live run folder appended
its own records to the first's metrics.jsonl.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conf_helpers import compose_config, forked_train_py
from safetensors.torch import save_file

from gdro.config import parse_run_config
from gdro.train.io.metrics import MetricsWriter, read_metrics
from gdro.train.io.run_lock import LOCK_FILE, RunFolderBusy, hold_run_folder
from gdro.train.io.storage import StorageError, storage_errors
from gdro.train.loop import train
from gdro.train.parallel.world import World

SIM = ["policy=sim", "logger=none", "trainer.steps=6", "trainer.save_every=2"]
FREE_FOR_THE_RUN = (
    512 << 10
)  # bytes: the run folder and step 2's checkpoint (~280 KB), not step 4's too (~400 KB more)


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 9 MB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (uid {os.getuid()}; CI runs as root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Write a ballast file that leaves `leave` bytes free on `disk`."""
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * (shutil.disk_usage(disk).free - leave))
    return ballast


@pytest.fixture(scope="module")
def processes() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["gdro.train.loop", "hydra"])
    return context


def run_forked(processes, argv: list[str], log: Path, timeout: float = 120) -> int:
    """`train.py ARGV` in a forked process; its exit code."""
    process = processes.Process(target=forked_train_py, args=(argv, log))
    process.start()
    process.join(timeout)
    assert process.exitcode is not None, f"train.py still running after {timeout} s"
    return process.exitcode


def test_a_full_disk_during_a_save_is_said_plainly_and_the_run_resumes_once_space_is_freed(
    small_disk: Path, tmp_path: Path, processes
) -> None:
    run_dir = small_disk / "run"
    ballast = fill(small_disk, FREE_FOR_THE_RUN)
    argv = [*SIM, f"hydra.run.dir={run_dir}"]
    log = tmp_path / "full.log"
    assert run_forked(processes, argv, log) != 0
    output = log.read_text()
    root = run_dir / "checkpoints"
    assert "StorageError" in output and "no space left" in output, output[-3000:]
    assert f"writing the checkpoint of step 4 into {root}/.step_000004." in output, output[-3000:]
    assert "bytes free of" in output
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000002"]  # no temporary left
    assert (root / "latest").read_text().strip() == "step_000002"
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")] == [0, 1, 2, 3, 4]  # then it stopped

    ballast.unlink()
    assert run_forked(processes, argv, tmp_path / "resumed.log") == 0
    assert "at step 2" in (run_dir / "train.log").read_text()
    alone = tmp_path / "alone"
    config = compose_config(SIM)
    train(parse_run_config(config), alone, config, progress=False)
    resumed = read_metrics(run_dir / "metrics.jsonl")
    assert without_times(resumed) == without_times(read_metrics(alone / "metrics.jsonl"))


def test_torch_and_metrics_writes_on_a_full_disk_name_the_path(small_disk: Path) -> None:
    """torch.save's own stream error (no errno, no path), then a metrics append that is undone; an error
    that is no storage failure passes unchanged."""
    writer = MetricsWriter(small_disk / "metrics.jsonl")
    writer.write({"step": 0})
    fill(small_disk, 64 << 10)
    target = small_disk / "policy.pt"
    with pytest.raises(StorageError, match=rf"writing {target} failed: no space left .* bytes free of"):
        with storage_errors(target, "writing"):
            torch.save({"weights": torch.zeros(1 << 20)}, target)
    with pytest.raises(StorageError, match=rf"appending to {writer.path} failed: no space left"):
        writer.write({"step": 1, "filler": "x" * (1 << 20)})
    assert read_metrics(writer.path) == [{"step": 0}]  # no half line
    exported = small_disk / "model.safetensors"
    with pytest.raises(StorageError, match=rf"writing {exported} failed: no space left"):
        with storage_errors(exported, "writing"):
            save_file({"weights": torch.zeros(1 << 20)}, exported)  # safetensors' own error type
    with pytest.raises(ValueError, match="not a storage failure"):
        with storage_errors(target, "writing"):
            raise ValueError("not a storage failure")


def test_a_second_train_py_into_a_live_run_folder_fails_at_once_naming_the_first(
    tmp_path: Path, processes
) -> None:
    run_dir = tmp_path / "run"
    settings = ["policy=sim", "logger=none", "trainer.steps=100", "trainer.save_every=50", "seed=3"]
    # The first run lives about 30 s, so it is still alive when the second, starting on loaded cores (torch
    # and Hydra imports took over 6 s in CI-like runs), reaches the lock: else it finds a finished run.
    first = processes.Process(
        target=forked_train_py,
        args=([*settings, "policy.step_seconds=0.3", f"hydra.run.dir={run_dir}"], tmp_path / "first.log"),
    )
    first.start()
    lock = run_dir / LOCK_FILE
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().startswith(f"pid {first.pid} ")):
        assert time.monotonic() < deadline and first.is_alive(), (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.05)
    started = time.monotonic()
    second_log = tmp_path / "second.log"
    assert run_forked(processes, [*settings, f"hydra.run.dir={run_dir}"], second_log) != 0
    elapsed = time.monotonic() - started
    assert first.is_alive(), "the first run ended before the second tried: the test proves nothing"
    output = second_log.read_text()
    assert f"{run_dir} is in use by pid {first.pid} on " in output, output[-3000:]
    assert elapsed < 30, f"the second process took {elapsed:.1f} s to fail"
    first.join(120)
    assert first.exitcode == 0, (tmp_path / "first.log").read_text()[-3000:]
    config = compose_config(settings)
    train(parse_run_config(config), tmp_path / "alone", config, progress=False)
    together = read_metrics(run_dir / "metrics.jsonl")
    assert without_times(together) == without_times(read_metrics(tmp_path / "alone" / "metrics.jsonl"))


HOLDER = """
import fcntl, os, socket, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(descriptor, fcntl.LOCK_EX)
os.write(descriptor, f"pid {os.getpid()} on {socket.gethostname()}\\n".encode())
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_requeued_job_waits_for_the_holder_and_others_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process holding the lock for 2 s: a plain start fails at once naming its pid; a requeued SLURM
    job (SLURM_RESTART_COUNT=1) takes the lock once it is released."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / LOCK_FILE), "2"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
        started = time.monotonic()
        with pytest.raises(RunFolderBusy, match=rf"{tmp_path} is in use by pid {holder.pid} on "):
            with hold_run_folder(tmp_path, 30.0, World()):
                pass
        assert time.monotonic() - started < 1.0, "a start that is no requeue must not wait"
        monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
        with hold_run_folder(tmp_path, 30.0, World()):
            assert holder.poll() is not None, "the lock was taken while the holder lived"
            assert (tmp_path / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on ")
    finally:
        holder.kill()
        holder.wait()


def test_a_run_starts_by_removing_what_failed_writes_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A killed save's folder and a killed export's staging are removed, logged; an export caught between
    its two renames (only `best.old.tmp` left) is put back in place."""
    config = compose_config(["policy=sim", "logger=none", "trainer.steps=2", "trainer.save_every=1"])
    train(parse_run_config(config), tmp_path, config, progress=False)
    crashed_save = tmp_path / "checkpoints" / ".step_000003.5f2a9c.tmp"
    crashed_save.mkdir()
    (crashed_save / "state.json").write_text('{"step": 3, "curr')
    exports = tmp_path / "hf"
    (exports / "final.tmp").mkdir(parents=True)
    (exports / "best.old.tmp").mkdir()
    (exports / "best.old.tmp" / "export.json").write_text('{"step": 1}\n')
    longer = compose_config(["policy=sim", "logger=none", "trainer.steps=3", "trainer.save_every=1"])
    with caplog.at_level(logging.WARNING):
        train(parse_run_config(longer), tmp_path, longer, progress=False)
    assert f"removed {crashed_save}, left by an earlier failed or killed write" in caplog.text
    assert f"removed {exports / 'final.tmp'}" in caplog.text
    assert sorted(p.name for p in exports.iterdir()) == ["best"]
    assert (exports / "best" / "export.json").read_text() == '{"step": 1}\n'
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
