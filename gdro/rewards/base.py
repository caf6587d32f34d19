"""The batched reward interface the trainer calls, and the adapter for cheap per-item scorers.

A reward maps B completions and their B reference answers to r in {-1.0, +1.0}^B (float64, shape
[B]): +1 when the completion's final answer is correct (docs/algorithm.md §1). `timeouts` holds how many
items of the last call were cut by a deadline (metric `reward/timeouts`); they score -1.

Inputs are `str`. A completion decoded from invalid UTF-8 is accepted whether the engine decoded it
with errors="replace" (U+FFFD) or errors="surrogateescape" (lone surrogates U+DC80-U+DCFF); bytes
are refused with TypeError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class Reward(Protocol):
    """A batched verifiable reward; `close()` releases worker processes, if any."""

    timeouts: int

    def rewards(self, texts: Sequence[str], answers: Sequence[str]) -> np.ndarray: ...

    def close(self) -> None: ...


def check_batch(texts: Sequence[str], answers: Sequence[str]) -> None:
    """Raise ValueError on a length mismatch and TypeError on a non-str text or answer."""
    if len(texts) != len(answers):
        raise ValueError(f"{len(texts)} texts but {len(answers)} answers")
    for value in (*texts, *answers):
        if not isinstance(value, str):
            raise TypeError(f"rewards take str, got {type(value).__name__}")


class InlineReward:
    """A reward from a cheap scorer `score(text, answer) -> float`, run in the calling thread.

    For scorers that do bounded string work only (no parser that can hang), so no deadline is
    needed and `timeouts` stays 0.
    """

    def __init__(self, score: Callable[[str, str], float]) -> None:
        self.score = score
        self.timeouts = 0

    def rewards(self, texts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        """r_i = score(texts[i], answers[i]); float64, shape [len(texts)]."""
        check_batch(texts, answers)
        return np.array([self.score(text, answer) for text, answer in zip(texts, answers, strict=True)])

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> InlineReward:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
