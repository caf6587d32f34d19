"""Rollout engines: generate completions with per-prompt counts and score their log-probs.

`gdro.engines.base` holds the protocol and the decoding settings (light to import); `gdro.engines.hf` the
transformers engine and `gdro.engines.vllm` the vLLM engine (vLLM itself imported only when one is built).
"""
