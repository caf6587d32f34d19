"""SPO's prioritized prompt sampling (Single-stream Policy Optimization, arXiv 2509.13232), a baseline sampler.

Source: verl's recipe repository (verl-project/verl-recipe), `spo/spo_ray_trainer.py` (`fit`, the
`trainer.spo` branch) and `spo/config/spo_trainer.yaml`. Per prompt x a Beta(alpha(x), beta(x)) belief
over its success rate:
  prior       alpha = beta = 0.5 (the recipe's prior without offline value estimates, `offline_N: 0`);
  update      after a visit with n_i rollouts of which c_i are correct,
                  alpha <- rho alpha + c_i,   beta <- rho beta + (n_i - c_i),
              rho the forgetting factor (the recipe's constant rule, `rho.value: 0.875`);
  weight      p_hat = alpha / (alpha + beta), the posterior mean, and
                  w(x) = sqrt(p_hat (1 - p_hat)) + 0.05   (`EXPLORATION_EPSILON`);
  draw        from a candidate pool, M prompts WITHOUT replacement with probability proportional to w
              (numpy's weighted `choice(..., replace=False)`: successive draws among those not yet taken).
The pool is the next `pool_size` ids of the epoch order (the recipe's `data.gen_batch_size` loader batch;
its DAPO run loads nearly the whole training set), or all N prompts with `pool_size: 0`.
Where our setting differs or the source is silent: SPO trains on one rollout per prompt, so its update adds
one reward; with n_i rollouts we add the counts (the Beta posterior of n_i Bernoulli draws) and decay once
per visit. The recipe's default `rho.type: kl` sets rho = clip(2^(-D / 0.06), 0.875, 0.96) from the
policy's log-prob drift D on the prompt's previous response, which the controllers do not see; we keep the
constant rule, whose value equals the KL rule's floor. Prompts are not reweighted (w_i = 1): SPO's own
advantage (reward minus p_hat) is not GRPO's and is not used here. q is the batch share, as GRPO's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gdro.core.bin_stats import bin_counts
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import SAMPLERS
from gdro.core.samplers.base import SamplerPlan
from gdro.core.samplers.data_order import EpochOrder
from gdro.core.state import decode_array, encode_array, restore_rng, rng_state
from gdro.core.step import StepResult

# Stream id of the weighted draws: np.random.default_rng([seed, DRAW_STREAM]) (the pool order uses seed).
DRAW_STREAM = 3


@dataclass
class SPOConfig:
    """Defaults are the recipe's: Beta(0.5, 0.5) prior, constant forgetting rho = 0.875, epsilon 0.05."""

    prior_alpha: float = 0.5
    """alpha of every prompt's Beta prior (pseudo-count of successes)."""
    prior_beta: float = 0.5
    """beta of every prompt's Beta prior (pseudo-count of failures)."""
    rho: float = 0.875
    """Forgetting factor in (0, 1]: alpha <- rho alpha + correct, beta <- rho beta + failed, per visit."""
    epsilon: float = 0.05
    """Exploration floor added to the weight sqrt(p_hat (1 - p_hat))."""
    pool_size: int = 0
    """Candidate prompts per step, read in epoch order (the recipe's gen_batch_size); 0: all N prompts."""

    def validate(self) -> None:
        """Fail early, naming the key."""
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError(
                f"sampler.prior_alpha={self.prior_alpha}, sampler.prior_beta={self.prior_beta}: both must be > 0"
            )
        if not 0.0 < self.rho <= 1.0:
            raise ValueError(f"sampler.rho={self.rho}: must lie in (0, 1]")
        if self.epsilon <= 0:
            raise ValueError(f"sampler.epsilon={self.epsilon}: must be > 0 (it keeps every prompt drawable)")
        if self.pool_size < 0:
            raise ValueError(f"sampler.pool_size={self.pool_size}: must be >= 0 (0: every prompt)")


def spo_weights(alpha: np.ndarray, beta: np.ndarray, epsilon: float) -> np.ndarray:
    """w = sqrt(p_hat (1 - p_hat)) + epsilon, p_hat = alpha / (alpha + beta); same shape as alpha."""
    p_hat = alpha / (alpha + beta)
    return np.sqrt(p_hat * (1.0 - p_hat)) + epsilon


@SAMPLERS.register("spo", config=SPOConfig)
class SPOSampler:
    """Prompts drawn with weight sqrt(p_hat (1 - p_hat)) + epsilon from per-prompt decayed Beta counts."""

    def __init__(
        self, num_prompts: int, num_groups: int, config: SPOConfig | None = None, seed: int = 0
    ) -> None:
        self.config = config or SPOConfig()
        self.config.validate()
        self.num_prompts = int(num_prompts)
        self.num_groups = int(num_groups)
        if self.config.pool_size > self.num_prompts:
            raise ValueError(
                f"sampler.pool_size={self.config.pool_size} exceeds the dataset's {self.num_prompts} prompts; "
                "lower sampler.pool_size (0: every prompt)"
            )
        self.alpha = np.full(self.num_prompts, float(self.config.prior_alpha))
        self.beta = np.full(self.num_prompts, float(self.config.prior_beta))
        self.visited = np.zeros(self.num_prompts, dtype=bool)  # counts moved from the prior
        self.order = EpochOrder(num_prompts, seed)
        self.rng = np.random.default_rng([seed, DRAW_STREAM])

    def weights(self, prompt_ids: np.ndarray) -> np.ndarray:
        """w(x) of each prompt; [len(prompt_ids)]."""
        return spo_weights(self.alpha[prompt_ids], self.beta[prompt_ids], self.config.epsilon)

    def plan(self, batch_size: int, classifier: DifficultyClassifier) -> SamplerPlan:
        """M distinct prompts drawn from the pool with probability proportional to w; q the batch share."""
        pool_size = self.config.pool_size or self.num_prompts
        if batch_size > pool_size:
            raise ValueError(
                f"trainer.prompts_per_step={batch_size} exceeds sampler.pool_size={pool_size}: SPO draws the "
                "batch without replacement from the pool; raise sampler.pool_size (0: every prompt)"
            )
        pool = self.order.next_batch(pool_size)
        weights = self.weights(pool)
        prompt_ids = self.rng.choice(pool, size=batch_size, replace=False, p=weights / weights.sum())
        prompt_ids = prompt_ids.astype(np.int64)
        bins = classifier.classify(prompt_ids)
        share = bin_counts(bins, self.num_groups) / batch_size
        return SamplerPlan(prompt_ids, bins, share, np.ones(batch_size))

    def update(self, result: StepResult) -> None:
        """alpha <- rho alpha + c_i, beta <- rho beta + (n_i - c_i), once per visit, in batch order."""
        ids = np.asarray(result.prompt_ids, dtype=np.int64)
        correct = np.asarray(result.correct_per_prompt, dtype=np.float64)
        failed = np.asarray(result.rollouts_per_prompt, dtype=np.float64) - correct
        rho = self.config.rho
        if len(np.unique(ids)) == len(ids):
            self.alpha[ids] = rho * self.alpha[ids] + correct
            self.beta[ids] = rho * self.beta[ids] + failed
        else:  # a prompt visited twice in one batch decays between its visits
            for prompt, wins, losses in zip(ids.tolist(), correct.tolist(), failed.tolist(), strict=True):
                self.alpha[prompt] = rho * self.alpha[prompt] + wins
                self.beta[prompt] = rho * self.beta[prompt] + losses
        self.visited[ids] = True

    def bin_scores(self) -> np.ndarray:
        """No per-bin scores (SPO's state is per prompt): NaN per group."""
        return np.full(self.num_groups, np.nan)

    def state_dict(self) -> dict[str, Any]:
        """The visited prompts' Beta counts (exact bytes), the pool order and the draw generator."""
        visited = np.flatnonzero(self.visited)
        return {
            "num_prompts": self.num_prompts,
            "visited": encode_array(visited),
            "alpha": encode_array(self.alpha[visited]),
            "beta": encode_array(self.beta[visited]),
            "order": self.order.state_dict(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved into a sampler built with the same config and N."""
        if state["num_prompts"] != self.num_prompts:
            raise ValueError(
                f"checkpoint sampler has {state['num_prompts']} prompts, this run {self.num_prompts}"
            )
        visited = decode_array(state["visited"])
        self.alpha = np.full(self.num_prompts, float(self.config.prior_alpha))
        self.beta = np.full(self.num_prompts, float(self.config.prior_beta))
        self.alpha[visited] = decode_array(state["alpha"])
        self.beta[visited] = decode_array(state["beta"])
        self.visited = np.zeros(self.num_prompts, dtype=bool)
        self.visited[visited] = True
        self.order.load_state_dict(state["order"])
        restore_rng(self.rng, state["rng"])
