"""The compute budget (gdro.train.budget): its thresholds by hand, a budget-limited simulator run that stops
at the budget and evaluates at its fractions, a resumed one that equals the uninterrupted one, and the
refusals of settings that cannot run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conf_helpers import compose_config

from gdro.config import ConfigError, parse_run_config
from gdro.train.budget import ComputeBudget
from gdro.train.io.metrics import read_metrics
from gdro.train.io.run_folder import is_finished
from gdro.train.loop import train

# policy=sim, M = 8, nbar = 4: 32 rollouts a step; the budget of 10 steps, evaluated at every quarter.
SIM = ["policy=sim", "logger=none", "trainer.prompts_per_step=8", "trainer.save_every=4"]
BUDGET = ["trainer.steps=30", "trainer.budget_rollouts=320", "trainer.eval_every_budget=0.25"]
KEY = "compute/budget_fraction"


def test_thresholds_and_crossings_by_hand() -> None:
    budget = ComputeBudget("rollouts", 100, 1 / 3)
    assert budget.thresholds() == [(0.3333, 34), (0.6667, 67), (1.0, 100)]
    assert budget.crossing(0, 33) is None
    assert budget.crossing(33, 34) == 0.3333
    assert budget.crossing(30, 70) == 0.6667  # two crossed in one step: the larger stands
    assert budget.crossing(90, 130) == 1.0
    assert ComputeBudget("rollouts", 60, 1 / 6).thresholds()[-2:] == [(0.8333, 50), (1.0, 60)]
    assert ComputeBudget("rollouts", 60).thresholds() == [(1.0, 60)]
    config = {"trainer": {"budget_rollouts": None, "budget_tokens": 7, "eval_every_budget": None}}
    assert ComputeBudget.from_trainer(config["trainer"]) == ComputeBudget("tokens", 7)
    assert ComputeBudget.from_trainer({"steps": 5}) is None  # a config from before the keys


def _run(run_dir: Path, overrides: list[str]) -> tuple[dict, list[dict]]:
    config = compose_config([*SIM, *overrides])
    train(parse_run_config(config), run_dir, config, progress=False)
    return config, read_metrics(run_dir / "metrics.jsonl")


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def test_a_budgeted_run_stops_at_the_budget_evaluates_at_its_fractions_and_resumes_exactly(
    tmp_path: Path,
) -> None:
    config, straight = _run(tmp_path / "straight", BUDGET)
    assert straight[-1]["step"] == 10 and straight[-1]["compute/rollouts_generated_total"] == 320
    evals = [(r["step"], r[KEY]) for r in straight if KEY in r]
    assert evals == [(0, 0.0), (3, 0.25), (5, 0.5), (8, 0.75), (10, 1.0)]  # tau = 80, 160, 240, 320
    assert all("eval/mean@8" in r for r in straight if KEY in r)
    assert sum("eval/mean@8" in r for r in straight) == 5  # the step schedule (eval_every) is off
    assert (tmp_path / "straight" / "checkpoints" / "step_000010").is_dir()
    assert is_finished(tmp_path / "straight", config)
    assert _run(tmp_path / "straight", [*BUDGET, "resume=auto"])[1] == straight  # finished: untouched

    # Killed after writing step 9's record, with the checkpoint of step 8: resumes to the same records.
    shutil.copytree(tmp_path / "straight", tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "step_000010")
    lines = (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "killed" / "metrics.jsonl").write_text("".join(lines[:-1]))
    assert not is_finished(tmp_path / "killed", config)
    _, resumed = _run(tmp_path / "killed", [*BUDGET, "resume=latest"])
    assert _strip(resumed) == _strip(straight)


def test_without_a_fraction_the_step_schedule_stays(tmp_path: Path) -> None:
    overrides = ["trainer.steps=30", "trainer.budget_rollouts=300", "trainer.eval_every=4"]
    _, records = _run(tmp_path, overrides)
    evals = [(r["step"], r[KEY]) for r in records if KEY in r]
    assert evals == [(0, 0.0), (4, 0.4267), (8, 0.8533), (10, 1.0)]  # 320 >= 300 at step 10


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["trainer.steps=9", "trainer.budget_rollouts=320"], ("trainer.budget_rollouts", "trainer.steps")),
        (["trainer.budget_tokens=10"], ("trainer.budget_tokens", "policy=sim")),
        (["trainer.eval_every_budget=0.5"], ("trainer.eval_every_budget", "trainer.budget_rollouts")),
        (["trainer.budget_rollouts=64", "trainer.budget_tokens=9"], ("budget_rollouts", "budget_tokens")),
        (["trainer.budget_rollouts=64", "trainer.eval_every_budget=1.5"], ("eval_every_budget",)),
    ],
)
def test_settings_that_cannot_run_are_refused_naming_the_keys(overrides: list[str], names: tuple) -> None:
    with pytest.raises(ConfigError) as error:
        parse_run_config(compose_config([*SIM, *overrides]))
    assert all(name in str(error.value) for name in names)


def test_a_token_budget_ends_a_model_run(tmp_path: Path, cache_dir: Path) -> None:
    """The tiny model: a budget of one token is reached by the first step, which is evaluated and ends
    the run (trainer.steps = 4 is only the cap)."""
    config = compose_config(
        ["debug=quick", f"cache_dir={cache_dir}", "trainer.steps=4", "trainer.budget_tokens=1"]
    )
    train(parse_run_config(config), tmp_path, config, progress=False)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1]
    assert records[-1][KEY] == 1.0 and records[-1]["compute/tokens_generated_total"] >= 1
    assert "eval/pass@2" in records[-1] and is_finished(tmp_path, config)
