"""Each config group's schema in Hydra's ConfigStore, built from its dataclass: every default is written once.

`conf/<group>/<choice>.yaml` extends a stored schema through its defaults list and states only what the
choice changes, for example `conf/model/qwen3_8b.yaml`:

    defaults: [base_pretrained, _self_]
    name: qwen3_8b
    hf_id: Qwen/Qwen3-8B-Base

`base_<schema>` holds the dataclass's defaults (`???`, OmegaConf's mandatory value, for a field without
one, such as a pretrained model's `hf_id`) plus `_schema_`, the key `parse_run_config` reads to pick the
dataclass that validates the group. The controller groups (`sampler/`, `allocator/`, `filter/`) take their schemas
from the registries of `gdro.core.registry`: one `base_<name>` per registered controller, named presets
such as `conf/sampler/prompt_gdro_paper.yaml` extend it. So a new model, dataset or preset is a new YAML
file; a new controller registers itself; a new kind of component is one dataclass added to `GROUPS`.
Types are checked by `gdro.config.checking` (OmegaConf's structured configs cannot hold `Literal`
choices, and its messages name no accepted values).
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_store import ConfigStore

from gdro.config.checking import defaults_of
from gdro.config.data import DapoMathDatasetConfig, EvalConfig, RewardConfig, SyntheticDatasetConfig
from gdro.config.deepspeed import DeepSpeedConfig
from gdro.config.models import PretrainedModelConfig, Qwen3ShapeConfig, RandomModelConfig, TinyModelConfig
from gdro.config.runtime import HFPolicyConfig, LoggerConfig, SimPolicyConfig
from gdro.config.trainer import TrainerConfig
from gdro.core.allocators import BudgetConfig
from gdro.core.difficulty import ClassifierConfig
from gdro.core.filters import RoundsConfig
from gdro.core.registry import ALLOCATORS, FILTERS, SAMPLERS, Registry

SCHEMA_KEY = "_schema_"

CONTROLLERS: dict[str, Registry] = {"sampler": SAMPLERS, "allocator": ALLOCATORS, "filter": FILTERS}
"""Config groups whose schemas are the entries of a registry (one `base_<name>` node per entry)."""

SHARED: dict[str, type] = {"allocator": BudgetConfig, "filter": RoundsConfig}
"""Settings every entry of a controller group takes besides its own: the allocators' rollout budget
(nbar, n_min, n_max), the filters' generation rounds (gen_batch_size, max_gen_batches, on_exhausted)."""

GROUPS: dict[str, dict[str, type]] = {
    "classifier": {"pass_at_k": ClassifierConfig},
    "model": {
        "tiny": TinyModelConfig,
        "random": RandomModelConfig,
        "pretrained": PretrainedModelConfig,
        "qwen3_shape": Qwen3ShapeConfig,
    },
    "dataset": {"synthetic": SyntheticDatasetConfig, "dapo_math": DapoMathDatasetConfig},
    "reward": {"reward": RewardConfig},
    "eval": {"eval": EvalConfig},
    "policy": {"hf": HFPolicyConfig, "sim": SimPolicyConfig},
    "trainer": {"grpo": TrainerConfig},
    "logger": {"logger": LoggerConfig},
    "deepspeed": {"zero": DeepSpeedConfig},
}
"""The other groups: the dataclass of each schema."""


def schemas() -> dict[str, dict[str, type | None]]:
    """Per group, the dataclass of each schema (None: a controller without options), the controller groups'
    read from their registries."""
    controllers = {
        group: {name: registry[name].config for name in registry} for group, registry in CONTROLLERS.items()
    }
    return {**controllers, **GROUPS}


def schema_nodes() -> dict[tuple[str, str], dict[str, Any]]:
    """Every stored node by (group, name): `base_<name>` of each registered controller (its shared settings,
    then its own), then `base_<schema>` of the other groups."""
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    for group, registry in CONTROLLERS.items():
        shared = defaults_of(SHARED[group]) if group in SHARED else {}
        for name in registry:
            config = registry[name].config
            options = {} if config is None else defaults_of(config)
            nodes[group, f"base_{name}"] = {SCHEMA_KEY: name, "name": name, **shared, **options}
    for group, kinds in GROUPS.items():
        for kind, cls in kinds.items():
            nodes[group, f"base_{kind}"] = {SCHEMA_KEY: kind, **defaults_of(cls)}
    return nodes


def register_configs() -> None:
    """Store every schema node in Hydra's ConfigStore (idempotent); call before composing `conf/`."""
    store = ConfigStore.instance()
    for (group, name), node in schema_nodes().items():
        store.store(group=group, name=name, node=node)


def with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config with every key its groups' schemas define: a key the config lacks takes its
    schema's default (nested groups too), a key it holds keeps its value.

    A run folder or record written before a key existed holds the behaviour of that key's default (a new
    key defaults to what the code did before it), so its config compares equal to today's composition of
    the same run through this.
    """
    nodes = schema_nodes()
    filled = dict(config)
    for group, values in config.items():
        if isinstance(values, dict) and (group, f"base_{values.get(SCHEMA_KEY)}") in nodes:
            filled[group] = _merged(nodes[group, f"base_{values[SCHEMA_KEY]}"], values)
    return filled


def _merged(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`values` over `defaults`, dict by dict."""
    merged = {**defaults, **values}
    for key, default in defaults.items():
        if isinstance(default, dict) and isinstance(values.get(key), dict):
            merged[key] = _merged(default, values[key])
    return merged
