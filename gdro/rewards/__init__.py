"""Verifiable rewards: +1 for a correct final answer, -1 otherwise (spec section 1)."""

from gdro.rewards.boxed import integer_match_reward, last_boxed

__all__ = ["integer_match_reward", "last_boxed"]
