"""The seven evaluation benchmarks of docs/algorithm.md §6: where each lives and how a row becomes a problem.

Hub ids, configs, splits and columns as in docs/scaling.md ("Datasets"):

| name | hub id (config), split | question | answer |
|---|---|---|---|
| math500 | HuggingFaceH4/MATH-500, test | problem | answer (str) |
| aime24 | HuggingFaceH4/aime_2024, train | problem | answer (str) |
| aime25 | MathArena/aime_2025, train | problem | answer (int -> str) |
| amc23 | math-ai/amc23, test | question | answer (number -> str, "27" not "27.0") |
| minerva | math-ai/minervamath, test | question | answer (str) |
| olympiadbench | math-ai/olympiadbench, test | question | final_answer (list -> first element) |
| gpqa_diamond | Idavidrein/gpqa (gpqa_diamond), train | Question + 4 options | the correct option's letter |

An adapter maps one row to (problem text, answer string), both stripped; it raises ValueError on a
value of the wrong type or an empty one. GPQA's options (Correct Answer, Incorrect Answer 1-3) are
shuffled by `gpqa_option_order`, a permutation seeded from the question text alone, so every
process and every run shows the same order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Row = Mapping[str, Any]
Adapter = Callable[[Row], tuple[str, str]]
GPQA_LETTERS = "ABCD"
SCORERS = ("math", "gpqa")


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark: `name` (metric key), hub `path`, `config` name, `split`, the row `adapter`, and
    the `scorer` that grades a completion against the answer ("math": boxed expression;
    "gpqa": boxed option letter)."""

    name: str
    path: str
    config: str | None
    split: str
    adapter: Adapter
    scorer: str

    def __post_init__(self) -> None:
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {SCORERS}, got {self.scorer!r}")


def text_value(value: object, column: str) -> str:
    """A non-empty string value, stripped."""
    if not isinstance(value, str):
        raise ValueError(f"column {column!r} holds {type(value).__name__}, expected str")
    if not value.strip():
        raise ValueError(f"column {column!r} is empty")
    return value.strip()


def number_text(value: object, column: str) -> str:
    """An int or float as the answer string: 27 -> "27", 27.0 -> "27", 0.5 -> "0.5"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"column {column!r} holds {type(value).__name__}, expected a number")
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"column {column!r} holds {value}")
        if value.is_integer():
            return str(int(value))
        return repr(value)
    return str(value)


def first_text(value: object, column: str) -> str:
    """The first element of a list value, as `text_value`."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"column {column!r} holds {value!r}, expected a non-empty list")
    return text_value(value[0], f"{column}[0]")


def columns_adapter(question: str, answer: str, to_answer: Callable[[object, str], str]) -> Adapter:
    """An adapter that reads `question` as text and `answer` through `to_answer`."""

    def adapt(row: Row) -> tuple[str, str]:
        return text_value(row[question], question), to_answer(row[answer], answer)

    return adapt


def gpqa_option_order(question: str) -> np.ndarray:
    """The display order of GPQA's options [correct, incorrect 1, 2, 3]: a permutation of 0..3.

    Seeded by numpy's SeedSequence from the CRC-32 of the question's UTF-8 bytes (never Python's
    salted hash()), so it is the same in every process and differs between questions.
    """
    seed = zlib.crc32(question.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence(seed)).permutation(len(GPQA_LETTERS))


def gpqa_adapter(row: Row) -> tuple[str, str]:
    """The question followed by the shuffled options, one per line as "A) ...", and the correct letter."""
    question = text_value(row["Question"], "Question")
    columns = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
    options = [text_value(row[column], column) for column in columns]
    order = gpqa_option_order(question)
    lines = [f"{letter}) {options[i]}" for letter, i in zip(GPQA_LETTERS, order, strict=True)]
    correct_letter = GPQA_LETTERS[int(np.flatnonzero(order == 0)[0])]
    return question + "\n\n" + "\n".join(lines), correct_letter


def math_benchmark(
    name: str, path: str, split: str, question: str, answer: str, to_answer: Callable[[object, str], str]
) -> BenchmarkSpec:
    """A benchmark with no config name, read by `columns_adapter`, graded by the "math" scorer."""
    return BenchmarkSpec(name, path, None, split, columns_adapter(question, answer, to_answer), "math")


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        math_benchmark("math500", "HuggingFaceH4/MATH-500", "test", "problem", "answer", text_value),
        math_benchmark("aime24", "HuggingFaceH4/aime_2024", "train", "problem", "answer", text_value),
        math_benchmark("aime25", "MathArena/aime_2025", "train", "problem", "answer", number_text),
        math_benchmark("amc23", "math-ai/amc23", "test", "question", "answer", number_text),
        math_benchmark("minerva", "math-ai/minervamath", "test", "question", "answer", text_value),
        math_benchmark(
            "olympiadbench", "math-ai/olympiadbench", "test", "question", "final_answer", first_text
        ),
        BenchmarkSpec("gpqa_diamond", "Idavidrein/gpqa", "gpqa_diamond", "train", gpqa_adapter, "gpqa"),
    )
}
"""Every benchmark of docs/algorithm.md §6 by name, in report order."""
