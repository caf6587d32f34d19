"""The one prompt template of training and evaluation (docs/algorithm.md §6).

"base" (what the paper's zero-SFT runs on Qwen3-Base use): the problem, a blank line, then
`BOXED_INSTRUCTION`:

    What is 1+1?

    Please reason step by step, and put your final answer within \\boxed{}.

"chat": the same text as the single user turn of `tokenizer.apply_chat_template`, with the
generation prompt (the assistant header) appended. Training prompts and every benchmark prompt
go through `render_prompt`, so a model is evaluated on the prompt format it was trained on.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
TEMPLATES = ("base", "chat")


def render_prompt(problem: str, template: str, tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """The prompt text for `problem` under `template` ("base" or "chat"; "chat" needs `tokenizer`)."""
    text = f"{problem}\n\n{BOXED_INSTRUCTION}"
    if template == "base":
        return text
    if template == "chat":
        if tokenizer is None:
            raise ValueError("the chat template needs a tokenizer")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"unknown template {template!r}; expected one of {TEMPLATES}")
