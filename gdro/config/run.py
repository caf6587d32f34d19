"""The composed config as one validated `RunConfig`: each group checked against its dataclass, then the
combinations; a `ConfigError` names the key and an accepted value before anything is built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gdro.config.checking import ConfigError, _check_type, build_dataclass
from gdro.config.data import DapoMathDatasetConfig, EvalConfig, RewardConfig, SyntheticDatasetConfig
from gdro.config.deepspeed import DeepSpeedConfig
from gdro.config.models import PretrainedModelConfig, Qwen3ShapeConfig, RandomModelConfig, TinyModelConfig
from gdro.config.runtime import HFPolicyConfig, LoggerConfig, SimPolicyConfig
from gdro.config.store import SCHEMA_KEY, SHARED, schema_nodes, schemas
from gdro.config.trainer import TrainerConfig
from gdro.core.allocators import BudgetConfig
from gdro.core.difficulty import ClassifierConfig
from gdro.core.filters import RoundsConfig


@dataclass
class RunConfig:
    """Everything one run needs, validated."""

    seed: int
    """Seed of the run: data order, controllers' draws, rollouts, initialisation."""
    resume: str | None
    """auto (or latest): resume from this run folder's latest checkpoint, else start fresh; a checkpoint or
    run folder; null: start fresh, overwriting metrics.jsonl."""
    cache_dir: str
    """Folder of the cached warm-started base model (GDRO_CACHE, default .cache/gdro)."""
    sampler: str
    """The sampler choice's name (a label, e.g. prompt_gdro_paper)."""
    sampler_schema: str
    """The registered sampler it configures (gdro.core.registry.SAMPLERS)."""
    sampler_config: Any
    """Its settings: an instance of the registered config dataclass; None without options."""
    allocator: str
    """The allocator choice's name (a label, e.g. rollout_gdro_paper)."""
    allocator_schema: str
    """The registered allocator it configures (gdro.core.registry.ALLOCATORS)."""
    budget: BudgetConfig
    """The allocator's rollout budget (nbar, n_min, n_max)."""
    allocator_config: Any
    """Its settings: an instance of the registered config dataclass; None without options."""
    filter: str
    """The group filter choice's name (a label, e.g. dynamic_sampling)."""
    filter_schema: str
    """The registered filter it configures (gdro.core.registry.FILTERS)."""
    rounds: RoundsConfig
    """The filter's generation rounds (gen_batch_size, max_gen_batches, on_exhausted)."""
    filter_config: Any
    """Its settings: an instance of the registered config dataclass; None without options."""
    classifier: ClassifierConfig
    """The difficulty classifier's settings."""
    model: TinyModelConfig | RandomModelConfig | PretrainedModelConfig | Qwen3ShapeConfig
    """The policy model."""
    dataset: SyntheticDatasetConfig | DapoMathDatasetConfig
    """The training prompts."""
    reward: RewardConfig
    """The verifier."""
    eval: EvalConfig
    """The held-out sets."""
    policy: HFPolicyConfig | SimPolicyConfig
    """Where rollouts come from: a model (hf) or the simulator."""
    trainer: TrainerConfig
    """GRPO / PPO hyper-parameters."""
    logger: LoggerConfig
    """Where records go besides metrics.jsonl."""
    deepspeed: DeepSpeedConfig
    """ZeRO settings of trainer.backend=deepspeed."""

    @property
    def num_prompts(self) -> int | None:
        """N, the number of training prompt ids; None until a loaded dataset (dapo_math) is prepared."""
        if isinstance(self.policy, SimPolicyConfig):
            return self.policy.num_prompts
        return self.dataset.num_train if isinstance(self.dataset, SyntheticDatasetConfig) else None


def _schema(values: dict[str, Any], group: str) -> tuple[str, type | None]:
    """The group's `_schema_` (popped from `values`) and its dataclass, which its YAML inherits from
    `base_<schema>` in the ConfigStore (`gdro.config.store`)."""
    kind = values.pop(SCHEMA_KEY, None)
    known = schemas()[group]
    if kind not in known:
        bases = sorted(name for stored, name in schema_nodes() if stored == group)
        raise ConfigError(
            f"{group}: {SCHEMA_KEY}={kind!r} names no schema; a conf/{group}/ file must extend one of "
            f"{bases} in its defaults list, e.g. `defaults: [{bases[0]}, _self_]`"
        )
    return kind, known[kind]


def _group(config: dict[str, Any], group: str) -> Any:
    """The group's values validated against its schema's dataclass."""
    values = dict(config[group])
    _, schema = _schema(values, group)
    assert schema is not None
    return build_dataclass(schema, values, group)


@dataclass
class Controller:
    """A controller group's choice, validated: its name (label), the registered controller it configures,
    its settings (None: no options) and the family's shared settings (the allocators' budget; else None)."""

    name: str
    schema: str
    config: Any
    shared: Any


@dataclass
class _NoOptions:
    """The settings of a controller without options (uniform sampler, fixed allocator besides the budget)."""


def parse_controller(values: dict[str, Any], group: str) -> Controller:
    """A composed `sampler` / `allocator` node validated against its registered controller's dataclass."""
    values = dict(values)
    name = _check_type(values.pop("name", None), str, f"{group}.name")
    kind, schema = _schema(values, group)
    shared = None
    if group in SHARED:
        keys = [f.name for f in dataclasses.fields(SHARED[group])]
        shared = build_dataclass(SHARED[group], {k: values.pop(k) for k in keys if k in values}, group)
    config = build_dataclass(schema or _NoOptions, values, group)
    return Controller(name, kind, None if schema is None else config, shared)


def parse_run_config(config: dict[str, Any]) -> RunConfig:
    """Validate a composed config (as a plain dict, interpolations resolved) into a `RunConfig`."""
    config = {key: value for key, value in config.items() if key != "hydra"}
    sampler = parse_controller(config["sampler"], "sampler")
    allocator = parse_controller(config["allocator"], "allocator")
    group_filter = parse_controller(config["filter"], "filter")
    run = RunConfig(
        seed=_check_type(config["seed"], int, "seed"),
        resume=_check_type(config.get("resume"), str | None, "resume"),
        cache_dir=_check_type(config["cache_dir"], str, "cache_dir"),
        sampler=sampler.name,
        sampler_schema=sampler.schema,
        sampler_config=sampler.config,
        allocator=allocator.name,
        allocator_schema=allocator.schema,
        budget=allocator.shared,
        allocator_config=allocator.config,
        filter=group_filter.name,
        filter_schema=group_filter.schema,
        rounds=group_filter.shared,
        filter_config=group_filter.config,
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
        per_step = run.budget.total(batch)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    _check_controllers(run)
    _check_rounds(run)
    _check_compute_budget(run, per_step)
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


def _check_controllers(run: RunConfig) -> None:
    """Controller settings that cannot work with the batch, the dataset or the classifier."""
    if run.sampler_schema == "spo" and run.sampler_config.pool_size:
        pool = run.sampler_config.pool_size
        if pool < run.trainer.prompts_per_step:
            raise ConfigError(
                f"sampler.pool_size={pool} is smaller than trainer.prompts_per_step="
                f"{run.trainer.prompts_per_step}: SPO draws the batch without replacement from the pool; "
                "raise sampler.pool_size (0: every prompt)"
            )
        if run.num_prompts is not None and pool > run.num_prompts:
            raise ConfigError(
                f"sampler.pool_size={pool} exceeds the {run.num_prompts} training prompts; lower it (0: all)"
            )
    if run.allocator_schema == "knapsack":
        most = run.classifier.window * run.budget.n_max
        if run.allocator_config.min_rollouts > most:
            raise ConfigError(
                f"allocator.min_rollouts={run.allocator_config.min_rollouts} exceeds the most a prompt's window "
                f"can hold, classifier.window * allocator.n_max = {most}: no prompt's success rate would ever "
                "be used; lower allocator.min_rollouts or raise classifier.window"
            )


def _check_rounds(run: RunConfig) -> None:
    """The filter's rounds against the batch: filter=none trains one round of M prompts; a round of
    gen_batch_size prompts must fit the prompts and the rollout budget (nbar * gen_batch_size whole)."""
    batch, rounds = run.trainer.prompts_per_step, run.rounds
    size = rounds.round_size(batch)
    if run.filter_schema == "none":
        if size != batch or rounds.max_gen_batches != 0 or rounds.on_exhausted != "error":
            raise ConfigError(
                "filter=none trains every group of one round of trainer.prompts_per_step prompts: leave "
                "filter.gen_batch_size (null), filter.max_gen_batches (0) and filter.on_exhausted (error) "
                "unset, or choose a filter (filter=dynamic_sampling, filter=accuracy_band)"
            )
        return
    if run.num_prompts is not None and size > run.num_prompts:
        source = "policy.num_prompts" if isinstance(run.policy, SimPolicyConfig) else "dataset.num_train"
        raise ConfigError(
            f"filter.gen_batch_size={size} exceeds {source}={run.num_prompts}; lower filter.gen_batch_size"
        )
    try:
        run.budget.total(size)
    except ValueError as error:
        raise ConfigError(f"{error} (a round of filter.gen_batch_size={size} prompts)") from error


def _check_compute_budget(run: RunConfig, per_step: int) -> None:
    """A compute budget trainer.steps can reach: every step generates at least nbar x M rollouts (a filter
    generates more), of at most trainer.max_new_tokens tokens each; the simulator has no tokens."""
    trainer = run.trainer
    if trainer.budget_rollouts is not None and trainer.steps * per_step < trainer.budget_rollouts:
        raise ConfigError(
            f"trainer.budget_rollouts={trainer.budget_rollouts} cannot be reached within trainer.steps="
            f"{trainer.steps} at nbar x M = {per_step} rollouts per step: raise trainer.steps to at least "
            f"{-(-trainer.budget_rollouts // per_step)}"
        )
    if trainer.budget_tokens is None:
        return
    if isinstance(run.policy, SimPolicyConfig):
        raise ConfigError(
            "trainer.budget_tokens: policy=sim generates no tokens; use trainer.budget_rollouts"
        )
    most = trainer.steps * per_step * trainer.max_new_tokens
    if most < trainer.budget_tokens:
        raise ConfigError(
            f"trainer.budget_tokens={trainer.budget_tokens} cannot be reached within trainer.steps="
            f"{trainer.steps}: at most {most} tokens (nbar x M = {per_step} rollouts of trainer.max_new_tokens="
            f"{trainer.max_new_tokens}); raise trainer.steps"
        )
