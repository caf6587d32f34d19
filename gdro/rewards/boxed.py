"""Answer extraction from \\boxed{...} and the exact-integer reward of the embedded chain task.

Pure string operations, so scoring thousands of rollouts per step costs microseconds each.
"""

from __future__ import annotations

import re

from gdro.rewards.registry import inline_reward

BOXED_OPEN = "\\boxed{"
_INTEGER = re.compile(r"[+-]?\d+")


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} in `text`, with nested braces balanced.

    Returns None when there is no \\boxed{ or the last one is never closed.
    """
    start = text.rfind(BOXED_OPEN)
    if start < 0:
        return None
    depth = 1
    content_start = start + len(BOXED_OPEN)
    for position in range(content_start, len(text)):
        char = text[position]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[content_start:position]
    return None


@inline_reward("integer_match")
def integer_match_reward(completion: str, answer: str) -> float:
    """+1.0 if the last boxed content, stripped, is an integer equal to int(answer); else -1.0.

    Leading zeros and a sign are allowed ("07" matches "7"). `answer` must be an integer string.
    """
    target = int(answer.strip())
    content = last_boxed(completion)
    if content is None:
        return -1.0
    content = content.strip()
    if _INTEGER.fullmatch(content) is None:
        return -1.0
    return 1.0 if int(content) == target else -1.0
