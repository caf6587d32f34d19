"""Typed run configuration: the composed Hydra config checked against dataclasses before anything is built.

Every group of `conf/` maps to one dataclass here or in `gdro.core`; `parse_run_config` rejects an
unknown key, a value of the wrong type, a value out of range or a bad combination with a `ConfigError`
that names the key and an accepted value, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from gdro.core.allocators import BudgetConfig, RolloutGDROConfig, SqrtOptimalConfig
from gdro.core.difficulty import ClassifierConfig
from gdro.core.grpo import ADVANTAGE_STD_MODES, LOSS_AGGREGATIONS
from gdro.core.presets import ALLOCATOR_PRESETS, SAMPLER_PRESETS
from gdro.core.samplers import PromptGDROConfig
from gdro.data.synthetic import SyntheticTaskConfig
from gdro.engines.sampling import SamplingParams
from gdro.models.base_model import WarmStartConfig


class ConfigError(ValueError):
    """A configuration value or combination that cannot run; the message names the key and the fix."""


@dataclass
class TrainerConfig:
    """GRPO hyper-parameters (`conf/trainer/grpo.yaml`)."""

    steps: int = 300
    prompts_per_step: int = 64
    ppo_mini_batches: int = 2
    ppo_epochs: int = 1
    lr: float = 2e-4
    warmup_steps: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    clip_low: float = 0.2
    clip_high: float = 0.28
    clip_ratio_c: float | None = 3.0
    kl_coef: float = 0.001
    adv_clip: float = 5.0
    adv_std: str = "unbiased"
    loss_agg: str = "token-mean"
    surrogate_signal_kl: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    eval_every: int = 50
    save_every: int = 50
    keep_checkpoints: int = 3
    plot_every: int = 100
    eval_samples: int = 8
    eval_temperature: float = 0.6
    eval_top_p: float = 0.8
    eval_top_k: int = 20
    eval_at_rollout_temperature: bool = True
    torch_threads: int = 2

    def rollout_sampling(self) -> SamplingParams:
        """Training rollouts: temperature, top_p, top_k and max_new_tokens."""
        return SamplingParams(self.temperature, self.top_p, self.top_k, self.max_new_tokens)

    def eval_sampling(self) -> SamplingParams:
        """Validation (spec 6): eval_temperature, eval_top_p, eval_top_k, max_new_tokens."""
        return SamplingParams(self.eval_temperature, self.eval_top_p, self.eval_top_k, self.max_new_tokens)

    def validate(self) -> None:
        """Ranges and accepted values."""
        positive = (
            "steps",
            "prompts_per_step",
            "ppo_mini_batches",
            "ppo_epochs",
            "eval_every",
            "save_every",
            "plot_every",
        )
        for name in (*positive, "eval_samples", "max_new_tokens", "torch_threads", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be >= 1")
        if self.ppo_mini_batches > self.prompts_per_step:
            raise ConfigError(
                f"trainer.ppo_mini_batches={self.ppo_mini_batches} exceeds trainer.prompts_per_step="
                f"{self.prompts_per_step}: use at most one mini-batch per prompt"
            )
        if self.adv_std not in ADVANTAGE_STD_MODES:
            raise ConfigError(f"trainer.adv_std={self.adv_std!r}: use one of {ADVANTAGE_STD_MODES}")
        if self.loss_agg not in LOSS_AGGREGATIONS:
            raise ConfigError(f"trainer.loss_agg={self.loss_agg!r}: use one of {LOSS_AGGREGATIONS}")
        for name in ("lr", "clip_low", "clip_high", "adv_clip", "grad_clip"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be > 0")
        if self.clip_ratio_c is not None and self.clip_ratio_c <= 1.0:
            raise ConfigError(
                f"trainer.clip_ratio_c={self.clip_ratio_c}: the dual-clip constant must be > 1 (verl: 3.0), "
                "or null to turn dual clip off"
            )
        for name in ("kl_coef", "weight_decay", "warmup_steps", "top_k", "eval_top_k"):
            if getattr(self, name) < 0:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be >= 0")
        for name in ("temperature", "eval_temperature"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be > 0 (sampling)")
        for name in ("top_p", "eval_top_p"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must lie in (0, 1]")
        if self.top_p != 1.0 or self.top_k != 0:
            raise ConfigError(
                f"trainer.top_p={self.top_p}, trainer.top_k={self.top_k}: PPO scores rollouts under the"
                " whole tempered distribution, so rollouts must sample all of it (trainer.top_p=1.0,"
                " trainer.top_k=0)"
            )


@dataclass
class TinyModelConfig:
    """`conf/model/tiny.yaml`: the tiny Qwen3's shape and its warm-start recipe."""

    name: str = "tiny"
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 256
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)

    def architecture(self) -> dict[str, int]:
        """Keyword arguments of `build_tiny_qwen3`."""
        fields = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
        return {
            name: getattr(self, name) for name in (*fields, "num_key_value_heads", "max_position_embeddings")
        }

    def validate(self) -> None:
        """Head counts must divide; the warm start's slip rate is a probability below 1."""
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("model.hidden_size must be a multiple of model.num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("model.num_attention_heads must be a multiple of model.num_key_value_heads")
        if not 0.0 <= self.warm_start.carry_slip_rate < 1.0:
            raise ConfigError(
                "model.warm_start.carry_slip_rate must be in [0, 1), e.g. 0.6 (0: correct demonstrations)"
            )


@dataclass
class SyntheticDatasetConfig(SyntheticTaskConfig):
    """`conf/dataset/synthetic.yaml`: the chain task (see `gdro.data.synthetic`)."""

    name: str = "synthetic"
    level_steps: list[int] = field(default_factory=lambda: [1, 2, 3, 5, 8, 12])

    def task(self) -> SyntheticTaskConfig:
        """The task config without the group name."""
        return SyntheticTaskConfig(
            seed=self.seed,
            num_train=self.num_train,
            num_eval_per_level=self.num_eval_per_level,
            level_steps=tuple(self.level_steps),
            level_mix_power=self.level_mix_power,
        )

    def validate(self) -> None:
        """Sizes and chain lengths."""
        if self.num_train < 1 or self.num_eval_per_level < 1:
            raise ConfigError("dataset.num_train and dataset.num_eval_per_level must be >= 1")
        if not self.level_steps or min(self.level_steps) < 1:
            raise ConfigError("dataset.level_steps must list chain lengths >= 1, e.g. [1, 2, 3, 5, 8, 12]")


@dataclass
class HFPolicyConfig:
    """`conf/policy/hf.yaml`: rollouts from transformers `generate`."""

    name: str = "hf"
    generation_batch_size: int = 256

    def validate(self) -> None:
        """Positive batch."""
        if self.generation_batch_size < 1:
            raise ConfigError("policy.generation_batch_size must be >= 1")


@dataclass
class SimPolicyConfig:
    """`conf/policy/sim.yaml`: the learning simulator instead of a model."""

    name: str = "sim"
    num_prompts: int = 2048
    num_levels: int = 10
    lr: float = 0.05
    initial_skill: float = 2.0
    level_jitter: float = 0.5
    spread: float = 1.0

    def validate(self) -> None:
        """Sizes."""
        if self.num_prompts < 1 or self.num_levels < 1:
            raise ConfigError("policy.num_prompts and policy.num_levels must be >= 1")


@dataclass
class LoggerConfig:
    """`conf/logger/*.yaml`: W&B (offline by default) or metrics.jsonl only."""

    name: Literal["wandb", "none"] = "wandb"
    project: str = "gdro-rl"
    entity: str | None = None
    mode: Literal["offline", "online", "disabled"] = "offline"


@dataclass
class RunConfig:
    """Everything one run needs, validated."""

    seed: int
    resume: str | None
    cache_dir: str
    sampler: str
    sampler_options: dict[str, Any]
    allocator: str
    budget: BudgetConfig
    allocator_options: dict[str, Any]
    classifier: ClassifierConfig
    model: TinyModelConfig
    dataset: SyntheticDatasetConfig
    policy: HFPolicyConfig | SimPolicyConfig
    trainer: TrainerConfig
    logger: LoggerConfig

    @property
    def num_prompts(self) -> int:
        """N, the number of training prompt ids."""
        return self.policy.num_prompts if isinstance(self.policy, SimPolicyConfig) else self.dataset.num_train


def _check_type(value: Any, annotation: Any, key: str) -> Any:
    """`value` converted to `annotation` (int -> float allowed), or a ConfigError naming `key`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _check_type(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}={value!r}: expected {annotation}")
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{key}={value!r}: expected null")
        return None
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{key}={value!r}: use one of {typing.get_args(annotation)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}={value!r}: expected a list")
        (item,) = typing.get_args(annotation)[:1]
        return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}={value!r}: expected a number")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return value
    if annotation in (bool, str):
        if not isinstance(value, annotation):
            raise ConfigError(f"{key}={value!r}: expected {annotation.__name__}")
        return value
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, key)
    raise ConfigError(f"{key}: unsupported type {annotation}")


def build_dataclass(cls: type, values: dict[str, Any] | None, prefix: str) -> Any:
    """An instance of dataclass `cls` from `values`, each checked against the field's type hint."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]} is not a setting of {prefix}; known: {', '.join(names)}")
    checked = {name: _check_type(value, hints[name], f"{prefix}.{name}") for name, value in values.items()}
    try:
        instance = cls(**checked)
        if hasattr(instance, "validate"):
            instance.validate()
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from error
    return instance


def _sampler(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = values.pop("name", None)
    if name not in SAMPLER_PRESETS:
        raise ConfigError(f"sampler={name!r}: use one of {sorted(SAMPLER_PRESETS)}")
    if SAMPLER_PRESETS[name] is None:
        build_dataclass(_NoOptions, values, "sampler")
        return name, {}
    return name, dataclasses.asdict(build_dataclass(PromptGDROConfig, values, "sampler"))


def _allocator(values: dict[str, Any]) -> tuple[str, BudgetConfig, dict[str, Any]]:
    name = values.pop("name", None)
    if name not in ALLOCATOR_PRESETS:
        raise ConfigError(f"allocator={name!r}: use one of {sorted(ALLOCATOR_PRESETS)}")
    budget_values = {key: values.pop(key) for key in ("nbar", "n_min", "n_max") if key in values}
    budget = build_dataclass(BudgetConfig, budget_values, "allocator")
    preset = ALLOCATOR_PRESETS[name]
    if preset is None:
        build_dataclass(_NoOptions, values, "allocator")
        return name, budget, {}
    schema = SqrtOptimalConfig if isinstance(preset, SqrtOptimalConfig) else RolloutGDROConfig
    return name, budget, dataclasses.asdict(build_dataclass(schema, values, "allocator"))


@dataclass
class _NoOptions:
    """Groups whose choice takes no options (uniform sampler, fixed allocator besides the budget)."""


def parse_run_config(config: dict[str, Any]) -> RunConfig:
    """Validate a composed config (as a plain dict, interpolations resolved) into a `RunConfig`."""
    config = {key: value for key, value in config.items() if key != "hydra"}
    sampler, sampler_options = _sampler(dict(config["sampler"]))
    allocator, budget, allocator_options = _allocator(dict(config["allocator"]))
    policy_values = dict(config["policy"])
    policy_schemas = {"hf": HFPolicyConfig, "sim": SimPolicyConfig}
    if policy_values.get("name") not in policy_schemas:
        raise ConfigError(f"policy={policy_values.get('name')!r}: use one of {sorted(policy_schemas)}")
    run = RunConfig(
        seed=_check_type(config["seed"], int, "seed"),
        resume=_check_type(config.get("resume"), str | None, "resume"),
        cache_dir=_check_type(config["cache_dir"], str, "cache_dir"),
        sampler=sampler,
        sampler_options=sampler_options,
        allocator=allocator,
        budget=budget,
        allocator_options=allocator_options,
        classifier=build_dataclass(ClassifierConfig, config["classifier"], "classifier"),
        model=build_dataclass(TinyModelConfig, config["model"], "model"),
        dataset=build_dataclass(SyntheticDatasetConfig, config["dataset"], "dataset"),
        policy=build_dataclass(policy_schemas[policy_values["name"]], policy_values, "policy"),
        trainer=build_dataclass(TrainerConfig, config["trainer"], "trainer"),
        logger=build_dataclass(LoggerConfig, config["logger"], "logger"),
    )
    _check_combinations(run)
    return run


def _check_combinations(run: RunConfig) -> None:
    """Settings that are each fine but cannot run together."""
    batch = run.trainer.prompts_per_step
    if batch > run.num_prompts:
        source = "policy.num_prompts" if isinstance(run.policy, SimPolicyConfig) else "dataset.num_train"
        raise ConfigError(
            f"trainer.prompts_per_step={batch} exceeds {source}={run.num_prompts}; lower prompts_per_step"
        )
    try:
        run.budget.total(batch)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if run.trainer.max_new_tokens + 32 > run.model.max_position_embeddings and isinstance(
        run.policy, HFPolicyConfig
    ):
        raise ConfigError(
            f"trainer.max_new_tokens={run.trainer.max_new_tokens} leaves no room for the prompt within "
            f"model.max_position_embeddings={run.model.max_position_embeddings}; lower max_new_tokens"
        )
