"""Rollout engines: generate completions with per-prompt counts and score their log-probs.

`gdro.engines.sampling` holds the decoding settings (light to import); `gdro.engines.hf` the transformers
engine, imported only by the model-backed policy.
"""
