"""A learning simulator: a numpy stand-in for a policy, for studying curriculum controllers.

Model. Each prompt x has a latent level d(x) in {0, ..., L-1}, drawn with probability proportional
to 1 / (d + 1), so easy prompts dominate the pool as they do in real math data sets, and a fixed
difficulty(x) = d(x) + N(0, level_jitter^2). The "policy" is a skill vector skill[L], and a rollout
of x succeeds with probability

    p(x) = sigmoid(skill[d(x)] - difficulty(x)).

Learning follows the GRPO signal: a prompt teaches only when its group holds both correct and
incorrect rollouts, in proportion to w_i * sum_j |A_ij| (w_i: the controller's advantage weight).
Per level, gain[d] = lr * sum_{i at level d} w_i sum_j |A_ij| / sum_i n_i, and skill transfers to
neighbouring levels: skill[d'] += sum_d gain[d] * exp(-spread * |d - d'|).

Surrogate loss (the signal of the paper presets, docs/algorithm.md §3-4). The real per-prompt clipped
surrogate is exactly 0 on-policy and comes only from the policy's drift within a step; the simulator
models that drift as each rollout's probability ratio moving by `surrogate_drift` in the direction of
its advantage, rho_ij = 1 + drift sign(A_ij) (inside the clip range), which gives
    l_i = -mean_j rho_ij A_ij = -drift mean_j |A_ij|        (sum_j A_ij = 0),
plus N(0, surrogate_noise^2) for the mini-batch noise, drawn from a stream of its own; both terms are
0 for a group without disagreement, as the real loss is. So -l_i rewards groups that disagree, with a
signal of the real loss's small size, and an arm n of a bin is worth more where n rollouts disagree more.

Held-out evaluation. `eval_prompts_per_level` further prompts per latent level, drawn the same way
(difficulty = d + N(0, level_jitter^2)) from a stream of their own and never trained on, are scored by
the same skill model: p(x) = sigmoid(skill[d(x)] - difficulty(x)). The level's skill generalises to them
exactly, but their difficulties are not the training prompts', and every level counts equally.

Why this shape: easy prompts saturate (p -> 1, constant groups, no signal), while transfer lifts
the harder levels into the p ~ 1/2 region, so the frontier (the p(1-p)-weighted mean level) moves
up during training. A controller that spends rollouts or weight where the signal is gets there
faster; one that spends them on solved or hopeless prompts does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gdro.core.state import decode_array, encode_array, restore_rng, rng_state


@dataclass
class SimulatorConfig:
    """Hyper-parameters of `LearningSimulator` (see the module docstring for the model)."""

    num_prompts: int = 2048
    num_levels: int = 10  # L
    lr: float = 0.05  # skill gain per unit of mean |advantage| per rollout
    initial_skill: float = 2.0  # level 0 starts near p = 0.88, level 2 near 0.5, level 9 near 0
    level_jitter: float = 0.5  # std of difficulty(x) around d(x)
    spread: float = 1.0  # transfer kernel exp(-spread * |d - d'|)
    seed: int = 0
    adv_eps: float = 1e-6  # eps of the GRPO advantage (std + eps)
    surrogate_drift: float = 0.05  # ratio drift per rollout behind the surrogate-loss proxy
    surrogate_noise: float = 0.02  # std of the proxy's per-prompt noise
    eval_prompts_per_level: int = 64  # held-out prompts per latent level (evaluation only)


def group_abs_advantage_sum(
    rollouts_per_prompt: np.ndarray | int,
    correct_per_prompt: np.ndarray,
    eps: float = 1e-6,
) -> np.ndarray:
    """sum_j |A_ij| of each prompt's GRPO group, in closed form from its counts.

    With rewards +-1, c correct of n rollouts: sum_j |r_ij - mean_i| = 4c(n-c)/n and the unbiased
    std is sqrt(4c(n-c) / (n(n-1))), so

        sum_j |A_ij| = (4c(n-c)/n) / (std + eps),

    which is 0 for constant groups (c in {0, n}) and for n = 1. Advantage clipping to [-5, 5]
    (docs/algorithm.md §1) is not applied: the largest |A_ij| is (n-1)/sqrt(n), under 5 for n <= 26.

    Shapes: rollouts_per_prompt [M] (or a scalar n), correct_per_prompt [M]; returns float64 [M].
    """
    n = np.asarray(rollouts_per_prompt, dtype=np.float64)
    c = np.asarray(correct_per_prompt, dtype=np.float64)
    abs_deviation_sum = 4.0 * c * (n - c) / np.maximum(n, 1.0)
    std = np.sqrt(abs_deviation_sum / np.maximum(n - 1.0, 1.0))
    # `where` keeps constant groups at exactly 0 even with eps = 0.
    return np.divide(abs_deviation_sum, std + eps, out=np.zeros_like(std), where=abs_deviation_sum > 0)


# Stream id of the surrogate-loss noise: np.random.default_rng([seed, SURROGATE_STREAM]).
SURROGATE_STREAM = 3
# Stream id of the held-out prompts' difficulties: np.random.default_rng([seed, HELDOUT_STREAM]).
HELDOUT_STREAM = 4


def _per_prompt(rollouts_per_prompt: np.ndarray | int, num_prompts: int) -> np.ndarray:
    """n_i as an int array [M], from an array [M] or one n for every prompt."""
    if np.ndim(rollouts_per_prompt) == 0:
        return np.full(num_prompts, rollouts_per_prompt, dtype=np.int64)
    return np.asarray(rollouts_per_prompt, dtype=np.int64)


class LearningSimulator:
    """Prompts with latent levels, a skill vector, binomial rollouts and GRPO-shaped learning.

    Attributes:
        latent_level: int [N], d(x) of each prompt.
        difficulty: float [N], d(x) + N(0, level_jitter^2), fixed at construction.
        skill: float [L], the policy's skill per level.
        heldout_level: int [L * K], d(x) of the held-out prompts, K = eval_prompts_per_level per level.
        heldout_difficulty: float [L * K], their difficulties (fixed by the seed, never trained on).
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        cfg = self.config
        self._rng = np.random.default_rng(cfg.seed)
        # The surrogate's noise has its own stream, so rollouts are the same whether it is drawn or not.
        self._surrogate_rng = np.random.default_rng([cfg.seed, SURROGATE_STREAM])
        levels = np.arange(cfg.num_levels)
        level_probability = 1.0 / (levels + 1.0)
        level_probability /= level_probability.sum()
        self.latent_level = self._rng.choice(cfg.num_levels, size=cfg.num_prompts, p=level_probability)
        self.difficulty = self.latent_level + self._rng.normal(0.0, cfg.level_jitter, size=cfg.num_prompts)
        self.skill = np.full(cfg.num_levels, cfg.initial_skill, dtype=np.float64)
        self._transfer_kernel = np.exp(-cfg.spread * np.abs(levels[:, None] - levels[None, :]))
        self._level_counts = np.bincount(self.latent_level, minlength=cfg.num_levels)
        heldout_rng = np.random.default_rng([cfg.seed, HELDOUT_STREAM])
        self.heldout_level = np.repeat(levels, cfg.eval_prompts_per_level)
        self.heldout_difficulty = self.heldout_level + heldout_rng.normal(
            0.0, cfg.level_jitter, size=len(self.heldout_level)
        )

    @property
    def num_prompts(self) -> int:
        return self.config.num_prompts

    @property
    def num_levels(self) -> int:
        return self.config.num_levels

    def success_probability(self, prompt_ids: np.ndarray) -> np.ndarray:
        """p(x) = sigmoid(skill[d(x)] - difficulty(x)). prompt_ids int [M] -> float [M]."""
        logit = self.skill[self.latent_level[prompt_ids]] - self.difficulty[prompt_ids]
        return 1.0 / (1.0 + np.exp(-logit))

    def heldout_success_probability(self) -> np.ndarray:
        """p(x) = sigmoid(skill[d(x)] - difficulty(x)) of each held-out prompt: float [L * K]."""
        logit = self.skill[self.heldout_level] - self.heldout_difficulty
        return 1.0 / (1.0 + np.exp(-logit))

    def rollout(self, prompt_ids: np.ndarray, rollouts_per_prompt: np.ndarray | int) -> np.ndarray:
        """Correct rollouts c_i ~ Binomial(n_i, p(x_i)), from the simulator's own seeded RNG.

        prompt_ids int [M]; rollouts_per_prompt int [M] or a scalar n; returns int64 [M].
        """
        return self._rng.binomial(rollouts_per_prompt, self.success_probability(prompt_ids))

    def learn(
        self,
        prompt_ids: np.ndarray,
        rollouts_per_prompt: np.ndarray | int,
        correct_per_prompt: np.ndarray,
        advantage_weights: np.ndarray | float,
    ) -> None:
        """One policy update from a batch's counts.

        signal_i = w_i * sum_j |A_ij| (`group_abs_advantage_sum`),
        gain[d] = lr * sum_{i: d(x_i) = d} signal_i / sum_i n_i,
        skill[d'] += sum_d gain[d] * exp(-spread * |d - d'|).

        Dividing by the total rollouts makes the step size independent of the batch size, and makes
        rollouts spent on constant groups cost signal. All array arguments are [M]; a scalar n or w
        applies to every prompt.
        """
        counts = _per_prompt(rollouts_per_prompt, len(correct_per_prompt))
        signal = group_abs_advantage_sum(counts, correct_per_prompt, self.config.adv_eps)
        signal *= advantage_weights
        total_rollouts = counts.sum()
        if total_rollouts == 0:
            return
        gain = np.bincount(self.latent_level[prompt_ids], weights=signal, minlength=self.config.num_levels)
        gain *= self.config.lr / total_rollouts
        self.skill += gain @ self._transfer_kernel

    def surrogate_loss(
        self, rollouts_per_prompt: np.ndarray | int, correct_per_prompt: np.ndarray
    ) -> np.ndarray:
        """The per-prompt surrogate-loss proxy (module docstring), float [M]:

        l_i = -surrogate_drift * sum_j |A_ij| / n_i + surrogate_noise * N(0, 1), both 0 where the group's
        rewards are all equal. The noise comes from the simulator's surrogate stream (saved state).
        """
        counts = _per_prompt(rollouts_per_prompt, len(correct_per_prompt))
        abs_sum = group_abs_advantage_sum(counts, correct_per_prompt, self.config.adv_eps)
        noise = self._surrogate_rng.normal(0.0, self.config.surrogate_noise, size=len(counts))
        drift = -self.config.surrogate_drift * abs_sum / np.maximum(counts, 1)
        return np.where(abs_sum > 0, drift + noise, 0.0)

    def step(
        self, prompt_ids: np.ndarray, rollouts_per_prompt: np.ndarray, advantage_weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One training step of the simulated policy: rollouts, the update, the surrogate proxy.

        Returns (correct_per_prompt int [M], surrogate_loss float [M]); all arguments are [M].
        """
        correct = self.rollout(prompt_ids, rollouts_per_prompt)
        self.learn(prompt_ids, rollouts_per_prompt, correct, advantage_weights)
        return correct, self.surrogate_loss(rollouts_per_prompt, correct)

    def level_success(self) -> np.ndarray:
        """Mean p(x) over each level's prompts: float [L] (NaN for a level with no prompts)."""
        probability = self.success_probability(np.arange(self.num_prompts))
        sums = np.bincount(self.latent_level, weights=probability, minlength=self.config.num_levels)
        return np.divide(
            sums,
            self._level_counts,
            out=np.full(self.config.num_levels, np.nan),
            where=self._level_counts > 0,
        )

    def frontier(self) -> float:
        """sum_x p(1-p) d(x) / sum_x p(1-p): the mean latent level, weighted by learnability.

        About 1.5 at the default config before training (the 1/(d+1) mix weighs the easy levels).
        """
        probability = self.success_probability(np.arange(self.num_prompts))
        learnability = probability * (1.0 - probability)
        return float(np.dot(learnability, self.latent_level) / learnability.sum())

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state: skill, levels, difficulties and both RNG streams, stored exactly."""
        return {
            "skill": encode_array(self.skill),
            "latent_level": encode_array(self.latent_level),
            "difficulty": encode_array(self.difficulty),
            "rng": rng_state(self._rng),
            "surrogate_rng": rng_state(self._surrogate_rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()`; the config must have the same num_prompts and num_levels."""
        skill = decode_array(state["skill"])
        latent_level = decode_array(state["latent_level"])
        difficulty = decode_array(state["difficulty"])
        if skill.shape != (self.num_levels,) or latent_level.shape != (self.num_prompts,):
            raise ValueError(
                f"state has {skill.shape[0]} levels and {latent_level.shape[0]} prompts; "
                f"this simulator has {self.num_levels} and {self.num_prompts}"
            )
        self.skill = skill
        self.latent_level = latent_level
        self.difficulty = difficulty
        self._level_counts = np.bincount(latent_level, minlength=self.num_levels)
        restore_rng(self._rng, state["rng"])
        restore_rng(self._surrogate_rng, state["surrogate_rng"])
