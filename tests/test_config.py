"""Config is the interface: every choice composes and validates; bad values fail naming the key."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import types
import typing
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
from gdro.config.checking import _check_type
from gdro.config.presets import load_controller
from gdro.config.store import schemas
from gdro.core.difficulty import ClassifierConfig
from gdro.core.grpo import ADVANTAGE_STD_MODES, LOSS_AGGREGATIONS
from gdro.core.registry import ALLOCATORS, SAMPLERS
from gdro.core.rollout_correction import ROLLOUT_IS_MODES
from gdro.data.dapo_math import BAD_ROW_POLICIES, DapoMathConfig
from gdro.data.prompt_template import TEMPLATES
from gdro.data.synthetic import SyntheticTaskConfig

SAMPLER_FILES = sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml"))
ALLOCATOR_FILES = sorted(p.stem for p in (CONF_DIR / "allocator").glob("*.yaml"))


def test_every_group_choice_has_code_behind_it() -> None:
    """Every file of conf/sampler/ and conf/allocator/ configures a registered controller, and each
    registered controller has a file of its own name that takes its defaults as they are."""
    controllers = (("sampler", SAMPLERS, SAMPLER_FILES), ("allocator", ALLOCATORS, ALLOCATOR_FILES))
    for group, registry, choices in controllers:
        assert {load_controller(group, choice).schema for choice in choices} == set(registry)
        for name in registry:
            config = registry[name].config
            assert load_controller(group, name).config == (None if config is None else config())


@pytest.mark.parametrize(("sampler", "allocator"), list(itertools.product(SAMPLER_FILES, ALLOCATOR_FILES)))
def test_every_sampler_allocator_pair_composes_and_validates(sampler: str, allocator: str) -> None:
    for policy, logger in (("hf", "wandb"), ("sim", "none")):
        run = parse_run_config(
            compose_config(
                [f"sampler={sampler}", f"allocator={allocator}", f"policy={policy}", f"logger={logger}"]
            )
        )
        assert (run.sampler, run.allocator) == (sampler, allocator)
        assert run.budget.nbar == 4.0


@pytest.mark.parametrize("name", SAMPLER_FILES)
def test_sampler_choice_is_exactly_its_preset_file(name: str) -> None:
    run = parse_run_config(compose_config([f"sampler={name}"]))
    chosen = load_controller("sampler", name)
    assert (run.sampler, run.sampler_schema, run.sampler_config) == (name, chosen.schema, chosen.config)


@pytest.mark.parametrize("name", ALLOCATOR_FILES)
def test_allocator_choice_is_exactly_its_preset_file(name: str) -> None:
    run = parse_run_config(compose_config([f"allocator={name}"]))
    chosen = load_controller("allocator", name)
    assert (run.allocator, run.allocator_schema, run.allocator_config) == (name, chosen.schema, chosen.config)
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
        (
            ["trainer.adv_std=sample"],
            "trainer.adv_std='sample': use one of ('unbiased', 'population', 'none')",
        ),
        (["trainer.loss_agg=sum"], "trainer.loss_agg='sum': use one of ('token-mean', "),
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
        (["trainer.backend=gpu"], "trainer.backend='gpu': use one of ('torch', 'deepspeed')"),
        (["trainer.rollout_is=seq"], "trainer.rollout_is='seq': use one of ('none', 'token', 'sequence')"),
        (["policy.engine=sglang"], "policy.engine='sglang': use one of ('hf', 'vllm')"),
        (["reward=dapo", "reward.name=exact"], "reward.name='exact': use one of ['dapo', 'gpqa',"),
        (["policy=sim", "trainer.backend=deepspeed"], "policy=sim has none: use trainer.backend=torch"),
        (["deepspeed.stage=1"], "deepspeed.stage=1: use 2"),
        (
            ["trainer.compile_forward=true", "trainer.backend=deepspeed"],
            "trainer.compile_forward=true runs with trainer.backend=torch only",
        ),
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


def _literal_fields() -> list[tuple[str, str, tuple]]:
    """(group, key, accepted words) of every field typed `Literal[...]` (or `Literal[...] | None`) in a schema."""
    found = []
    for group, kinds in schemas().items():
        for cls in kinds.values():
            for name, hint in typing.get_type_hints(cls).items() if cls is not None else ():
                options = (
                    typing.get_args(hint)
                    if typing.get_origin(hint) in (typing.Union, types.UnionType)
                    else (hint,)
                )
                for option in options:
                    if typing.get_origin(option) is typing.Literal:
                        found.append((group, name, typing.get_args(option)))
    return sorted(set(found))


def test_the_fields_that_take_one_of_a_few_words_are_literal() -> None:
    keys = {f"{group}.{name}" for group, name, _ in _literal_fields()}
    expected = {
        "trainer.adv_std", "trainer.loss_agg", "trainer.backend", "trainer.rollout_is",
        "sampler.mode", "sampler.weighting", "sampler.score_signal", "sampler.score_norm",
        "allocator.utility", "classifier.estimator", "policy.engine", "policy.decode", "logger.name", "logger.mode",
        "model.dtype", "model.attn_implementation", "model.size", "dataset.template", "dataset.on_bad_row",
        "eval.name", "deepspeed.precision",
    }  # fmt: skip
    assert keys == expected
    # the words the math and the data code accept, said once more in the field types
    hints = typing.get_type_hints(TrainerConfig)
    assert typing.get_args(hints["adv_std"]) == ADVANTAGE_STD_MODES
    assert typing.get_args(hints["loss_agg"]) == LOSS_AGGREGATIONS
    assert typing.get_args(hints["rollout_is"]) == ROLLOUT_IS_MODES
    data = typing.get_type_hints(DapoMathConfig)
    assert (typing.get_args(data["template"]), typing.get_args(data["on_bad_row"])) == (
        TEMPLATES,
        BAD_ROW_POLICIES,
    )


@pytest.mark.parametrize(("group", "name", "words"), _literal_fields(), ids=lambda v: str(v))
def test_a_word_outside_a_literal_names_the_key_and_the_accepted_words(
    group: str, name: str, words: tuple
) -> None:
    key = f"{group}.{name}"
    with pytest.raises(ConfigError, match=re.escape(f"{key}='bogus': use one of {words}")):
        _check_type("bogus", typing.Literal[words], key)
    assert _check_type(words[-1], typing.Literal[words], key) == words[-1]


def test_an_optional_literal_lists_its_words_and_null() -> None:
    with pytest.raises(ConfigError, match=re.escape("x.mode='fast': expected one of ('a', 'b') or null")):
        _check_type("fast", typing.Literal["a", "b"] | None, "x.mode")
    assert _check_type(None, typing.Literal["a", "b"] | None, "x.mode") is None
