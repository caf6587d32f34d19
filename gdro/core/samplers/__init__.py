"""Data samplers, selected by `conf/sampler/<name>.yaml`: `uniform` (GRPO), `prompt_gdro` and
`spo` (SPO's prioritized sampling, a baseline). Each registers
itself in `gdro.core.registry.SAMPLERS`; importing this package registers them all."""

from gdro.core.samplers.base import Sampler, SamplerPlan
from gdro.core.samplers.prompt_gdro import PromptGDROConfig, PromptGDROSampler
from gdro.core.samplers.spo import SPOConfig, SPOSampler
from gdro.core.samplers.uniform import UniformSampler

__all__ = [
    "PromptGDROConfig",
    "PromptGDROSampler",
    "Sampler",
    "SPOConfig",
    "SPOSampler",
    "SamplerPlan",
    "UniformSampler",
]
