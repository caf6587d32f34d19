"""Verifiable rewards: +1 for a correct final answer, -1 otherwise (docs/algorithm.md §1).

`build_reward(name, **options)` gives a batched `Reward` (`rewards(texts, answers) -> np.ndarray`,
`timeouts`, `close()`); see gdro.rewards.registry for the names. Scorers that run a parser on model
text go through gdro.rewards.pool (worker processes, hard per-item deadline).
"""

from gdro.rewards.base import InlineReward, Reward
from gdro.rewards.boxed import integer_match_reward, last_boxed
from gdro.rewards.dapo import dapo_score, normalize_final_answer
from gdro.rewards.gpqa import extract_choice, gpqa_score
from gdro.rewards.math_equivalence import MathVerifyReward, last_boxed_answer, math_verify_score
from gdro.rewards.pool import PoolResult, ScoringPool
from gdro.rewards.registry import REWARDS, build_reward

__all__ = [
    "REWARDS",
    "InlineReward",
    "MathVerifyReward",
    "PoolResult",
    "Reward",
    "ScoringPool",
    "build_reward",
    "dapo_score",
    "extract_choice",
    "gpqa_score",
    "integer_match_reward",
    "last_boxed",
    "last_boxed_answer",
    "math_verify_score",
    "normalize_final_answer",
]
