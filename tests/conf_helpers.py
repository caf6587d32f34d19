"""Compose the project's Hydra config in tests exactly as `train.py` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """The composed, resolved config (without the hydra node) for `overrides`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        config = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(config, resolve=True)
