"""Config is the interface: every choice composes and validates; bad values fail naming the key."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conf_helpers import CONF_DIR, compose_config

from gdro.config import (
    ConfigError,
    HFPolicyConfig,
    LoggerConfig,
    SimPolicyConfig,
    TinyModelConfig,
    TrainerConfig,
    parse_run_config,
)
from gdro.core.difficulty import ClassifierConfig
from gdro.core.presets import ALLOCATOR_PRESETS, SAMPLER_PRESETS
from gdro.data.synthetic import SyntheticTaskConfig

SAMPLERS = sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml"))
ALLOCATORS = sorted(p.stem for p in (CONF_DIR / "allocator").glob("*.yaml"))


def test_every_group_choice_has_code_behind_it() -> None:
    assert SAMPLERS == sorted(SAMPLER_PRESETS)
    assert ALLOCATORS == sorted(ALLOCATOR_PRESETS)


@pytest.mark.parametrize(("sampler", "allocator"), list(itertools.product(SAMPLERS, ALLOCATORS)))
def test_every_sampler_allocator_pair_composes_and_validates(sampler: str, allocator: str) -> None:
    for policy, logger in (("hf", "wandb"), ("sim", "none")):
        run = parse_run_config(
            compose_config(
                [f"sampler={sampler}", f"allocator={allocator}", f"policy={policy}", f"logger={logger}"]
            )
        )
        assert (run.sampler, run.allocator) == (sampler, allocator)
        assert run.budget.nbar == 4.0


@pytest.mark.parametrize("name", [n for n in SAMPLER_PRESETS if SAMPLER_PRESETS[n] is not None])
def test_sampler_choice_is_exactly_the_code_preset(name: str) -> None:
    run = parse_run_config(compose_config([f"sampler={name}"]))
    assert run.sampler_config == SAMPLER_PRESETS[name]


@pytest.mark.parametrize("name", [n for n in ALLOCATOR_PRESETS if ALLOCATOR_PRESETS[n] is not None])
def test_allocator_choice_is_exactly_the_code_preset(name: str) -> None:
    run = parse_run_config(compose_config([f"allocator={name}"]))
    assert run.allocator_config == ALLOCATOR_PRESETS[name]
    assert (run.budget.nbar, run.budget.n_min, run.budget.n_max) == (4.0, 2, 12)


def test_group_defaults_equal_the_dataclass_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GDRO_TORCH_THREADS", raising=False)
    run = parse_run_config(compose_config([]))
    assert run.trainer == TrainerConfig()
    assert run.classifier == ClassifierConfig()
    assert run.model == TinyModelConfig()
    assert run.policy == HFPolicyConfig()
    assert run.logger == LoggerConfig(name="wandb")
    assert run.dataset.task() == SyntheticTaskConfig()
    sim = parse_run_config(compose_config(["policy=sim"])).policy
    assert sim == SimPolicyConfig()


def test_torch_threads_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDRO_TORCH_THREADS", "3")
    assert parse_run_config(compose_config([])).trainer.torch_threads == 3
    assert parse_run_config(compose_config(["trainer.torch_threads=4"])).trainer.torch_threads == 4
    monkeypatch.setenv("GDRO_TORCH_THREADS", "two")
    with pytest.raises(ConfigError, match="trainer.torch_threads='two': expected an integer"):
        parse_run_config(compose_config([]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.steps=0"], "trainer.steps=0"),
        (["trainer.lr=fast"], "trainer.lr='fast': expected a number"),
        (["trainer.adv_std=sample"], "trainer.adv_std='sample'"),
        (["trainer.loss_agg=sum"], "trainer.loss_agg='sum'"),
        (["trainer.top_p=1.5"], "trainer.top_p=1.5"),
        (["trainer.top_p=0.9"], "trainer.top_p=0.9, trainer.top_k=0: PPO scores rollouts"),
        (["trainer.top_k=20"], "rollouts must sample all of it (trainer.top_p=1.0, trainer.top_k=0)"),
        (["sampler=prompt_gdro", "sampler.mode=mixed"], "sampler.mode='mixed'"),
        (["sampler=prompt_gdro", "+sampler.temperature=2"], "sampler.temperature is not a setting"),
        (["sampler=uniform", "+sampler.eta=1.0"], "sampler.eta is not a setting"),
        (["allocator=rollout_gdro", "allocator.utility=variance"], "allocator.utility='variance'"),
        (["allocator.nbar=20"], "allocator.nbar=20.0 lies outside"),
        (["allocator.nbar=4.5", "trainer.prompts_per_step=7"], "not a whole number of rollouts"),
        (["classifier.num_bins=4"], "classifier.num_bins=4 has no edge preset"),
        (["classifier.estimator=mean"], "classifier.estimator='mean'"),
        (["trainer.prompts_per_step=5000"], "exceeds dataset.num_train=1024"),
        (["policy=sim", "trainer.prompts_per_step=4096"], "exceeds policy.num_prompts=2048"),
        (["trainer.ppo_mini_batches=100"], "trainer.ppo_mini_batches=100 exceeds"),
        (["logger.mode=cloud"], "logger.mode='cloud'"),
        (["trainer.backend=gpu"], "trainer.backend='gpu': use 'torch' or 'deepspeed'"),
        (["policy=sim", "trainer.backend=deepspeed"], "policy=sim has none: use trainer.backend=torch"),
        (["deepspeed.stage=1"], "deepspeed.stage=1: use 2"),
        (["model.num_attention_heads=3"], "model.hidden_size must be a multiple"),
        (["model.warm_start.carry_slip_rate=1.0"], "model.warm_start.carry_slip_rate must be in [0, 1)"),
    ],
)
def test_bad_values_fail_with_the_key_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_run_config(compose_config(overrides))


def test_train_py_rejects_a_bad_value_before_building_anything(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "allocator=rollout_gdro",
            "allocator.n_min=5",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=CONF_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "allocator.nbar=4.0 lies outside [allocator.n_min, allocator.n_max] = [5, 12]" in result.stderr
    assert not (tmp_path / "metrics.jsonl").exists()


EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment: str) -> None:
    run = parse_run_config(compose_config([f"experiment={experiment}"]))
    assert run.budget.nbar == 4.0


def test_paper_methods_carry_what_a_single_group_cannot() -> None:
    prompt = parse_run_config(compose_config(["method=prompt_gdro_paper"]))
    assert (prompt.sampler, prompt.allocator, prompt.classifier.window) == ("prompt_gdro_paper", "fixed", 100)
    assert prompt.sampler_config.score_signal == "surrogate" and prompt.sampler_config.share_norm
    rollout = parse_run_config(compose_config(["method=rollout_gdro_paper"]))
    assert (rollout.sampler, rollout.allocator, rollout.classifier.window) == (
        "uniform",
        "rollout_gdro_paper",
        50,
    )
    assert rollout.allocator_config.utility == "surrogate" and rollout.allocator_config.alpha == 0.05
    # A command-line value still wins over the method's.
    assert (
        parse_run_config(
            compose_config(["method=rollout_gdro_paper", "classifier.window=7"])
        ).classifier.window
        == 7
    )


def test_paper_experiment_prints_its_composed_config() -> None:
    """`python train.py experiment=paper model=qwen3_8b method=rollout_gdro_paper --cfg job` composes on a CPU
    without any download."""
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=paper",
            "model=qwen3_8b",
            "method=rollout_gdro_paper",
            "--cfg",
            "job",
        ],
        cwd=CONF_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for line in (
        "hf_id: Qwen/Qwen3-8B-Base",
        "name: rollout_gdro_paper",
        "window: 50",
        "prompts_per_step: 256",
    ):
        assert line in result.stdout, line


def test_a_model_that_cannot_read_the_dataset_is_refused() -> None:
    with pytest.raises(ConfigError, match="model=tiny knows only the synthetic task"):
        parse_run_config(compose_config(["dataset=dapo_math", "reward=math_verify", "eval=math_benchmarks"]))
    with pytest.raises(ConfigError, match="eval=synthetic does not fit dataset=dapo_math"):
        parse_run_config(compose_config(["dataset=dapo_math", "model=tiny_ascii"]))
