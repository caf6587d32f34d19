"""Named controller presets read from `conf/`, for code that builds controllers without composing a run
(the simulator benchmarks, the tests): `conf/<group>/<choice>.yaml` on its stored schema, as
`python train.py <group>=<choice> <group>.KEY=VALUE` would compose it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gdro.config.run import Controller, parse_controller
from gdro.config.store import schema_nodes

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
"""The repository's Hydra config folder."""


def load_controller(group: str, choice: str, conf_dir: Path = CONF_DIR, **overrides: Any) -> Controller:
    """The `sampler` / `allocator` choice `choice` with `overrides` applied, validated; a ConfigError names
    an unknown choice or key."""
    path = conf_dir / group / f"{choice}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
        raise ValueError(f"{group}={choice!r} is not a file of {conf_dir / group}; use one of {known}")
    values = OmegaConf.to_container(OmegaConf.load(path))
    base, _self = values.pop("defaults")
    return parse_controller({**schema_nodes()[group, base], **values, **overrides}, group)
