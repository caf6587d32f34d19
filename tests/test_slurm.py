"""`train.py -m hydra/launcher=slurm` against a real one-node SLURM started here (scripts/slurm_local.sh).

The fixture starts munge, slurmctld and slurmd (installing them with apt-get as root when missing); a
cluster that does not start fails these tests, it never skips them. Every job is `policy=sim` with
`policy.step_seconds` so it runs long enough to be signalled mid-run. Cases:
- a two-job sweep (seed=0,1) ends with each job's metrics equal to an in-process run;
- a job preempted mid-run (`scancel --signal=USR2`, what SLURM sends `signal_delay_s` before a
  preemption) writes a checkpoint, is requeued by submitit, resumes, and ends with metrics.jsonl equal
  to an uninterrupted run; a job past its 2-minute time limit (the same signal, from SLURM's timer)
  likewise, until its requeues are used up; launched again it finishes equal to a straight run;
- a job cancelled with `scancel --signal=KILL` fails the sweep with submitit's message (no hang);
- a job of 2 tasks gets ranks 0 and 1 of a world of 2 (gloo) from the SLURM environment.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conf_helpers import compose_config

from gdro.config import parse_run_config
from gdro.train.io.metrics import read_metrics
from gdro.train.loop import train

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
CLUSTER_DIR = Path("/tmp/gdro-slurm")
# One CPU per job on the 1-node cluster (2 jobs run at once on 2 cores); no GPUs.
LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.tasks_per_node=1",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
]
RUN = ["policy=sim", "logger=none", "trainer.save_every=1000"]


@pytest.fixture(scope="module")
def slurm_env() -> Iterator[dict[str, str]]:
    """The environment of a process that talks to the local cluster: SLURM_CONF, the sacct stand-in."""
    env = {
        **os.environ,
        "SLURM_LOCAL_DIR": str(CLUSTER_DIR),
        "SLURM_CONF": str(CLUSTER_DIR / "slurm.conf"),
        "PATH": f"{CLUSTER_DIR / 'bin'}:{os.environ['PATH']}",
    }
    # One cluster per machine: a second test session (another checkout) waits for this one's teardown.
    with open(f"{CLUSTER_DIR}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = subprocess.run(
            ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300
        )
        try:
            assert started.returncode == 0, (
                f"the local SLURM did not start:\n{started.stdout}\n{started.stderr}"
            )
            yield env
        finally:
            subprocess.run(
                ["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60, check=True
            )


def launch(sweep_dir: Path, overrides: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`train.py -m` through the SLURM launcher into `sweep_dir`, in the background."""
    return subprocess.Popen(
        [sys.executable, "train.py", "-m", *LAUNCHER, *RUN, *overrides, f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(sweep: subprocess.Popen[str], timeout: float) -> str:
    """Wait for the sweep; its output (stdout and stderr). A sweep still running after `timeout` is killed
    (its jobs are cancelled at teardown) and the test fails."""
    try:
        output, _ = sweep.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sweep.kill()
        output, _ = sweep.communicate()
        raise AssertionError(f"the sweep did not end in {timeout} s:\n{output[-3000:]}") from None
    return output


def wait_for_steps(run_dir: Path, steps: int, timeout: float = 60.0) -> None:
    """Until the run's metrics.jsonl holds step `steps`."""
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) > steps:
            return
        time.sleep(0.2)
    raise AssertionError(f"{metrics} did not reach step {steps} in {timeout} s")


def job_id(sweep_dir: Path) -> str:
    """The SLURM id of the sweep's (first) job, from submitit's folder (`7` or, in an array, `7_0`)."""
    pickles = sorted((sweep_dir / ".submitit").glob("*/*_submitted.pkl"))
    assert pickles, f"no job submitted under {sweep_dir}"
    return pickles[0].name.removesuffix("_submitted.pkl")


def reference(tmp_path: Path, overrides: list[str]) -> list[dict]:
    """The same run straight through, in this process (no sleep: it changes no metric)."""
    config = compose_config([*RUN, *overrides])
    run_dir = tmp_path / f"reference-{len(list(tmp_path.glob('reference-*')))}"
    train(parse_run_config(config), run_dir, config, progress=False)
    return without_times(read_metrics(run_dir / "metrics.jsonl"))


def without_times(records: list[dict]) -> list[dict]:
    """Metrics without wall-clock values."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def test_two_job_sweep_runs_each_job_to_the_end(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    """seed=0,1: two jobs of one array, each into its own folder, each equal to an in-process run."""
    sweep = launch(tmp_path / "sweep", ["trainer.steps=40", "seed=0,1"], slurm_env)
    output = finish(sweep, timeout=90)
    assert sweep.returncode == 0, output[-3000:]
    for seed in (0, 1):
        records = read_metrics(tmp_path / "sweep" / str(seed) / "metrics.jsonl")
        assert without_times(records) == reference(tmp_path, ["trainer.steps=40", f"seed={seed}"])


def test_preempted_and_timed_out_jobs_resume_to_the_same_metrics(
    tmp_path: Path, slurm_env: dict[str, str]
) -> None:
    """Run at the same time (2 cores):
    - preempted: `scancel --signal=USR2` at step ~30 of 100 (time limit 60 min, so submitit calls it a
      preemption): the job checkpoints that step, is requeued as the same job, resumes there and ends
      with the metrics of an uninterrupted run;
    - timed out: a job too long for its 2-minute limit (signal_delay_s=60: SLURM's own SIGUSR2 comes
      60-90 s after each start, as slurmctld checks limits every ~30 s; with a 1-minute limit it could
      come 15-30 s after a start, and on loaded cores, 20 s into importing, a job died of the unhandled
      signal or caught it before its loop began) checkpoints, is requeued once (max_num_timeout=1), resumes, is
      signalled again and then fails the sweep ("timed-out too many times"); launched again into the
      same folder (here in-process, to step s + 10) it resumes from the last checkpoint and equals a
      straight run.
    Without the checkpoint on the signal the reruns would start from step 0 (save_every=1000)."""
    preempted_overrides = ["trainer.steps=100", "policy.step_seconds=0.1", "seed=3"]
    preempted = launch(
        tmp_path / "preempted", [*preempted_overrides, "hydra.launcher.timeout_min=60"], slurm_env
    )
    timed_out = launch(
        tmp_path / "timed_out",
        [
            "trainer.steps=100000",
            "policy.step_seconds=0.1",
            "seed=4",
            "hydra.launcher.timeout_min=2",
            "hydra.launcher.signal_delay_s=60",
            "hydra.launcher.max_num_timeout=1",
        ],
        slurm_env,
    )
    wait_for_steps(tmp_path / "preempted" / "0", 30)
    signal = subprocess.run(
        ["scancel", "--signal=USR2", job_id(tmp_path / "preempted")], env=slurm_env, capture_output=True
    )
    assert signal.returncode == 0, signal.stderr

    output = finish(preempted, timeout=120)
    assert preempted.returncode == 0, output[-3000:]
    run_dir = tmp_path / "preempted" / "0"
    log = (run_dir / "train.log").read_text()
    assert "received SIGUSR2" in log and "this job is preempted" in log and "resumed from" in log, log[-3000:]
    records = without_times(read_metrics(run_dir / "metrics.jsonl"))
    assert records == reference(tmp_path, preempted_overrides)

    output = finish(timed_out, timeout=420)
    assert timed_out.returncode != 0 and "timed-out too many times" in output, output[-3000:]
    run_dir = tmp_path / "timed_out" / "0"
    log = (run_dir / "train.log").read_text()
    assert log.count("received SIGUSR2") == 2 and log.count("this job is timed-out") == 2, log[-3000:]
    assert log.count("resumed from") == 1, log[-3000:]
    stopped = len(read_metrics(run_dir / "metrics.jsonl")) - 1
    assert (run_dir / "checkpoints" / f"step_{stopped:06d}").is_dir()
    extended = [f"trainer.steps={stopped + 10}", "seed=4"]
    config = compose_config([*RUN, *extended])
    train(parse_run_config(config), run_dir, config, progress=False)  # resume: auto
    assert without_times(read_metrics(run_dir / "metrics.jsonl")) == reference(tmp_path, extended)


def test_job_killed_fails_the_sweep_with_a_message(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    """`scancel --signal=KILL` (SLURM: SIGTERM, then SIGKILL 5 s later): the job checkpoints on SIGTERM
    and ends CANCELLED, not requeued; the sweep stops with submitit's error naming the job and its state
    instead of waiting forever (the sacct stand-in reports the state)."""
    sweep = launch(tmp_path / "sweep", ["trainer.steps=300", "policy.step_seconds=0.1"], slurm_env)
    wait_for_steps(tmp_path / "sweep" / "0", 5)
    job = job_id(tmp_path / "sweep")
    subprocess.run(["scancel", "--signal=KILL", job], env=slurm_env, check=True)
    output = finish(sweep, timeout=60)
    assert sweep.returncode != 0
    assert "UncompletedJobError" in output and f"Job {job}" in output and "state: CANCELLED" in output, output
    assert "received SIGTERM" in (tmp_path / "sweep" / "0" / "train.log").read_text()
    assert (tmp_path / "sweep" / "0" / "checkpoints" / "latest").exists()


def test_two_tasks_of_a_job_form_a_world_of_two(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    """tasks_per_node=2: each task derives RANK, LOCAL_RANK and WORLD_SIZE from SLURM (submitit) and
    the two meet in a gloo process group (a sum over ranks); CUDA_VISIBLE_DEVICES is left alone."""
    import submitit

    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm")
    executor.update_parameters(tasks_per_node=2, cpus_per_task=1, mem_gb=1, timeout_min=5)
    code = (
        "import os; from gdro.train.parallel.world import World; w = World.from_env(); "
        "print(w.rank, w.local_rank, w.size, w.sum([1.0])[0], os.environ.get('CUDA_VISIBLE_DEVICES')); "
        "w.barrier()"
    )
    env_before = dict(os.environ)
    os.environ.update(slurm_env)
    try:
        job = executor.submit(submitit.helpers.CommandFunction([sys.executable, "-c", code], cwd=str(ROOT)))
        outputs = job.results()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    lines = sorted(output.strip().splitlines()[-1] for output in outputs)
    assert lines == ["0 0 2 2.0 None", "1 1 2 2.0 None"], outputs
