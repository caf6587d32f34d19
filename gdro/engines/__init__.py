"""Rollout engines: generate completions with per-prompt counts and score their log-probs."""

from gdro.engines.hf import Generations, HFEngine, SamplingParams, sequence_logprobs

__all__ = ["Generations", "HFEngine", "SamplingParams", "sequence_logprobs"]
