"""`python train.py policy=sim`: the whole loop on the learning simulator, metrics contract, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from conf_helpers import compose_config, run_train_py

from gdro.config import parse_run_config
from gdro.train.io.metrics import read_metrics
from gdro.train.io.run_folder import is_finished
from gdro.train.loop import train

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


def test_train_py_policy_sim_logs_2000_steps_with_exact_budgets(tmp_path: Path) -> None:
    """`train.py` end to end: 2000 step records, each spending exactly nbar * M rollouts (also per bin:
    sum_b qhat(b) n_b = nbar), evaluations and checkpoints on schedule, and the policy learns. Its rate
    (steps per second) is reported by `make bench-controllers`, not asserted here."""
    records = run_train_py(
        tmp_path,
        [
            "policy=sim",
            "sampler=prompt_gdro",
            "allocator=rollout_gdro",
            "logger=none",
            "trainer.steps=2000",
            "trainer.eval_every=500",
            "trainer.save_every=1000",
        ],
    )
    assert [r["step"] for r in records] == list(range(2001))
    for record in records[1:]:
        assert STEP_KEYS <= record.keys()
        assert record["rollouts/total"] == 4 * 64 and record["rollouts/prompts"] == 64
        assert len(record["bins/share"]) == 10
        assert abs(sum(record["bins/share"]) - 1.0) < 1e-9
        per_bin = [
            s * n
            for s, n in zip(record["bins/share"], record["bins/rollouts_per_prompt"], strict=True)
            if s > 0
        ]
        assert abs(sum(per_bin) - 4.0) < 1e-9
    assert len({tuple(r["bins/rollouts_per_prompt"]) for r in records[1:]}) > 100  # the allocation moved
    evals = [r for r in records if "eval/pass@8" in r]
    assert [r["step"] for r in evals] == [0, 500, 1000, 1500, 2000]
    assert {f"eval/mean@8/level_{level}" for level in range(10)} <= evals[-1].keys()
    # The simulated policy learns: pooled expected pass@8 rises.
    assert evals[-1]["eval/pass@8"] > evals[0]["eval/pass@8"] + 0.1
    assert any(r["alloc/mu"] > 0 for r in records[1:])
    assert (tmp_path / "config.json").exists() and (tmp_path / "checkpoints" / "latest").exists()


def test_paper_presets_steer_on_the_simulators_surrogate_proxy(tmp_path: Path) -> None:
    """With zeros as the surrogate (the old SimLearner) both paper presets were inert here: every bin score
    stayed 0, mu 0 and every prompt got nbar rollouts. The proxy moves all three. 512 prompts, so each is
    seen every 8 steps and the bins spread: while a batch holds two or three bins (unseen prompts all sit
    in bin 0) the exact budget often admits no vector but nbar for everyone."""
    overrides = ["sampler=prompt_gdro_paper", "allocator=rollout_gdro_paper", "policy.num_prompts=512"]
    records = run_sim(tmp_path, [*overrides, "trainer.steps=60"])[1:]
    assert all(r["rollouts/total"] == 4 * 64 for r in records)
    off_nbar = [any(n not in (None, 4.0) for n in r["bins/rollouts_per_prompt"]) for r in records]
    assert sum(off_nbar) > len(records) / 3
    assert any(r["alloc/mu"] > 0 for r in records)
    assert any(s not in (None, 0.0) for r in records for s in r["bins/score"])


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


def test_resuming_past_the_end_of_metrics_jsonl_is_refused(tmp_path: Path) -> None:
    """A checkpoint at step 4 with records only to step 1 (lost lines) would leave a gap: stop, naming both."""
    config = compose_config(["policy=sim", "logger=none", "trainer.steps=4", "trainer.save_every=4"])
    train(parse_run_config(config), tmp_path, config, progress=False)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))
    again = compose_config(["policy=sim", "logger=none", "trainer.steps=6", "resume=auto"])
    with pytest.raises(RuntimeError, match="ends at step 1 but .* is at step 4"):
        train(parse_run_config(again), tmp_path, again, progress=False)


def test_a_finished_run_is_left_as_it_is_and_another_config_trains(tmp_path: Path) -> None:
    """resume=auto into a folder holding this run, finished: nothing trains, nothing is written; with
    another config (more steps, or resume=null) it trains."""
    config = compose_config(["policy=sim", "logger=none", "trainer.steps=4", "trainer.save_every=2"])
    assert len(train(parse_run_config(config), tmp_path, config, progress=False)) == 5  # steps 0..4
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert train(parse_run_config(config), tmp_path, config, progress=False) == []
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == written
    longer = compose_config(["policy=sim", "logger=none", "trainer.steps=6", "trainer.save_every=2"])
    assert [r["step"] for r in train(parse_run_config(longer), tmp_path, longer, progress=False)] == [5, 6]
    fresh = compose_config(
        ["policy=sim", "logger=none", "trainer.steps=6", "trainer.save_every=2", "resume=null"]
    )
    assert len(train(parse_run_config(fresh), tmp_path, fresh, progress=False)) == 7


def test_the_loop_and_the_sweep_share_one_rule_for_a_finished_run(tmp_path: Path) -> None:
    """`resume` is how a run was started, not what it computes: a run trained with resume=null (as the sweep
    trains) is finished for resume=auto too, and is left as it is; any other key makes it another run."""
    config = compose_config(["policy=sim", "logger=none", "trainer.steps=3", "resume=null"])
    train(parse_run_config(config), tmp_path, config, progress=False)
    auto = {**config, "resume": "auto"}
    assert is_finished(tmp_path, config) and is_finished(tmp_path, auto)
    assert not is_finished(tmp_path, {**config, "seed": 1})
    assert not is_finished(tmp_path, {**config, "trainer": {**config["trainer"], "steps": 4}})
    written = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert train(parse_run_config(auto), tmp_path, auto, progress=False) == []
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == written
