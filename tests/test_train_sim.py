"""`python train.py policy=sim`: the whole loop on the learning simulator, metrics contract, resume."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conf_helpers import CONF_DIR, compose_config

from gdro.config import parse_run_config
from gdro.train.loop import train
from gdro.train.metrics import read_metrics

STEP_KEYS = {
    "step",
    "rollouts/total",
    "rollouts/prompts",
    "tokens/generated",
    "reward/mean",
    "loss/total",
    "alloc/mu",
    "bins/share",
    "bins/weight",
    "bins/score",
    "bins/rollouts_per_prompt",
    "bins/reward_mean",
}


def run_sim(run_dir: Path, overrides: list[str]) -> list[dict]:
    config = compose_config(["policy=sim", "logger=none", *overrides])
    train(parse_run_config(config), run_dir, config, progress=False)
    return read_metrics(run_dir / "metrics.jsonl")


def test_train_py_policy_sim_runs_2000_steps_in_seconds(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "policy=sim",
            "sampler=prompt_gdro",
            "allocator=rollout_gdro",
            "logger=none",
            "trainer.steps=2000",
            "trainer.eval_every=500",
            "trainer.save_every=1000",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=CONF_DIR.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(2001))
    for record in records[1:]:
        assert STEP_KEYS <= record.keys()
        assert record["rollouts/total"] == 4 * 64 and record["rollouts/prompts"] == 64
        assert len(record["bins/share"]) == 10
        assert abs(sum(record["bins/share"]) - 1.0) < 1e-9
    evals = [r for r in records if "eval/pass@8" in r]
    assert [r["step"] for r in evals] == [0, 500, 1000, 1500, 2000]
    assert {f"eval/mean@8/level_{level}" for level in range(10)} <= evals[-1].keys()
    # The simulated policy learns: pooled expected pass@8 rises.
    assert evals[-1]["eval/pass@8"] > evals[0]["eval/pass@8"] + 0.1
    assert any(r["alloc/mu"] > 0 for r in records[1:])
    assert (tmp_path / "config.json").exists() and (tmp_path / "checkpoints" / "latest").exists()
    print(f"2000 simulated steps, process included: {elapsed:.1f} s")  # start-up dominates; no timed assert


def test_sim_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    common = [
        "sampler=prompt_gdro",
        "allocator=rollout_gdro",
        "trainer.eval_every=10",
        "trainer.save_every=20",
    ]
    straight = run_sim(tmp_path / "straight", [*common, "trainer.steps=60"])
    run_sim(tmp_path / "split", [*common, "trainer.steps=40"])
    resumed = run_sim(tmp_path / "split", [*common, "trainer.steps=60", "resume=latest"])

    def comparable(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]

    assert comparable(resumed) == comparable(straight)


def test_wandb_offline_logging_writes_a_syncable_run(tmp_path: Path) -> None:
    config = compose_config(["policy=sim", "logger=wandb", "trainer.steps=5", "trainer.eval_every=5"])
    train(parse_run_config(config), tmp_path, config, progress=False)
    offline_runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    run_id = (tmp_path / "wandb_run_id").read_text().strip()
    assert offline_runs[0].name.endswith(run_id)
    assert list(offline_runs[0].glob("*.wandb")), "no offline history file to `wandb sync`"
