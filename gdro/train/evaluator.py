"""Held-out evaluation through the rollout engine (docs/algorithm.md §6): k samples per prompt, scored by a reward.

An `EvalSet` is one group of held-out prompts with its verifier: the embedded task's held-out split
(with a latent level per prompt) or one benchmark. For each set the evaluator asks the engine for k
samples per prompt under each configured sampling and scores them, giving a correct matrix [P, k].
Metrics, with c_p correct of k samples (`gdro.core.pass_at_k.pass_metrics`):
    mean@k = mean_p c_p / k;   pass@k = mean_p [c_p > 0]   (any of k)
- level sets (the embedded task): <prefix>/mean@k, <prefix>/pass@k pooled, and /level_<l> per level;
- benchmarks: `gdro.data.benchmarks.benchmark_metrics` (<prefix>/<bench>/..., AIME, pooled, unbiased
  pass@k for the extra ks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gdro.core.pass_at_k import pass_metrics
from gdro.data.benchmarks import benchmark_metrics
from gdro.engines.base import Decoding, RolloutEngine
from gdro.rewards.base import Reward
from gdro.train.parallel.world import World


@dataclass
class EvalSet:
    """Held-out prompts (token ids), their answers, the reward that grades them, and optional levels [P]."""

    name: str
    prompt_token_ids: list[list[int]]
    answers: list[str]
    reward: Reward
    levels: np.ndarray | None = None


def level_metrics(correct: np.ndarray, levels: np.ndarray, prefix: str) -> dict[str, float]:
    """mean@k and pass@k pooled (<prefix>/mean@k) and per level (<prefix>/mean@k/level_<l>) from correct
    [P, k] and levels [P]."""
    samples, counts = correct.shape[1], correct.sum(axis=1)
    metrics = {f"{prefix}/{key}": value for key, value in pass_metrics(counts, samples).items()}
    for level in np.unique(levels):
        in_level = pass_metrics(counts[levels == level], samples)
        metrics |= {f"{prefix}/{key}/level_{level}": value for key, value in in_level.items()}
    return metrics


class Evaluator:
    """Runs every set through the engine under each (prefix, decoding) sampling; returns flat metrics."""

    def __init__(
        self,
        engine: RolloutEngine,
        sets: Sequence[EvalSet],
        samples: int,
        samplings: Sequence[tuple[str, Decoding]],
        pass_ks: Sequence[int] = (),
        world: World | None = None,
    ) -> None:
        if not sets:
            raise ValueError("the evaluator needs at least one eval set")
        self.engine = engine
        self.sets = list(sets)
        self.samples = samples
        self.samplings = list(samplings)
        self.pass_ks = tuple(pass_ks)
        self.world = world if world is not None else World()

    def correct(self, eval_set: EvalSet, decoding: Decoding) -> np.ndarray:
        """bool [P, k]: sample j of prompt p graded correct (reward > 0). With several ranks each samples
        the prompts p = rank, rank + W, ... and the rows are gathered."""
        mine = np.arange(self.world.rank, len(eval_set.prompt_token_ids), self.world.size)
        prompts = [eval_set.prompt_token_ids[p] for p in mine]
        generations = self.engine.generate(prompts, [self.samples] * len(mine), decoding)
        answers = [eval_set.answers[mine[i]] for i in generations.prompt_index]
        scores = eval_set.reward.rewards(generations.texts, answers)
        # Generations are grouped by prompt in input order, k per prompt.
        correct = np.zeros((len(eval_set.prompt_token_ids), self.samples), dtype=bool)
        for rows, values in self.world.gather((mine, (scores > 0).reshape(len(mine), self.samples))):
            correct[rows] = values
        return correct

    def evaluate(self) -> dict[str, float]:
        """All sets under all samplings."""
        metrics: dict[str, float] = {}
        for prefix, decoding in self.samplings:
            by_set = {eval_set.name: (eval_set, self.correct(eval_set, decoding)) for eval_set in self.sets}
            benchmarks = {name: c for name, (s, c) in by_set.items() if s.levels is None}
            for eval_set, correct in by_set.values():
                if eval_set.levels is not None:
                    metrics |= level_metrics(correct, eval_set.levels, prefix)
            if benchmarks:
                metrics |= benchmark_metrics(benchmarks, pass_ks=self.pass_ks, prefix=prefix)
        return metrics
