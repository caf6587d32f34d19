"""Prompt-GDRO, the data adversary (docs/algorithm.md §3).

Game: min_theta max_{q in simplex} sum_b q_b L_b(theta). Exponential weights are entropic mirror ascent on
the soft worst-group objective R_eta = (1/eta) log sum_b exp(eta L_b), within log(B)/eta of max_b L_b.

Per step t, over the groups b active in the batch (`reweight`) or holding prompts (`resample`), with the
excluded group never active:
  l(x)     per-prompt signal: `surrogate` (clipped PG loss), `failure` 1 - p1(x) or
           `learnability` p1(x)(1 - p1(x));
  lbar(b)  batch mean of l over bin b's prompts, divided by qhat(b) = |bin b| / M when `share_norm`;
  S(b)     EMA of lbar with weight beta on the new value (first observation initialises);
  S'(b)    S, or its z-score over active bins (std floor 1e-3, clipped to +-3) when `score_norm: zscore`;
  q(b)     (1 - gamma) softmax(eta S')(b) + gamma / B_active, from the scores BEFORE step t's update.
`reweight`: with `weighting: paper` (the paper's code) w_i = q(b_i) / mean_j q(b_j), so bin b's share of the
loss is qhat(b) q(b), not q(b); with `weighting: importance` w_i = q(b_i) / qhat(b_i), whose batch mean is
already 1 and whose per-bin total over the batch divided by M is exactly q(b), the game's sum_b q(b) L_b.
Both: batch mean 1 over non-excluded prompts (qhat counts those alone), then min(w_i, w_max); excluded
prompts keep w_i = 1. `resample`: the batch is drawn bin-first with probability q, then a prompt
uniformly within the bin, without replacement inside a batch; advantages are not reweighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gdro.core.bin_stats import bin_counts, bin_means, ema_update, fill_unscored, mixed_softmax
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import SAMPLERS
from gdro.core.samplers.base import SamplerPlan
from gdro.core.samplers.data_order import EpochOrder
from gdro.core.state import restore_rng, rng_state
from gdro.core.step import StepResult

SCORE_SIGNALS = ("surrogate", "failure", "learnability")


@dataclass
class PromptGDROConfig:
    """Defaults are our preset `prompt_gdro`; `prompt_gdro_paper` is surrogate + share_norm + no score_norm."""

    mode: Literal["reweight", "resample"] = "reweight"
    """reweight: advantage multipliers w_i (the paper's runs); resample: draw the batch bin-first from q."""
    weighting: Literal["paper", "importance"] = "paper"
    """reweight only: paper (w ~ q(b): bin b gets qhat(b) q(b) of the loss) or importance (w ~ q(b) / qhat(b):
    exactly q(b))."""
    score_signal: Literal["surrogate", "failure", "learnability"] = "learnability"
    """Per-prompt signal l(x): surrogate (the clipped PG loss, the paper), failure 1 - p1, or learnability p1
    (1 - p1)."""
    share_norm: bool = False
    """Divide a bin's mean signal by its batch share qhat(b) (paper: on; makes rare bins win)."""
    score_norm: Literal["none", "zscore"] = "zscore"
    """Scores as they are (none), or z-scored over the active bins before the exponent."""
    eta: float = 0.65
    """Step size of the exponential weights q ~ exp(eta S)."""
    gamma: float = 0.01
    """Uniform mixing over active bins, a fraction in [0, 1]."""
    beta: float = 0.12
    """EMA weight on the new bin score, in (0, 1]."""
    max_weight: float = 15.0
    """w_max, the cap on an advantage multiplier (their batch mean is 1)."""
    zscore_std_floor: float = 1e-3
    """Least std of the z-score over bins."""
    zscore_clip: float = 3.0
    """z-scores clipped to [-zscore_clip, zscore_clip]."""

    def validate(self) -> None:
        """Fail early with the key and accepted values."""
        if self.mode not in ("reweight", "resample"):
            raise ValueError(f"sampler.mode={self.mode!r}: use 'reweight' or 'resample'")
        if self.weighting not in ("paper", "importance"):
            raise ValueError(f"sampler.weighting={self.weighting!r}: use 'paper' or 'importance'")
        if self.mode == "resample" and self.weighting != "paper":
            raise ValueError(
                f"sampler.weighting={self.weighting!r} reweights advantages, which sampler.mode=resample "
                "never does (it draws bins with probability q): use sampler.mode=reweight or drop the option"
            )
        if self.score_signal not in SCORE_SIGNALS:
            raise ValueError(f"sampler.score_signal={self.score_signal!r}: use one of {SCORE_SIGNALS}")
        if self.score_norm not in ("none", "zscore"):
            raise ValueError(f"sampler.score_norm={self.score_norm!r}: use 'none' or 'zscore'")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"sampler.gamma={self.gamma}: must lie in [0, 1]")
        if not 0.0 < self.beta <= 1.0:
            raise ValueError(f"sampler.beta={self.beta}: must lie in (0, 1]")
        if self.max_weight < 1.0:
            raise ValueError(f"sampler.max_weight={self.max_weight}: must be >= 1 (the batch mean of w)")


@SAMPLERS.register("prompt_gdro", config=PromptGDROConfig)
class PromptGDROSampler:
    """EMA-debiased exponential weights over difficulty bins, applied by reweighting or resampling."""

    def __init__(
        self, num_prompts: int, num_groups: int, config: PromptGDROConfig | None = None, seed: int = 0
    ) -> None:
        self.config = config or PromptGDROConfig()
        self.config.validate()
        self.num_prompts = int(num_prompts)
        self.num_groups = int(num_groups)
        self.scores = np.full(self.num_groups, np.nan)  # S(b); NaN = never scored
        self.order = EpochOrder(num_prompts, seed)
        self.rng = np.random.default_rng([seed, 1])

    def bin_weights(self, active: np.ndarray) -> np.ndarray:
        """q(b) over the active groups from the current scores; [G], zero on inactive groups."""
        cfg = self.config
        if not active.any():
            return np.zeros(self.num_groups)
        scores = fill_unscored(self.scores, active)
        if cfg.score_norm == "zscore":
            # np.mean and np.std written out (the same sums, so the same bits) without their overhead.
            active_scores = scores[active]
            mean = active_scores.sum() / len(active_scores)
            deviation = active_scores - mean
            variance = (deviation * deviation).sum() / len(active_scores)
            std = max(float(np.sqrt(variance)), cfg.zscore_std_floor)
            scores = np.clip((scores - mean) / std, -cfg.zscore_clip, cfg.zscore_clip)
        return mixed_softmax(scores, active, cfg.eta, cfg.gamma)

    def advantage_weights(
        self, bins: np.ndarray, bin_weights: np.ndarray, excluded: int | None
    ) -> np.ndarray:
        """w_i over non-excluded prompts, batch mean 1 then capped at w_max; excluded prompts get 1.

        `paper`: w_i = q(b_i) / mean_j q(b_j). `importance`: w_i = q(b_i) / qhat(b_i), qhat(b) = |bin b| / M'
        over the M' counted prompts; sum_i w_i = M' sum_b q(b) = M', so its mean is 1 before the cap.
        """
        counted = np.ones(len(bins), dtype=bool) if excluded is None else bins != excluded
        weights = np.ones(len(bins))
        if counted.any():
            counted_bins = bins[counted]
            raw = bin_weights[counted_bins]
            if self.config.weighting == "importance":
                share = np.bincount(counted_bins, minlength=self.num_groups) / len(counted_bins)
                raw = raw / share[counted_bins]
            weights[counted] = np.minimum(raw / raw.mean(), self.config.max_weight)
        return weights

    def plan(self, batch_size: int, classifier: DifficultyClassifier) -> SamplerPlan:
        """Draw (resample) or take (reweight) the batch and set its bin and advantage weights."""
        excluded = classifier.excluded_group
        if self.config.mode == "resample":
            pool_bins = classifier.classify(np.arange(self.num_prompts))
            active = self._active(bin_counts(pool_bins, self.num_groups), excluded)
            q = self.bin_weights(active)
            prompt_ids = self._draw_bin_first(pool_bins, q, batch_size)
            return SamplerPlan(prompt_ids, pool_bins[prompt_ids], q, np.ones(batch_size))
        prompt_ids = self.order.next_batch(batch_size)
        bins = classifier.classify(prompt_ids)
        q = self.bin_weights(self._active(bin_counts(bins, self.num_groups), excluded))
        return SamplerPlan(prompt_ids, bins, q, self.advantage_weights(bins, q, excluded))

    def _active(self, counts: np.ndarray, excluded: int | None) -> np.ndarray:
        active = counts > 0
        if excluded is not None:
            active[excluded] = False
        return active

    def _draw_bin_first(self, pool_bins: np.ndarray, q: np.ndarray, batch_size: int) -> np.ndarray:
        """M distinct ids: bins drawn with probability q (renormalised as bins run out), then uniform ids.

        When no bin is active (every prompt excluded) the batch is uniform over all prompts.
        """
        if batch_size > self.num_prompts:
            raise ValueError(
                f"trainer.prompts_per_step={batch_size} exceeds the dataset's {self.num_prompts} prompts"
            )
        capacity = bin_counts(pool_bins, self.num_groups)
        if q.sum() <= 0:
            return self.rng.choice(self.num_prompts, size=batch_size, replace=False).astype(np.int64)
        drawn = np.zeros(self.num_groups, dtype=np.int64)
        remaining = batch_size
        while remaining > 0:
            open_q = np.where(drawn < capacity, q, 0.0)
            if open_q.sum() <= 0:  # the weighted bins are exhausted: fill from the others uniformly
                open_q = (drawn < capacity).astype(np.float64)
            drawn += self.rng.multinomial(remaining, open_q / open_q.sum())
            overflow = np.maximum(drawn - capacity, 0)
            drawn -= overflow
            remaining = int(overflow.sum())
        members_by_bin = np.argsort(pool_bins, kind="stable")
        starts = np.r_[0, np.cumsum(capacity)]
        chosen = [
            self.rng.choice(members_by_bin[starts[b] : starts[b + 1]], size=drawn[b], replace=False)
            for b in np.flatnonzero(drawn)
        ]
        return self.rng.permutation(np.concatenate(chosen)).astype(np.int64)

    def prompt_signal(self, result: StepResult) -> np.ndarray:
        """l(x_i) for the configured score signal; [M]."""
        signal = self.config.score_signal
        if signal == "surrogate":
            if result.surrogate_loss is None:
                raise ValueError(
                    "sampler.score_signal=surrogate needs per-prompt surrogate losses from the trainer; "
                    "use score_signal=learnability or failure with a policy that provides none"
                )
            return np.asarray(result.surrogate_loss, dtype=np.float64)
        p1 = result.success_rate
        return 1.0 - p1 if signal == "failure" else p1 * (1.0 - p1)

    def update(self, result: StepResult) -> None:
        """S(b) <- EMA of the (optionally share-normalised) per-bin batch mean of the signal."""
        per_bin = bin_means(self.prompt_signal(result), result.bins, self.num_groups)
        if self.config.share_norm:
            share = bin_counts(result.bins, self.num_groups) / result.batch_size
            with np.errstate(invalid="ignore", divide="ignore"):
                per_bin = per_bin / share
        self.scores = ema_update(self.scores, per_bin, self.config.beta)

    def bin_scores(self) -> np.ndarray:
        """S(b) per group (NaN for groups never scored)."""
        return self.scores.copy()

    def state_dict(self) -> dict[str, Any]:
        """Scores, data order and the resampling RNG."""
        return {
            "scores": [None if np.isnan(s) else float(s) for s in self.scores],
            "order": self.order.state_dict(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        self.scores = np.array([np.nan if s is None else s for s in state["scores"]], dtype=np.float64)
        self.order.load_state_dict(state["order"])
        restore_rng(self.rng, state["rng"])
