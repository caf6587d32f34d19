"""`conf/dataset/`, `conf/reward/` and `conf/eval/`: the training prompts, their verifier, the held-out sets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from gdro.config.checking import ConfigError
from gdro.data.benchmarks.registry import BENCHMARKS
from gdro.data.dapo_math import DapoMathConfig
from gdro.data.synthetic import SyntheticTaskConfig
from gdro.rewards.registry import REWARDS


@dataclass
class SyntheticDatasetConfig(SyntheticTaskConfig):
    """`conf/dataset/synthetic.yaml`: the chain task (see `gdro.data.synthetic`)."""

    name: str = "synthetic"
    """The choice (conf/dataset/synthetic.yaml)."""
    level_steps: list[int] = field(default_factory=lambda: [1, 2, 3, 5, 8, 12])
    """Chain length L (operations) of each difficulty level, level 0 easiest."""

    def task(self) -> SyntheticTaskConfig:
        """The task config without the group name."""
        return SyntheticTaskConfig(
            seed=self.seed,
            num_train=self.num_train,
            num_eval_per_level=self.num_eval_per_level,
            level_steps=tuple(self.level_steps),
            level_mix_power=self.level_mix_power,
        )

    def validate(self) -> None:
        """Sizes and chain lengths."""
        if self.num_train < 1 or self.num_eval_per_level < 1:
            raise ConfigError("dataset.num_train and dataset.num_eval_per_level must be >= 1")
        if not self.level_steps or min(self.level_steps) < 1:
            raise ConfigError("dataset.level_steps must list chain lengths >= 1, e.g. [1, 2, 3, 5, 8, 12]")


@dataclass
class DapoMathDatasetConfig(DapoMathConfig):
    """`conf/dataset/dapo_math.yaml`: DAPO-Math through `datasets.load_dataset` (fields: `DapoMathConfig`)."""

    name: str = "dapo_math"
    """The choice (conf/dataset/dapo_math.yaml)."""

    def loader_config(self) -> DapoMathConfig:
        """The loader's config without the group name."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(DapoMathConfig)}
        return DapoMathConfig(**fields)


@dataclass
class RewardConfig:
    """`conf/reward/*.yaml`: the verifier by name (gdro.rewards.registry); pool options for math_verify."""

    name: str
    """The reward registered under this name (gdro.rewards.registry); its file sets it."""
    workers: int = 2
    """math_verify: scoring processes of the worker pool."""
    deadline_s: float = 5.0
    """math_verify: hard per-item deadline in seconds; an item over it scores -1 (reward/timeouts)."""

    def options(self) -> dict[str, object]:
        """Keyword arguments of `build_reward` (the pool's size and per-item deadline for math_verify)."""
        return {"workers": self.workers, "deadline_s": self.deadline_s} if self.name == "math_verify" else {}

    def validate(self) -> None:
        """A registered reward, a worker and a positive deadline."""
        if self.name not in REWARDS:
            raise ConfigError(f"reward.name={self.name!r}: use one of {list(REWARDS)}")
        if self.workers < 1 or self.deadline_s <= 0:
            raise ConfigError("reward.workers must be >= 1 and reward.deadline_s > 0")


@dataclass
class EvalConfig:
    """`conf/eval/*.yaml`: `synthetic` (the embedded task's held-out levels) or `math_benchmarks`.

    benchmarks: names from gdro.data.benchmarks.BENCHMARKS; local_root: a folder holding
    `<hub id>/` copies (no hub access), null for the hub; pass_ks: extra unbiased pass@k to report.
    """

    name: Literal["synthetic", "math_benchmarks"]
    """The choice (its file sets it): the embedded task's held-out levels, or math benchmarks."""
    benchmarks: list[str] = field(default_factory=list)
    """math_benchmarks: benchmark names of gdro.data.benchmarks.BENCHMARKS, e.g. [math500, aime24]."""
    local_root: str | None = None
    """A folder holding `<hub id>/` copies of the benchmarks (no hub access); null reads the hub."""
    pass_ks: list[int] = field(default_factory=list)
    """Extra k < trainer.eval_samples for which to report the unbiased pass@k."""
    deadline_s: float = 5.0
    """Hard per-item deadline of the benchmark scorer in seconds."""
    workers: int = 2
    """Scoring processes of the benchmark scorer."""

    def validate(self) -> None:
        """Benchmarks only for math_benchmarks, and each one known."""
        if self.name == "math_benchmarks" and not self.benchmarks:
            raise ConfigError("eval.benchmarks is empty: list benchmarks, e.g. [math500, aime24]")
        unknown = sorted(set(self.benchmarks) - set(BENCHMARKS))
        if unknown:
            raise ConfigError(f"eval.benchmarks: {unknown} unknown; use any of {sorted(BENCHMARKS)}")
