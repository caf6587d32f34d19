"""One step of the curriculum: classifier -> sampler -> allocator, then the results flow back.

    plan(M):    the sampler picks (or reweights) M prompts, the classifier bins them from history before
                this step, the allocator gives each its n_i (from the bins, or from the prompts' own
                history in the classifier);
    observe():  the classifier records the step (any-correct and per-rollout counts; with a filter, every
                group its rounds generated), then the sampler and
                the allocator update from the prompts' own windowed success rates p1(x) (and the
                surrogate losses when the trainer provides them); the step's `BinReport` carries the
                per-bin series and the docs/algorithm.md §8 measures (`gdro.core.curriculum_metrics`).
Each part keeps its own state; `state_dict` nests theirs, so a resumed run is bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gdro.core.allocators.base import Allocator
from gdro.core.bin_stats import bin_counts
from gdro.core.curriculum_metrics import CurriculumMeasures, curriculum_measures, lead_lag_gap
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.samplers.base import Sampler
from gdro.core.step import StepResult


@dataclass
class StepPlan:
    """What the trainer runs at step t.

    prompt_ids [M], bins [M], rollouts_per_prompt [M] (n_i, sum = nbar M), advantage_weights [M] (w_i),
    bin_weights [G] (the data adversary's q_t).
    """

    prompt_ids: np.ndarray
    bins: np.ndarray
    rollouts_per_prompt: np.ndarray
    advantage_weights: np.ndarray
    bin_weights: np.ndarray


@dataclass
class GeneratedGroups:
    """Groups generated in a step, trained or not, in generation order: prompt_ids [K], rollouts_per_prompt
    [K] (n_i), correct_per_prompt [K] (c_i)."""

    prompt_ids: np.ndarray
    rollouts_per_prompt: np.ndarray
    correct_per_prompt: np.ndarray


@dataclass
class BinReport:
    """Per-group statistics of one step for logging; every array is [G], NaN where a group is absent.

    share: qhat(b) = |bin b| / M; weight: q(b); score: the sampler's S(b) after the update;
    rollouts_per_prompt: mean n_i over bin b's prompts; reward_mean: mean +-1 reward of bin b's rollouts;
    success_rate: the bin's per-rollout success this step; tokens: completion tokens generated for bin
    b's prompts (0 where absent, NaN everywhere when the policy counts no tokens); lead_lag_gap:
    q(b) - qhat(b); shadow_price: mu (None without one); measures: the step's section 8 scalars.
    """

    share: np.ndarray
    weight: np.ndarray
    score: np.ndarray
    rollouts_per_prompt: np.ndarray
    reward_mean: np.ndarray
    success_rate: np.ndarray
    tokens: np.ndarray
    lead_lag_gap: np.ndarray
    shadow_price: float | None
    measures: CurriculumMeasures


# The per-bin fields of `BinReport`, logged as `bins/<name>` lists (the metrics.jsonl contract).
BIN_SERIES = (
    "share",
    "weight",
    "score",
    "rollouts_per_prompt",
    "reward_mean",
    "success_rate",
    "tokens",
    "lead_lag_gap",
)


class Curriculum:
    """Holds the classifier, the data adversary (sampler) and the compute adversary (allocator)."""

    def __init__(self, classifier: DifficultyClassifier, sampler: Sampler, allocator: Allocator) -> None:
        self.classifier = classifier
        self.sampler = sampler
        self.allocator = allocator

    @property
    def num_groups(self) -> int:
        """G: bins plus the excluded group when there is one."""
        return self.classifier.num_groups

    def plan(self, batch_size: int) -> StepPlan:
        """Choose the batch, its bins, advantage weights and rollout counts for this step."""
        sampled = self.sampler.plan(batch_size, self.classifier)
        rollouts = self.allocator.allocate(sampled.bins, sampled.prompt_ids, self.classifier)
        return StepPlan(
            prompt_ids=sampled.prompt_ids,
            bins=sampled.bins,
            rollouts_per_prompt=rollouts,
            advantage_weights=sampled.advantage_weights,
            bin_weights=sampled.bin_weights,
        )

    def observe(
        self,
        plan: StepPlan,
        correct_per_prompt: np.ndarray,
        surrogate_loss: np.ndarray | None = None,
        tokens_per_prompt: np.ndarray | None = None,
        generated: GeneratedGroups | None = None,
    ) -> BinReport:
        """Record the step's outcome (c_i correct of n_i), update both adversaries, report per bin.

        tokens_per_prompt: [M] completion tokens summed over each prompt's rollouts (None: not counted).
        generated: every group a filter's rounds generated, trained or not (None: the plan's groups). The
        classifier records all of them (it learns from all the rollouts paid for); the sampler and the
        allocator update on the trained batch `plan`, the groups whose surrogate losses exist.
        """
        correct = np.asarray(correct_per_prompt, dtype=np.int64)
        if generated is None:
            self.classifier.record(plan.prompt_ids, plan.rollouts_per_prompt, correct)
        else:
            self.classifier.record(
                generated.prompt_ids, generated.rollouts_per_prompt, generated.correct_per_prompt
            )
        result = StepResult(
            prompt_ids=plan.prompt_ids,
            bins=plan.bins,
            rollouts_per_prompt=plan.rollouts_per_prompt,
            correct_per_prompt=correct,
            success_rate=self.classifier.success_rate(plan.prompt_ids),
            surrogate_loss=surrogate_loss,
        )
        self.sampler.update(result)
        self.allocator.update(result)
        return self.report(plan, correct, tokens_per_prompt)

    def report(
        self, plan: StepPlan, correct_per_prompt: np.ndarray, tokens_per_prompt: np.ndarray | None = None
    ) -> BinReport:
        """Per-group share, weight, score, rollouts per prompt, reward and tokens of this step, and its
        measures; the uniform allocation's nbar is sum_i n_i / M (the allocators' budget is exact)."""
        groups = self.num_groups
        counts = bin_counts(plan.bins, groups)
        rollouts = np.bincount(plan.bins, weights=plan.rollouts_per_prompt, minlength=groups)
        correct = np.bincount(plan.bins, weights=correct_per_prompt, minlength=groups)
        present = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            success = np.where(rollouts > 0, correct / np.maximum(rollouts, 1), np.nan)
            per_prompt = np.where(present, rollouts / np.maximum(counts, 1), np.nan)
        tokens = (
            np.full(groups, np.nan)
            if tokens_per_prompt is None
            else np.bincount(plan.bins, weights=tokens_per_prompt, minlength=groups)
        )
        share = counts / len(plan.bins)
        weight = plan.bin_weights.astype(np.float64)
        nbar = float(plan.rollouts_per_prompt.sum() / len(plan.bins))
        return BinReport(
            share=share,
            weight=weight,
            score=self.sampler.bin_scores(),
            rollouts_per_prompt=per_prompt,
            reward_mean=2.0 * success - 1.0,
            success_rate=success,
            tokens=tokens,
            lead_lag_gap=lead_lag_gap(share, weight),
            shadow_price=self.allocator.shadow_price,
            measures=curriculum_measures(share, weight, success, per_prompt, self.classifier.num_bins, nbar),
        )

    def state_dict(self) -> dict[str, Any]:
        """The classifier's, sampler's and allocator's states, JSON-safe."""
        return {
            "classifier": self.classifier.state_dict(),
            "sampler": self.sampler.state_dict(),
            "allocator": self.allocator.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore all three parts."""
        self.classifier.load_state_dict(state["classifier"])
        self.sampler.load_state_dict(state["sampler"])
        self.allocator.load_state_dict(state["allocator"])
