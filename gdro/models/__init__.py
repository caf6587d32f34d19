"""Models of the embedded default: a character tokenizer, a tiny Qwen3 and its supervised warm start."""
