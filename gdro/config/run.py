"""The composed config as one validated `RunConfig`: each group checked against its dataclass, then the
combinations; a `ConfigError` names the key and an accepted value before anything is built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gdro.config.checking import ConfigError, _check_type, build_dataclass
from gdro.config.data import DapoMathDatasetConfig, EvalConfig, RewardConfig, SyntheticDatasetConfig
from gdro.config.models import MODEL_SCHEMAS, PretrainedModelConfig, RandomModelConfig, TinyModelConfig
from gdro.config.runtime import HFPolicyConfig, LoggerConfig, SimPolicyConfig
from gdro.config.trainer import TrainerConfig
from gdro.core.allocators import BudgetConfig, RolloutGDROConfig, SqrtOptimalConfig
from gdro.core.difficulty import ClassifierConfig
from gdro.core.presets import ALLOCATOR_PRESETS, SAMPLER_PRESETS
from gdro.core.samplers import PromptGDROConfig

DATASET_SCHEMAS = {"synthetic": SyntheticDatasetConfig, "dapo_math": DapoMathDatasetConfig}


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
    model: TinyModelConfig | RandomModelConfig | PretrainedModelConfig
    dataset: SyntheticDatasetConfig | DapoMathDatasetConfig
    reward: RewardConfig
    eval: EvalConfig
    policy: HFPolicyConfig | SimPolicyConfig
    trainer: TrainerConfig
    logger: LoggerConfig

    @property
    def num_prompts(self) -> int | None:
        """N, the number of training prompt ids; None until a loaded dataset (dapo_math) is prepared."""
        if isinstance(self.policy, SimPolicyConfig):
            return self.policy.num_prompts
        return self.dataset.num_train if isinstance(self.dataset, SyntheticDatasetConfig) else None


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
    dataset_values = dict(config["dataset"])
    if dataset_values.get("name") not in DATASET_SCHEMAS:
        raise ConfigError(f"dataset={dataset_values.get('name')!r}: use one of {sorted(DATASET_SCHEMAS)}")
    model_schema = MODEL_SCHEMAS.get(config["model"].get("name"), PretrainedModelConfig)
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
        model=build_dataclass(model_schema, config["model"], "model"),
        dataset=build_dataclass(DATASET_SCHEMAS[dataset_values["name"]], dataset_values, "dataset"),
        reward=build_dataclass(RewardConfig, config["reward"], "reward"),
        eval=build_dataclass(EvalConfig, config["eval"], "eval"),
        policy=build_dataclass(policy_schemas[policy_values["name"]], policy_values, "policy"),
        trainer=build_dataclass(TrainerConfig, config["trainer"], "trainer"),
        logger=build_dataclass(LoggerConfig, config["logger"], "logger"),
    )
    _check_combinations(run)
    return run


def _check_combinations(run: RunConfig) -> None:
    """Settings that are each fine but cannot run together."""
    batch = run.trainer.prompts_per_step
    if run.num_prompts is not None and batch > run.num_prompts:
        source = "policy.num_prompts" if isinstance(run.policy, SimPolicyConfig) else "dataset.num_train"
        raise ConfigError(
            f"trainer.prompts_per_step={batch} exceeds {source}={run.num_prompts}; lower prompts_per_step"
        )
    try:
        run.budget.total(batch)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    if isinstance(run.policy, SimPolicyConfig):
        return
    synthetic = isinstance(run.dataset, SyntheticDatasetConfig)
    if isinstance(run.model, TinyModelConfig) and not synthetic:
        raise ConfigError(
            f"model=tiny knows only the synthetic task's characters, not dataset={run.dataset.name}: "
            "use model=tiny_ascii (a random tiny Qwen3 on bytes) or model=qwen3_1.7b / qwen3_4b / qwen3_8b"
        )
    if (run.eval.name == "synthetic") != synthetic:
        raise ConfigError(
            f"eval={run.eval.name} does not fit dataset={run.dataset.name}: the synthetic held-out levels go "
            "with dataset=synthetic, eval=math_benchmarks with a math dataset"
        )
    limit = getattr(run.model, "max_position_embeddings", None)
    if limit is not None and run.trainer.max_new_tokens + 32 > limit:
        raise ConfigError(
            f"trainer.max_new_tokens={run.trainer.max_new_tokens} leaves no room for the prompt within "
            f"model.max_position_embeddings={limit}; lower max_new_tokens"
        )
