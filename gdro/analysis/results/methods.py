"""The methods compared: each a choice of conf/method/, named by what its runs' configs hold.

A run's method is `method_key(config)`, "sampler[ [resample]] + allocator" from its resolved config, so
run folders from any sweep (Hydra multirun or `gdro.analysis.results.sweep`) group the same way. The paper presets
(`method=prompt_gdro_paper`, `method=rollout_gdro_paper`) also set the classifier's window; their sampler or
allocator name tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Method:
    """key: `method_key` of its runs; name: as the tables print it; choice: its file in conf/method/, which
    sets the sampler and the allocator over any experiment's."""

    key: str
    name: str
    choice: str

    @property
    def overrides(self) -> tuple[str, ...]:
        """The Hydra override that selects it."""
        return (f"method={self.choice}",)

    @property
    def slug(self) -> str:
        return method_slug(self.key)


GRPO = Method("uniform + fixed", "GRPO", "grpo")
METHODS = (
    GRPO,
    Method("prompt_gdro + fixed", "Prompt-GDRO (reweight)", "prompt_gdro"),
    Method("prompt_gdro [resample] + fixed", "Prompt-GDRO (resample)", "prompt_gdro_resample"),
    Method("uniform + rollout_gdro", "Rollout-GDRO", "rollout_gdro"),
    Method("uniform + sqrt_optimal", "sqrt-optimal", "sqrt_optimal"),
    Method("prompt_gdro + rollout_gdro", "Prompt-GDRO + Rollout-GDRO", "prompt_rollout_gdro"),
    Method("prompt_gdro_paper + fixed", "Prompt-GDRO (paper preset)", "prompt_gdro_paper"),
    Method("uniform + rollout_gdro_paper", "Rollout-GDRO (paper preset)", "rollout_gdro_paper"),
)
METHOD_NAMES = {method.key: method.name for method in METHODS}


def method_key(config: dict[str, Any]) -> str:
    """E.g. "prompt_gdro [resample] + rollout_gdro", from a resolved run config."""
    sampler = config["sampler"]["name"]
    if config["sampler"].get("mode") == "resample":
        sampler += " [resample]"
    return f"{sampler} + {config['allocator']['name']}"


def method_slug(key: str) -> str:
    """A file-name-safe form of a method key: "prompt_gdro [resample] + fixed" -> "prompt_gdro_resample-fixed"."""
    return "-".join(re.sub(r"[^a-z0-9]+", "_", part.lower()).strip("_") for part in key.split(" + "))
