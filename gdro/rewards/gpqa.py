"""The `gpqa` reward (multiple choice, letters A-D); the options are shuffled by gdro.data.benchmarks.

    letter = the option letter of the LAST answer statement in the completion, one of
             \\boxed{X}, \\boxed{(X)}, \\boxed{\\text{X}}, \\boxed{\\textbf{(X)}}
             "Answer: X", "answer is (X)", "The answer is: X", "**Answer:** X", "Answer: $X$"
             with X in A-D, upper case, not followed by a letter or digit ("Answer: Because" is none)
    r      = +1 if letter == answer (the correct letter) else -1; no statement: -1

The patterns start with a literal and backtrack over bounded runs only, so they scan a megabyte
completion in milliseconds: the reward runs inline.
"""

from __future__ import annotations

import re
from collections import deque

from gdro.rewards.registry import inline_reward

_BOXED_LETTER = re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{\s*)?\(?\s*([A-D])\s*\)?\s*\}?\s*\}")
_ANSWER_LETTER = re.compile(r"(?i:answer)\s*(?:is\s*:?|:)[\s*$]*\(?([A-D])(?![A-Za-z0-9])")


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    tail = deque(pattern.finditer(text), maxlen=1)
    return tail[0] if tail else None


def extract_choice(text: str) -> str | None:
    """The letter (A-D) of the last answer statement in `text`, or None."""
    matches = [m for m in (_last_match(_BOXED_LETTER, text), _last_match(_ANSWER_LETTER, text)) if m]
    if not matches:
        return None
    return max(matches, key=lambda match: match.start()).group(1)


@inline_reward("gpqa")
def gpqa_score(text: str, answer: str) -> float:
    """+1.0 if the extracted letter equals the correct letter `answer` ("C"), else -1.0."""
    return 1.0 if extract_choice(text) == answer.strip().upper() else -1.0
