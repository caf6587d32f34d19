"""Each config group's schema in Hydra's ConfigStore, built from its dataclass: every default is written once.

`conf/<group>/<choice>.yaml` extends a stored schema through its defaults list and states only what the
choice changes, for example `conf/model/qwen3_8b.yaml`:

    defaults: [base_pretrained, _self_]
    name: qwen3_8b
    hf_id: Qwen/Qwen3-8B-Base

`base_<schema>` holds the dataclass's defaults (`???`, OmegaConf's mandatory value, for a field without
one, such as a pretrained model's `hf_id`; the controllers' named presets for `sampler/` and `allocator/`) plus `_schema_`, the key `parse_run_config` reads to pick the dataclass that validates the
group. So a new model, dataset or preset is a new YAML file; a new kind of component is one dataclass
added to `SCHEMAS`. Types are checked by `gdro.config.checking` (OmegaConf's structured configs cannot
hold `Literal` choices, and its messages name no accepted values).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore

from gdro.config.checking import defaults_of
from gdro.config.data import DapoMathDatasetConfig, EvalConfig, RewardConfig, SyntheticDatasetConfig
from gdro.config.deepspeed import DeepSpeedConfig
from gdro.config.models import PretrainedModelConfig, RandomModelConfig, TinyModelConfig
from gdro.config.runtime import HFPolicyConfig, LoggerConfig, SimPolicyConfig
from gdro.config.trainer import TrainerConfig
from gdro.core.allocators import BudgetConfig, RolloutGDROConfig, SqrtOptimalConfig
from gdro.core.difficulty import ClassifierConfig
from gdro.core.presets import ALLOCATOR_PRESETS, SAMPLER_PRESETS
from gdro.core.samplers import PromptGDROConfig

SCHEMA_KEY = "_schema_"

SCHEMAS: dict[str, dict[str, type | None]] = {
    "sampler": {"uniform": None, "prompt_gdro": PromptGDROConfig},
    "allocator": {"fixed": None, "rollout_gdro": RolloutGDROConfig, "sqrt_optimal": SqrtOptimalConfig},
    "classifier": {"pass_at_k": ClassifierConfig},
    "model": {"tiny": TinyModelConfig, "random": RandomModelConfig, "pretrained": PretrainedModelConfig},
    "dataset": {"synthetic": SyntheticDatasetConfig, "dapo_math": DapoMathDatasetConfig},
    "reward": {"reward": RewardConfig},
    "eval": {"eval": EvalConfig},
    "policy": {"hf": HFPolicyConfig, "sim": SimPolicyConfig},
    "trainer": {"grpo": TrainerConfig},
    "logger": {"logger": LoggerConfig},
    "deepspeed": {"zero": DeepSpeedConfig},
}
"""Per group, the dataclass of each schema (None: a choice without options). The allocator's schemas
also take the budget (`BudgetConfig`: nbar, n_min, n_max)."""


def _schema_kind(preset: object | None) -> str:
    """The schema name of a controller preset: its config's class, or the option-less choice."""
    for group in ("sampler", "allocator"):
        for kind, cls in SCHEMAS[group].items():
            if cls is not None and isinstance(preset, cls):
                return kind
    raise ValueError(f"no schema for preset {preset!r}")


def _controller_nodes() -> dict[tuple[str, str], dict[str, Any]]:
    """`sampler/base_<preset>` and `allocator/base_<preset>`: each named preset of `gdro.core.presets`."""
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    for name, sampler in SAMPLER_PRESETS.items():
        kind = "uniform" if sampler is None else _schema_kind(sampler)
        options = {} if sampler is None else dataclasses.asdict(sampler)
        nodes["sampler", f"base_{name}"] = {SCHEMA_KEY: kind, "name": name, **options}
    budget = dataclasses.asdict(BudgetConfig())
    for name, allocator in ALLOCATOR_PRESETS.items():
        kind = "fixed" if allocator is None else _schema_kind(allocator)
        options = {} if allocator is None else dataclasses.asdict(allocator)
        nodes["allocator", f"base_{name}"] = {SCHEMA_KEY: kind, "name": name, **budget, **options}
    return nodes


def schema_nodes() -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored node by (group, name): the controller presets, then `base_<schema>` of the other groups."""
    nodes = _controller_nodes()
    for group, schemas in SCHEMAS.items():
        if group in ("sampler", "allocator"):
            continue
        for kind, cls in schemas.items():
            assert cls is not None
            nodes[group, f"base_{kind}"] = {SCHEMA_KEY: kind, **defaults_of(cls)}
    return nodes


def register_configs() -> None:
    """Store every schema node in Hydra's ConfigStore (idempotent); call before composing `conf/`."""
    store = ConfigStore.instance()
    for (group, name), node in schema_nodes().items():
        store.store(group=group, name=name, node=node)
