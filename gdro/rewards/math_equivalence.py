"""The `math_verify` reward: math-verify equivalence of the last \\boxed{...} with the reference.

    r = +1 if verify(parse(gold), parse(last boxed content)) else -1

Steps, cheapest first:
1. Extraction, in the parent: the last `\\boxed` of the completion (found with `str.rfind`: well under a
   millisecond for a 1 MB completion). `\\boxed{...}` takes the brace-balanced content; the
   shorthand `\\boxed 5` takes the next whitespace-delimited token. No `\\boxed`, an unclosed brace,
   or content longer than `max_answer_chars` (default 1000; MATH-500's longest answer is 159
   characters) scores -1 without parsing: the brace scan and the parser only ever see that much.
2. Integer fast path, in the parent: when both sides, with whitespace and `$` removed, are integers
   ("-12", "007", or with thousands commas "1,000"), compare them as Python ints. Commas count only
   in groups of three, so "1,2" (a set or tuple) is not 12.
3. Otherwise math-verify in the pool (gdro.rewards.pool, hard per-item deadline): each side wrapped
   as `$...$` (math-verify's own `\\boxed{}` extraction misses `\\boxed{10\\%}`), `parse` with its
   default LaTeX + expression targets, then `verify(gold, prediction)`. math-verify's signal-based
   timeouts are off in the workers (they would cancel the pool's interval timer); the pool's soft
   and hard deadlines bound every item. Parsed gold answers are cached per worker.
Model text is never evaluated as code: only math-verify's parser (latex2sympy, sympy) reads it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from math_verify import parse, verify

from gdro.rewards.base import check_batch
from gdro.rewards.pool import ScoringPool
from gdro.rewards.registry import REWARDS

MAX_ANSWER_CHARS = 1000
_BOXED = "\\boxed"
_BRACE = re.compile(r"[{}]")
_OPENING = re.compile(r"\s*\{")
_INTEGER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)")
_NOT_IN_INTEGER = re.compile(r"[\s$]")


@lru_cache(maxsize=8)
def _shorthand(max_chars: int) -> re.Pattern[str]:
    """`\\boxed x`: whitespace, then a token of at most `max_chars` characters (none if longer)."""
    return re.compile(rf"\s+([^\s$]{{1,{max_chars}}})(?![^\s$])")


def last_boxed_answer(text: str, max_chars: int = MAX_ANSWER_CHARS) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\boxed x`) in `text`, or None (see step 1)."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    after = start + len(_BOXED)
    opening = _OPENING.match(text, after)
    if opening is None:
        shorthand = _shorthand(max_chars).match(text, after)
        return None if shorthand is None else shorthand.group(1)
    content_start = opening.end()
    depth = 1
    for brace in _BRACE.finditer(text, content_start, content_start + max_chars + 1):
        depth += 1 if brace.group() == "{" else -1
        if depth == 0:
            return text[content_start : brace.start()]
    return None


def as_integer(answer: str) -> int | None:
    """The integer `answer` spells after removing whitespace and `$`, or None (see step 2)."""
    compact = _NOT_IN_INTEGER.sub("", answer)
    if len(compact) > MAX_ANSWER_CHARS or _INTEGER.fullmatch(compact) is None:
        return None
    return int(compact.replace(",", ""))


def quiet_math_verify() -> None:
    """Worker initializer: silence math-verify's "timeout is disabled" warning and warm the parser."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    verify(
        parse("$\\frac{1}{2}$", parsing_timeout=None),
        parse("$0.5$", parsing_timeout=None),
        timeout_seconds=None,
    )


@lru_cache(maxsize=4096)
def _parse_gold(answer: str) -> list:
    return parse(f"${answer}$", parsing_timeout=None)


def math_verify_score(content: str, answer: str) -> float:
    """+1.0 if math-verify finds the boxed `content` equivalent to the reference `answer`, else -1.0.

    Runs inside a pool worker (no timeout of its own); `content` is already extracted and capped.
    """
    gold = _parse_gold(answer)
    prediction = parse(f"${content}$", parsing_timeout=None)
    if not gold or not prediction:
        return -1.0
    return 1.0 if verify(gold, prediction, timeout_seconds=None) else -1.0


@REWARDS.register("math_verify")
class MathVerifyReward:
    """The `math_verify` reward (module docstring) with `workers` scoring processes.

    The pool starts on the first item that needs math-verify. `timeouts` / `errors`: items of the
    last call cut by the deadline / whose scoring raised or killed its worker (all score -1).
    """

    def __init__(
        self, workers: int = 4, deadline_s: float = 5.0, max_answer_chars: int = MAX_ANSWER_CHARS
    ) -> None:
        self.workers = workers
        self.deadline_s = deadline_s
        self.max_answer_chars = max_answer_chars
        self.timeouts = 0
        self.errors = 0
        self._pool: ScoringPool | None = None

    def rewards(self, texts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        """r_i in {-1.0, +1.0}, float64, shape [len(texts)]."""
        check_batch(texts, answers)
        scores = np.full(len(texts), -1.0)
        hard_items: list[tuple[str, str]] = []
        hard_indices: list[int] = []
        for index, (text, answer) in enumerate(zip(texts, answers, strict=True)):
            content = last_boxed_answer(text, self.max_answer_chars)
            if content is None:
                continue
            predicted, reference = as_integer(content), as_integer(answer)
            if predicted is not None and reference is not None:
                scores[index] = 1.0 if predicted == reference else -1.0
            else:
                hard_items.append((content, answer))
                hard_indices.append(index)
        self.timeouts = self.errors = 0
        if hard_items:
            result = self._get_pool().score(hard_items)
            scores[hard_indices] = result.scores
            self.timeouts, self.errors = result.timeouts, result.errors
        return scores

    def _get_pool(self) -> ScoringPool:
        if self._pool is None or self._pool.closed:
            self._pool = ScoringPool(
                math_verify_score,
                workers=self.workers,
                deadline_s=self.deadline_s,
                initializer=quiet_math_verify,
                preload=(__name__,),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (a later call starts new ones)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> MathVerifyReward:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
