"""The composed config as one validated `RunConfig`: each group checked against its dataclass, then the
combinations; a `ConfigError` names the key and an accepted value before anything is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gdro.config.checking import ConfigError, _check_type, build_dataclass
from gdro.config.data import DapoMathDatasetConfig, EvalConfig, RewardConfig, SyntheticDatasetConfig
from gdro.config.deepspeed import DeepSpeedConfig
from gdro.config.models import PretrainedModelConfig, RandomModelConfig, TinyModelConfig
from gdro.config.runtime import HFPolicyConfig, LoggerConfig, SimPolicyConfig
from gdro.config.store import SCHEMA_KEY, SCHEMAS, schema_nodes
from gdro.config.trainer import TrainerConfig
from gdro.core.allocators import BudgetConfig, RolloutGDROConfig, SqrtOptimalConfig
from gdro.core.difficulty import ClassifierConfig
from gdro.core.samplers import PromptGDROConfig


@dataclass
class RunConfig:
    """Everything one run needs, validated. `sampler` / `allocator` are the chosen names (labels);
    `sampler_config` / `allocator_config` the controllers' settings (None: uniform sampling, fixed
    allocation)."""

    seed: int
    resume: str | None
    cache_dir: str
    sampler: str
    sampler_config: PromptGDROConfig | None
    allocator: str
    budget: BudgetConfig
    allocator_config: RolloutGDROConfig | SqrtOptimalConfig | None
    classifier: ClassifierConfig
    model: TinyModelConfig | RandomModelConfig | PretrainedModelConfig
    dataset: SyntheticDatasetConfig | DapoMathDatasetConfig
    reward: RewardConfig
    eval: EvalConfig
    policy: HFPolicyConfig | SimPolicyConfig
    trainer: TrainerConfig
    logger: LoggerConfig
    deepspeed: DeepSpeedConfig

    @property
    def num_prompts(self) -> int | None:
        """N, the number of training prompt ids; None until a loaded dataset (dapo_math) is prepared."""
        if isinstance(self.policy, SimPolicyConfig):
            return self.policy.num_prompts
        return self.dataset.num_train if isinstance(self.dataset, SyntheticDatasetConfig) else None


def _schema(values: dict[str, Any], group: str) -> type | None:
    """The dataclass named by the group's `_schema_` (popped from `values`), which its YAML inherits from
    `base_<schema>` in the ConfigStore (`gdro.config.store`)."""
    kind = values.pop(SCHEMA_KEY, None)
    if kind not in SCHEMAS[group]:
        bases = sorted(name for stored, name in schema_nodes() if stored == group)
        raise ConfigError(
            f"{group}: {SCHEMA_KEY}={kind!r} names no schema; a conf/{group}/ file must extend one of "
            f"{bases} in its defaults list, e.g. `defaults: [{bases[0]}, _self_]`"
        )
    return SCHEMAS[group][kind]


def _group(config: dict[str, Any], group: str) -> Any:
    """The group's values validated against its schema's dataclass."""
    values = dict(config[group])
    schema = _schema(values, group)
    assert schema is not None
    return build_dataclass(schema, values, group)


def _controller(values: dict[str, Any], group: str) -> tuple[str, Any]:
    """The sampler's or allocator's chosen name and its validated config (None for a choice without options)."""
    name = _check_type(values.pop("name", None), str, f"{group}.name")
    schema = _schema(values, group)
    if schema is None:
        build_dataclass(_NoOptions, values, group)
        return name, None
    return name, build_dataclass(schema, values, group)


@dataclass
class _NoOptions:
    """Groups whose choice takes no options (uniform sampler, fixed allocator besides the budget)."""


def parse_run_config(config: dict[str, Any]) -> RunConfig:
    """Validate a composed config (as a plain dict, interpolations resolved) into a `RunConfig`."""
    config = {key: value for key, value in config.items() if key != "hydra"}
    sampler, sampler_config = _controller(dict(config["sampler"]), "sampler")
    allocator_values = dict(config["allocator"])
    budget_values = {
        key: allocator_values.pop(key) for key in ("nbar", "n_min", "n_max") if key in allocator_values
    }
    allocator, allocator_config = _controller(allocator_values, "allocator")
    run = RunConfig(
        seed=_check_type(config["seed"], int, "seed"),
        resume=_check_type(config.get("resume"), str | None, "resume"),
        cache_dir=_check_type(config["cache_dir"], str, "cache_dir"),
        sampler=sampler,
        sampler_config=sampler_config,
        allocator=allocator,
        budget=build_dataclass(BudgetConfig, budget_values, "allocator"),
        allocator_config=allocator_config,
        classifier=_group(config, "classifier"),
        model=_group(config, "model"),
        dataset=_group(config, "dataset"),
        reward=_group(config, "reward"),
        eval=_group(config, "eval"),
        policy=_group(config, "policy"),
        trainer=_group(config, "trainer"),
        logger=_group(config, "logger"),
        deepspeed=_group(config, "deepspeed"),
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
        if run.trainer.backend != "torch":
            raise ConfigError(
                "trainer.backend=deepspeed trains a model; policy=sim has none: use trainer.backend=torch"
            )
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
