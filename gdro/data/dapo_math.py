"""DAPO-Math training prompts (docs/algorithm.md §6 and §7): load, validate, template, length-filter.

Source: open-r1/DAPO-Math-17k-Processed, config "en", split "train" (14,116 rows). Its columns:
`prompt` (the problem text), `solution` (the final answer only), `data_source`, `source_prompt`
(the original DAPO chat turn, list of {content, role}), `ability`, `reward_model`
{ground_truth, style}, `extra_info` {index}. Only `prompt` and `solution` are read.

Preparation, in this order, deterministic for a given dataset, tokenizer and config:
1. Bad values: a missing (None) or non-string problem or answer, or an empty one (only whitespace).
2. DAPO's own instruction wrapper ("Solve the following math problem step by step. The last line
   ... Answer: $Answer ..." + problem + "Remember to put your answer on its own line after
   "Answer:".") is removed when a problem carries it, so the prompt holds one instruction, ours
   (counted as `unwrapped`). Then a problem equal to one kept before is a duplicate (the first
   copy is kept). For the rows of steps 1-2, `on_bad_row="skip"` drops them and counts each
   reason; "error" raises on the first, naming its row index.
3. `render_prompt` with the configured template (the one that benchmarks use too).
4. Prompts of more than `max_prompt_tokens` tokens are dropped (counted as `too_long`).
The prompt id is the row index after all of this: prompts[i] is prompt i of the classifier.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import datasets
from transformers import PreTrainedTokenizerBase

from gdro.data.prompt_template import TEMPLATES, render_prompt
from gdro.data.sources import load_split

log = logging.getLogger(__name__)

BAD_ROW_POLICIES = ("skip", "error")
FINGERPRINT_CHARS = 16
DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the "
    "form Answer: $Answer (without quotes) where $Answer is the answer to the problem."
)
DAPO_SUFFIX = 'Remember to put your answer on its own line after "Answer:".'


@dataclass
class DapoMathConfig:
    """Where the DAPO-Math rows come from and how they become prompts.

    path: hub id, local folder in the hub layout, or a .parquet/.json/.jsonl file
        (see `gdro.data.sources`). config_name: the hub config (None for a file). split: the split read.
    prompt_column / answer_column: the problem text and the final answer.
    template: "base" or "chat" (`gdro.data.prompt_template`).
    max_prompt_tokens: longer templated prompts are dropped (the paper's 3200).
    on_bad_row: "skip" (count by reason) or "error" (raise on the first).
    """

    path: str = "open-r1/DAPO-Math-17k-Processed"
    """Hub id, a local folder in the hub layout, or a .parquet/.json/.jsonl file (gdro.data.sources)."""
    config_name: str | None = "en"
    """The hub config; null for a file."""
    split: str = "train"
    """The split read."""
    prompt_column: str = "prompt"
    """Column of the problem text."""
    answer_column: str = "solution"
    """Column of the final answer."""
    template: Literal["base", "chat"] = "base"
    """Prompt template: base (plain text) or chat (gdro.data.prompt_template)."""
    max_prompt_tokens: int = 3200
    """Longer templated prompts are dropped (the paper's 3200), in tokens."""
    on_bad_row: Literal["skip", "error"] = "skip"
    """A malformed row is skipped (counted by reason) or raises."""

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise ValueError(f"dataset.template must be one of {TEMPLATES}, got {self.template!r}")
        if self.on_bad_row not in BAD_ROW_POLICIES:
            raise ValueError(f"dataset.on_bad_row must be one of {BAD_ROW_POLICIES}, got {self.on_bad_row!r}")
        if self.max_prompt_tokens < 1:
            raise ValueError(f"dataset.max_prompt_tokens must be >= 1, got {self.max_prompt_tokens}")


@dataclass(frozen=True)
class PromptSet:
    """Prepared training prompts; index i of every list is prompt id i.

    prompts: templated prompt texts. answers: final answers (stripped). source_rows: the row index
    of each prompt in the loaded split. num_rows: rows read. too_long: rows dropped by the length
    filter. bad_rows: rows skipped, by reason. unwrapped: problems stripped of DAPO's instruction.
    fingerprint: `prompt_fingerprint(prompts, answers)`, stored in checkpoints.
    """

    prompts: list[str]
    answers: list[str]
    source_rows: list[int]
    num_rows: int
    too_long: int
    bad_rows: dict[str, int]
    unwrapped: int
    fingerprint: str

    def __len__(self) -> int:
        return len(self.prompts)


def load_dapo_math(config: DapoMathConfig, tokenizer: PreTrainedTokenizerBase) -> PromptSet:
    """Read the configured split (`gdro.data.sources.load_split`) and `prepare_prompts` it."""
    rows = load_split(config.path, config.config_name, config.split)
    prompt_set = prepare_prompts(rows, config, tokenizer)
    bad = ", ".join(f"{reason}={count}" for reason, count in sorted(prompt_set.bad_rows.items()))
    log.info(
        "DAPO-Math %s: %d rows -> %d prompts; too long (> %d tokens): %d; bad rows skipped: %s; "
        "DAPO instruction removed: %d; fingerprint %s",
        config.path,
        prompt_set.num_rows,
        len(prompt_set),
        config.max_prompt_tokens,
        prompt_set.too_long,
        bad or "none",
        prompt_set.unwrapped,
        prompt_set.fingerprint,
    )
    return prompt_set


def prepare_prompts(
    rows: datasets.Dataset, config: DapoMathConfig, tokenizer: PreTrainedTokenizerBase
) -> PromptSet:
    """Steps 1-4 of the module docstring on `rows`; see `PromptSet` for what comes back."""
    for column in (config.prompt_column, config.answer_column):
        if column not in rows.column_names:
            raise ValueError(f"column {column!r} not in the dataset; its columns: {rows.column_names}")
    problems, answers, source_rows = [], [], []
    bad_rows: Counter[str] = Counter()
    seen: set[str] = set()
    unwrapped = 0
    for index, (problem, answer) in enumerate(
        zip(rows[config.prompt_column], rows[config.answer_column], strict=True)
    ):
        reason = bad_value_reason(problem, answer)
        if reason is None:
            problem, was_wrapped = strip_dapo_instruction(problem.strip())
            if problem in seen:
                reason = "duplicate_problem"
        if reason is not None:
            if config.on_bad_row == "error":
                raise ValueError(
                    f"bad row {index} of {config.path}: {reason} "
                    "(on_bad_row='error'; 'skip' drops such rows and counts them)"
                )
            bad_rows[reason] += 1
            continue
        seen.add(problem)
        unwrapped += was_wrapped
        problems.append(problem)
        answers.append(answer.strip())
        source_rows.append(index)

    prompts = [render_prompt(problem, config.template, tokenizer) for problem in problems]
    lengths = []
    if prompts:  # fast tokenizers raise on an empty batch
        lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    keep = [i for i, length in enumerate(lengths) if length <= config.max_prompt_tokens]
    prompts = [prompts[i] for i in keep]
    answers = [answers[i] for i in keep]
    return PromptSet(
        prompts=prompts,
        answers=answers,
        source_rows=[source_rows[i] for i in keep],
        num_rows=rows.num_rows,
        too_long=len(lengths) - len(keep),
        bad_rows=dict(bad_rows),
        unwrapped=unwrapped,
        fingerprint=prompt_fingerprint(prompts, answers),
    )


def bad_value_reason(problem: object, answer: object) -> str | None:
    """Why a row's problem or answer value is unusable, or None.

    Reasons: missing_problem / missing_answer (None), non_string_problem / non_string_answer,
    empty_problem / empty_answer (only whitespace). Duplicates are found by the caller.
    """
    for role, value in (("problem", problem), ("answer", answer)):
        if value is None:
            return f"missing_{role}"
        if not isinstance(value, str):
            return f"non_string_{role}"
        if not value.strip():
            return f"empty_{role}"
    return None


def strip_dapo_instruction(problem: str) -> tuple[str, bool]:
    """(problem without DAPO's prefix and suffix, True) when it has both; else (problem, False).

    `problem` is already stripped; so is the result.
    """
    if problem.startswith(DAPO_PREFIX) and problem.endswith(DAPO_SUFFIX):
        inner = problem[len(DAPO_PREFIX) : -len(DAPO_SUFFIX)].strip()
        if inner:
            return inner, True
    return problem, False


def prompt_fingerprint(prompts: list[str], answers: list[str]) -> str:
    """sha256 over the ordered (prompt, answer) pairs, hex, first 16 characters.

    Each pair is hashed as its JSON encoding plus a newline, so no two different lists collide by
    concatenation. It changes with the data, the template, the filter and the order.
    """
    digest = hashlib.sha256()
    for prompt, answer in zip(prompts, answers, strict=True):
        digest.update(json.dumps([prompt, answer], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:FINGERPRINT_CHARS]
