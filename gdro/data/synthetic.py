"""The embedded verifiable task: chains of modular additions with a boxed final answer.

A problem starts at a two-digit value and applies L steps of "+d" or "-d" (d in 1..9), mod 100.
Every prompt has the same number of operator slots (the longest chain of the task); unused slots
hold "..". With 5 slots:

    prompt      "47+3-9+5....="
    completion  "504146\\boxed{46}"

The completion writes every intermediate value as two digits (50, 41, 46), then the last one inside
\\boxed{}, so the reward is `gdro.rewards.integer_match_reward`. Why this layout: operators and
values are both 2 characters wide and the prompt length is fixed, so value k always sits at the same
distance from operator k, for every k and every L (a fixed-offset attention pattern that a 2-layer
model learns in a few hundred steps). With "47+3-9+5=" and "50,41,46" that distance depends on L
and k, and a tiny model warm-started for a few hundred steps learned the first step only (measured:
step-2 accuracy about 0.1). Difficulty level l has L = level_steps[l] steps; longer chains are harder
because per-step errors compound. `careless_values` writes the solution the way a demonstrator who
forgets carries would (the warm start's targets). Everything here is a pure function of a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np

ALPHABET = "0123456789+-=.\\boxed{}"
"""Every character a prompt or completion may contain (22 characters)."""

MODULUS = 100
DIGITS_PER_VALUE = 2
STEP_CHOICES = 18  # "+1".."+9" and "-1".."-9"
EMPTY_SLOT = ".."
ENUMERATE_LIMIT = 1_000_000  # levels with at most this many distinct problems are drawn by permutation


@dataclass(frozen=True)
class ChainProblem:
    """`start` in [0, 100), signed `deltas` in {-9..-1, 1..9}, and `slots` >= len(deltas) operator
    slots in the prompt (the unused ones hold EMPTY_SLOT)."""

    start: int
    deltas: tuple[int, ...]
    slots: int

    @property
    def prompt(self) -> str:
        ops = "".join(f"{'+' if d > 0 else '-'}{abs(d)}" for d in self.deltas)
        empty = EMPTY_SLOT * (self.slots - len(self.deltas))
        return f"{self.start:0{DIGITS_PER_VALUE}d}{ops}{empty}="

    @property
    def values(self) -> list[int]:
        """The intermediate values after each step; the last one is the answer."""
        values, value = [], self.start
        for delta in self.deltas:
            value = (value + delta) % MODULUS
            values.append(value)
        return values

    @property
    def answer(self) -> str:
        return f"{self.values[-1]:0{DIGITS_PER_VALUE}d}"

    @property
    def completion(self) -> str:
        """The correct worked solution (without the end-of-sequence token)."""
        return format_worked_solution(self.values)


def format_worked_solution(values: Sequence[int]) -> str:
    """Every value as two digits, then the last one inside \\boxed{}: [50, 41, 46] -> "504146\\boxed{46}"."""
    worked = "".join(f"{v:0{DIGITS_PER_VALUE}d}" for v in values)
    return f"{worked}\\boxed{{{values[-1]:0{DIGITS_PER_VALUE}d}}}"


def carries(value: int, delta: int) -> bool:
    """Whether the addition value + delta (delta > 0) carries into the tens digit (47+5, 97+5)."""
    return delta > 0 and value % 10 + delta >= 10


def careless_values(problem: ChainProblem, rng: np.random.Generator, slip_rate: float) -> list[int]:
    """The values a careless demonstrator writes: at each addition that carries it forgets the carry
    with probability `slip_rate`, keeping the old tens digit (47+5 -> 42, 97+5 -> 92), and goes on
    from the value it wrote, so after a slip the boxed answer is wrong. Subtractions are always
    right: every slip is -10, slips never cancel, and a longer chain is strictly harder.

    One `rng.random()` is drawn per carrying addition, none when slip_rate is 0 (then the values
    are `problem.values` and the stream is untouched).
    """
    if slip_rate == 0.0:
        return problem.values
    values, value = [], problem.start
    for delta in problem.deltas:
        written = (value + delta) % MODULUS
        if carries(value, delta) and rng.random() < slip_rate:
            written = value // 10 * 10 + written % 10
        values.append(written)
        value = written
    return values


def parse_prompt(prompt: str) -> ChainProblem:
    """Inverse of `ChainProblem.prompt`."""
    if not prompt.endswith("="):
        raise ValueError(f"not a chain prompt: {prompt!r}")
    start = int(prompt[:DIGITS_PER_VALUE])
    ops = prompt[DIGITS_PER_VALUE:-1]
    slots = [ops[i : i + 2] for i in range(0, len(ops), 2)]
    deltas = tuple(int(op[1]) * (1 if op[0] == "+" else -1) for op in slots if op != EMPTY_SLOT)
    return ChainProblem(start, deltas, len(slots))


def solution_completion(prompt: str) -> str:
    """The supervised target for `prompt` (SFT text for the warm start is prompt + this + <eos>)."""
    return parse_prompt(prompt).completion


def level_probabilities(num_levels: int, power: float, floor: float = 0.0) -> np.ndarray:
    """Level mix p(l) proportional to 1 / (l + 1)^power, each raised to at least `floor`, renormalised.

    Returns [num_levels] float64 summing to 1.
    """
    weights = 1.0 / np.arange(1, num_levels + 1, dtype=np.float64) ** power
    probs = np.maximum(weights / weights.sum(), floor)
    return probs / probs.sum()


def _problem_from_index(index: int, steps: int, slots: int) -> ChainProblem:
    start, index = index % MODULUS, index // MODULUS
    deltas = []
    for _ in range(steps):
        code, index = index % STEP_CHOICES, index // STEP_CHOICES
        deltas.append(code % 9 + 1 if code < 9 else -(code % 9 + 1))
    return ChainProblem(start, tuple(deltas), slots)


def random_problem(rng: np.random.Generator, steps: int, slots: int) -> ChainProblem:
    """A uniformly random problem with `steps` steps in a prompt of `slots` operator slots."""
    start = int(rng.integers(MODULUS))
    magnitudes = rng.integers(1, 10, size=steps)
    signs = np.where(rng.random(steps) < 0.5, -1, 1)
    return ChainProblem(start, tuple(int(d) for d in signs * magnitudes), slots)


def draw_unique_problems(
    rng: np.random.Generator,
    steps: int,
    slots: int,
    count: int,
    exclude: frozenset[str] | set[str] = frozenset(),
) -> list[ChainProblem]:
    """`count` distinct problems with `steps` steps and `slots` slots, no prompt in `exclude`.

    Small levels (at most `ENUMERATE_LIMIT` problems) are drawn from a permutation of all problems,
    so they can be exhausted exactly; larger ones by rejection sampling.
    """
    space = MODULUS * STEP_CHOICES**steps
    problems: list[ChainProblem] = []
    if space <= ENUMERATE_LIMIT:
        for index in rng.permutation(space):
            problem = _problem_from_index(int(index), steps, slots)
            if problem.prompt not in exclude:
                problems.append(problem)
                if len(problems) == count:
                    return problems
        raise ValueError(f"only {len(problems)} problems with {steps} steps are available, {count} requested")
    seen = set(exclude)
    while len(problems) < count:
        problem = random_problem(rng, steps, slots)
        if problem.prompt not in seen:
            seen.add(problem.prompt)
            problems.append(problem)
    return problems


@dataclass
class SyntheticTaskConfig:
    """The chain task's splits.

    level_steps: chain length L of each difficulty level (level 0 easiest).
    level_mix_power: the train split holds levels in proportion to 1 / (level + 1)^power.
    """

    seed: int = 0
    """Seed of the generated problems."""
    num_train: int = 1024
    """N, training prompts (1024: 16 steps per epoch at M = 64)."""
    num_eval_per_level: int = 64
    """Held-out prompts per level (a per-level mean@8 has standard error at most about 0.06)."""
    level_steps: tuple[int, ...] = (1, 2, 3, 5, 8, 12)
    """Chain length L (operations) of each difficulty level, level 0 easiest."""
    level_mix_power: float = 1.0
    """The training split holds level l in proportion to 1 / (l + 1)^level_mix_power."""

    @property
    def slots(self) -> int:
        """Operator slots in every prompt: the longest chain, so all prompts have the same length."""
        return max(self.level_steps)


def _largest_remainder(total: int, probs: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total`, as close as possible to total * probs."""
    exact = total * probs
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def _to_dataset(problems: Sequence[ChainProblem], levels: Sequence[int]) -> datasets.Dataset:
    return datasets.Dataset.from_dict(
        {
            "prompt_id": list(range(len(problems))),
            "prompt": [p.prompt for p in problems],
            "answer": [p.answer for p in problems],
            "level": [int(level) for level in levels],
        }
    )


def _eval_problems(config: SyntheticTaskConfig) -> tuple[list[ChainProblem], list[int]]:
    problems, levels = [], []
    for level, steps in enumerate(config.level_steps):
        rng = np.random.default_rng([config.seed, 0, level])
        problems += draw_unique_problems(rng, steps, config.slots, config.num_eval_per_level)
        levels += [level] * config.num_eval_per_level
    return problems, levels


def eval_prompts(config: SyntheticTaskConfig) -> set[str]:
    """The prompts of the eval split (what every training source must avoid)."""
    return {p.prompt for p in _eval_problems(config)[0]}


def build_synthetic_splits(config: SyntheticTaskConfig) -> tuple[datasets.Dataset, datasets.Dataset]:
    """(train, eval) datasets with columns prompt_id (= row index), prompt, answer, level.

    The eval split holds `num_eval_per_level` prompts of every level (depends only on the seed and
    `level_steps`); the train split holds `num_train` prompts with levels in proportion to
    1 / (level + 1)^level_mix_power, shuffled. All prompts are distinct; no prompt is in both.
    """
    eval_problems, eval_levels = _eval_problems(config)
    excluded = {p.prompt for p in eval_problems}

    probs = level_probabilities(len(config.level_steps), config.level_mix_power)
    train_problems, train_levels = [], []
    for level, (steps, count) in enumerate(
        zip(config.level_steps, _largest_remainder(config.num_train, probs), strict=True)
    ):
        rng = np.random.default_rng([config.seed, 1, level])
        train_problems += draw_unique_problems(rng, steps, config.slots, int(count), excluded)
        train_levels += [level] * int(count)
    order = np.random.default_rng([config.seed, 2]).permutation(len(train_problems))
    train = _to_dataset([train_problems[i] for i in order], [train_levels[i] for i in order])
    return train, _to_dataset(eval_problems, eval_levels)
