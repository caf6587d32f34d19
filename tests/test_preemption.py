"""Stopping on SIGTERM / SIGUSR2 with a checkpoint (gdro/train/io/preemption.py), and status lines in logs
(gdro/train/io/progress.py), without SLURM (tests/test_slurm.py runs them under a real one)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conf_helpers import CONF_DIR, compose_config

from gdro.config import parse_run_config
from gdro.train.io.metrics import read_metrics
from gdro.train.io.preemption import StopSignals
from gdro.train.io.progress import Progress
from gdro.train.loop import train

RUN = ["policy=sim", "logger=none", "trainer.steps=60", "trainer.save_every=1000", "seed=2"]


def without_times(records: list[dict]) -> list[dict]:
    """Metrics without wall-clock values."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR2])
def test_signal_checkpoints_the_step_exits_and_resume_auto_finishes_the_run(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """`train.py` signalled mid-run (no submitit: the default action follows) writes a checkpoint at the
    step it was on and exits with 128 + signal; run again into the same folder (`resume: auto`, the
    default) it resumes there and ends with the metrics of a straight run. A loop that ignored the signal
    would be killed with no checkpoint (save_every=1000) and the rerun would start from step 0."""
    run_dir = tmp_path / "run"
    command = [sys.executable, "train.py", *RUN, f"hydra.run.dir={run_dir}"]
    job = subprocess.Popen(
        [*command, "policy.step_seconds=0.05"], cwd=CONF_DIR.parent, stderr=subprocess.PIPE, text=True
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while not (metrics.exists() and len(metrics.read_text().splitlines()) > 10):
        assert time.monotonic() < deadline and job.poll() is None, "the run did not reach step 10"
        time.sleep(0.05)
    job.send_signal(signum)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 128 + signum, stderr[-2000:]
    stopped_at = len(read_metrics(metrics)) - 1
    assert 10 <= stopped_at < 60
    assert (run_dir / "checkpoints" / f"step_{stopped_at:06d}").is_dir()

    resumed = subprocess.run(command, cwd=CONF_DIR.parent, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at step {stopped_at}" in (run_dir / "train.log").read_text()

    config = compose_config(RUN)
    train(parse_run_config(config), tmp_path / "straight", config, progress=False)
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert without_times(read_metrics(metrics)) == without_times(straight)


def test_stop_signals_restores_the_previous_handlers() -> None:
    """Inside the context a signal is only recorded; outside, the handlers are back as they were."""
    previous = signal.getsignal(signal.SIGUSR2)
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGUSR2)
        assert signals.requested() and signals.received == [signal.SIGUSR2]
    assert signal.getsignal(signal.SIGUSR2) == previous


def test_a_signal_is_logged_by_the_loop_not_by_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    """The handler writes no log line (a write nested in another write to the same file is dropped:
    the CI run where the first "received SIGUSR2" of a timed-out SLURM job was missing); `requested`
    logs each signal once, in order of arrival."""
    with caplog.at_level(logging.WARNING, logger="gdro.train.io.preemption"), StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGUSR2)
        assert caplog.records == []
        assert signals.requested() and signals.requested()
        assert [record.getMessage() for record in caplog.records] == [
            "received SIGTERM: checkpoint after this step",
            "received SIGUSR2: checkpoint after this step",
        ]


def test_progress_in_a_log_writes_a_status_line_every_n_steps(caplog: pytest.LogCaptureFixture) -> None:
    """Not a terminal: 1,000 steps give one line every 50th step (20 lines), not one per step."""
    progress = Progress(0, 1000, interactive=False, every_seconds=3600.0)
    with caplog.at_level(logging.INFO, logger="gdro.train.io.progress"):
        for step in range(1, 1001):
            progress.update(step, reward=0.5, pass_rate=0.75)
    progress.close()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 20
    assert lines[0].startswith("step 50/1000 (5%) reward +0.500 pass_rate 0.750")
    assert lines[-1].startswith("step 1000/1000 (100%)")


def test_progress_in_a_log_writes_a_line_when_seconds_pass(caplog: pytest.LogCaptureFixture) -> None:
    """A slow run: a line whenever `every_seconds` have passed, between the step-count lines."""
    progress = Progress(10, 1000, interactive=False, every_seconds=0.0)
    with caplog.at_level(logging.INFO, logger="gdro.train.io.progress"):
        for step in range(11, 14):
            progress.update(step, reward=0.0, pass_rate=0.5)
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == [
        "step 11/1000",
        "step 12/1000",
        "step 13/1000",
    ]
