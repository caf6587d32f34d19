"""The emergent-curriculum measures of docs/algorithm.md §8, computed once per step (numpy only).

Every function works along the last axis, so one step's [G] vector and a run's [T, G] matrix give a
scalar and a [T] vector. Inputs are per-group arrays as in `BinReport`: G = B difficulty bins (bin 0
hardest), plus the excluded group last when the classifier has one; NaN counts as 0 weight.

    mean bin index   m(d) = sum_b b d(b) / sum_b d(b)              over the B bins, in bins
    mean-bin gap     m(q) - m(qhat)                                weights minus data (< 0: weights harder)
    per-bin gap      q(b) - qhat(b), L1 = sum_b |q(b) - qhat(b)|  over all G groups (L1 in [0, 2])
    weight entropy   H = -sum_{b: q(b) > 0} q(b) log q(b)         over the B bins, nats; exp(H) in [1, B]
    WSE              sum_b q(b) sigma_b / sqrt(n_b) against nbar   see `weighted_standard_error`
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np


def normalise(dist: np.ndarray) -> np.ndarray:
    """d / sum_b d(b) along the last axis, NaN entries as 0; a slice summing to 0 becomes all NaN."""
    dist = np.asarray(dist, dtype=np.float64)
    dist = np.where(np.isnan(dist), 0.0, dist)
    total = dist.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, dist / total, np.nan)


def mean_bin_index(dist: np.ndarray) -> np.ndarray:
    """m = sum_b b d(b) / sum_b d(b) for non-negative d [..., B] (NaN as 0); [...], in bins, NaN if d = 0."""
    dist = normalise(dist)
    return (dist * np.arange(dist.shape[-1], dtype=np.float64)).sum(axis=-1)


def lead_lag_gap(share: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """q(b) - qhat(b) per group, both normalised to sum 1 along the last axis; [..., G], sums to 0.

    > 0: the adversary weighs the group more than the batch's data holds it.
    """
    return normalise(weight) - normalise(share)


def weight_entropy(weight: np.ndarray) -> np.ndarray:
    """H = -sum_{b: q(b) > 0} q(b) log q(b) in nats, q = weight normalised to 1; [...], NaN if weight = 0.

    weight: [..., B] (NaN as 0). H is 0 for all weight on one bin, log B for uniform weight.
    """
    q = normalise(weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    return np.where(np.isnan(q).all(axis=-1), np.nan, 0.0 - terms.sum(axis=-1))  # 0.0, not -0.0


def weighted_standard_error(
    weight: np.ndarray, success_rate: np.ndarray, rollouts_per_prompt: np.ndarray, nbar: float
) -> tuple[np.ndarray, np.ndarray]:
    """The weighted standard-error proxy (docs/algorithm.md §8) of the allocation and of uniform nbar.

    With q(b) = weight(b) / sum_b' weight(b') (the adversary weight normalised to 1 over all groups,
    NaN as 0), sigma(b) = 2 sqrt(p(b) (1 - p(b))) the per-rollout std of the +-1 reward of group b (p
    its success rate this step) and n(b) its mean rollouts per prompt:

        WSE         = sum_b q(b) sigma(b) / sqrt(n(b))
        WSE_uniform = sum_b q(b) sigma(b) / sqrt(nbar)

    Both sums skip the same groups: those where q, p or n is missing (the group was absent that step).
    Inputs are [..., G]; returns two [...] arrays in reward units, NaN where there is no weight.
    """
    q = normalise(weight)
    p = np.asarray(success_rate, dtype=np.float64)
    n = np.asarray(rollouts_per_prompt, dtype=np.float64)
    valid = np.isfinite(q) & np.isfinite(p) & np.isfinite(n) & (n > 0)
    with np.errstate(invalid="ignore"):
        weighted_sigma = np.where(valid, q * 2.0 * np.sqrt(np.clip(p * (1.0 - p), 0.0, None)), 0.0)
    wse = (weighted_sigma / np.sqrt(np.where(valid, n, 1.0))).sum(axis=-1)
    wse_uniform = weighted_sigma.sum(axis=-1) / math.sqrt(nbar)
    no_weight = np.isnan(q).all(axis=-1)
    return np.where(no_weight, np.nan, wse), np.where(no_weight, np.nan, wse_uniform)


def wse_reduction(wse: np.ndarray | float, wse_uniform: np.ndarray | float) -> float:
    """1 - mean_t WSE_t / mean_t WSE_uniform_t over the steps where both are finite (a fraction).

    For one step this is 1 - WSE / WSE_uniform. NaN where no step has a positive WSE_uniform.
    > 0: the allocation's weighted standard error is lower than spending nbar rollouts on every prompt.
    """
    wse, wse_uniform = np.atleast_1d(wse), np.atleast_1d(wse_uniform)
    both = np.isfinite(wse) & np.isfinite(wse_uniform)
    uniform_mean = float(np.mean(wse_uniform[both])) if both.any() else 0.0
    return 1.0 - float(np.mean(wse[both])) / uniform_mean if uniform_mean > 0 else math.nan


@dataclass
class CurriculumMeasures:
    """The per-step curriculum scalars, logged as `curriculum/<name>`; NaN (null) where undefined.

    mean_bin_share m(qhat), mean_bin_weight m(q), mean_bin_gap m(q) - m(qhat): in bins, over the B bins
    (< 0: the adversary's weight sits on harder bins than the batch's data); lead_lag_gap_l1:
    sum_b |q(b) - qhat(b)| over all G groups (twice the total variation, in [0, 2]); weight_entropy H (nats) and
    effective_bins exp(H) over the B bins; wse, wse_uniform (reward units) and
    wse_reduction = 1 - wse / wse_uniform over all G groups.
    """

    mean_bin_share: float
    mean_bin_weight: float
    mean_bin_gap: float
    lead_lag_gap_l1: float
    weight_entropy: float
    effective_bins: float
    wse: float
    wse_uniform: float
    wse_reduction: float


# The fields of `CurriculumMeasures`, logged as `curriculum/<name>` (the metrics.jsonl contract).
CURRICULUM_MEASURES = tuple(f.name for f in fields(CurriculumMeasures))


def curriculum_measures(
    share: np.ndarray,
    weight: np.ndarray,
    success_rate: np.ndarray,
    rollouts_per_prompt: np.ndarray,
    num_bins: int,
    nbar: float,
) -> CurriculumMeasures:
    """One step's measures from its [G] per-group share qhat, weight q, success rate and n_b.

    num_bins: B, the difficulty bins (the first B groups; a G-th group is the excluded one).
    nbar: the uniform allocation's rollouts per prompt.
    """
    mean_share = float(mean_bin_index(share[:num_bins]))
    mean_weight = float(mean_bin_index(weight[:num_bins]))
    entropy = float(weight_entropy(weight[:num_bins]))
    wse, wse_uniform = weighted_standard_error(weight, success_rate, rollouts_per_prompt, nbar)
    return CurriculumMeasures(
        mean_bin_share=mean_share,
        mean_bin_weight=mean_weight,
        mean_bin_gap=mean_weight - mean_share,
        lead_lag_gap_l1=float(np.abs(lead_lag_gap(share, weight)).sum()),
        weight_entropy=entropy,
        effective_bins=math.exp(entropy),
        wse=float(wse),
        wse_uniform=float(wse_uniform),
        wse_reduction=wse_reduction(wse, wse_uniform),
    )
