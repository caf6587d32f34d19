"""Typed run configuration: the composed Hydra config checked against dataclasses before anything is built.

Every group of `conf/` maps to dataclasses (`trainer`, `models`, `data`, `runtime` here; the controllers'
registered with theirs in `gdro.core.registry`), stored in Hydra's ConfigStore as the schemas the YAML
files extend (`store`); `parse_run_config` rejects an unknown key, a value of the wrong type, a value out
of range or a bad combination with a `ConfigError` that names the key and an accepted value, before any
model is loaded. `reference` renders docs/reference.md from the fields' docstrings.
"""

from gdro.config.checking import ConfigError, build_dataclass
from gdro.config.data import DapoMathDatasetConfig, EvalConfig, RewardConfig, SyntheticDatasetConfig
from gdro.config.models import (
    PretrainedModelConfig,
    Qwen3ShapeConfig,
    RandomModelConfig,
    TinyModelConfig,
    WarmStartConfig,
)
from gdro.config.run import RunConfig, parse_run_config
from gdro.config.runtime import HFPolicyConfig, LoggerConfig, SimPolicyConfig
from gdro.config.store import register_configs
from gdro.config.trainer import TrainerConfig

__all__ = [
    "ConfigError",
    "DapoMathDatasetConfig",
    "EvalConfig",
    "HFPolicyConfig",
    "LoggerConfig",
    "PretrainedModelConfig",
    "Qwen3ShapeConfig",
    "RandomModelConfig",
    "RewardConfig",
    "RunConfig",
    "SimPolicyConfig",
    "SyntheticDatasetConfig",
    "TinyModelConfig",
    "TrainerConfig",
    "WarmStartConfig",
    "build_dataclass",
    "parse_run_config",
    "register_configs",
]
