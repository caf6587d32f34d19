"""The embedded chain task: format, determinism, disjoint splits, level balance."""

import numpy as np
import pytest

from gdro.data.synthetic import (
    ALPHABET,
    ChainProblem,
    SyntheticTaskConfig,
    build_synthetic_splits,
    careless_values,
    carries,
    draw_unique_problems,
    format_worked_solution,
    level_probabilities,
    parse_prompt,
    solution_completion,
)
from gdro.rewards import integer_match_reward

SMALL = SyntheticTaskConfig(seed=3, num_train=600, num_eval_per_level=8)


def test_problem_format_and_arithmetic():
    problem = ChainProblem(47, (3, -9, 5), slots=5)
    assert problem.prompt == "47+3-9+5....="
    assert problem.completion == "504146\\boxed{46}"
    assert problem.answer == "46"
    assert parse_prompt(problem.prompt) == problem
    assert ChainProblem(98, (5,), slots=1).values == [3]
    assert ChainProblem(2, (-7,), slots=1).completion == "95\\boxed{95}"
    assert format_worked_solution([50, 41, 46]) == problem.completion


def test_carries_marks_additions_into_the_tens_digit_only():
    assert carries(47, 5) and carries(97, 5) and carries(1, 9)
    assert not carries(47, 2) and not carries(43, -5) and not carries(3, -5) and not carries(0, 9)


class _AlwaysSlips:
    """An rng whose every draw is below any positive slip rate."""

    def random(self) -> float:
        return 0.0


def test_careless_values_forget_the_carry_and_continue_from_the_written_value():
    # 47 +5 -> 52 (carry forgotten: 42), 42 -5 -> 37 (a borrow: always right), 37 +4 -> 41 (forgotten: 31).
    problem = ChainProblem(47, (5, -5, 4), slots=3)
    assert problem.values == [52, 47, 51]
    assert careless_values(problem, _AlwaysSlips(), 0.5) == [42, 37, 31]
    assert careless_values(ChainProblem(97, (5,), slots=1), _AlwaysSlips(), 0.5) == [92]
    assert careless_values(ChainProblem(3, (-5,), slots=1), _AlwaysSlips(), 0.5) == [98]


def test_careless_values_at_rate_zero_are_correct_and_draw_nothing():
    rng = np.random.default_rng(0)
    problems = [ChainProblem(int(s), (9, -9, 4, -7), slots=4) for s in range(100)]
    assert all(careless_values(p, rng, 0.0) == p.values for p in problems)
    assert rng.random() == np.random.default_rng(0).random()


def test_careless_values_slip_at_the_configured_rate_on_carries_only():
    rng = np.random.default_rng(1)
    slipped = carrying = 0
    for _ in range(4000):
        problem = ChainProblem(
            int(rng.integers(100)), (int(rng.integers(1, 10)) * int(rng.choice([-1, 1])),), 1
        )
        written = careless_values(problem, rng, 0.6)[0]
        if carries(problem.start, problem.deltas[0]):
            carrying += 1
            slipped += written == (problem.values[0] - 10) % 100
        else:
            assert written == problem.values[0]
    assert carrying > 700
    assert slipped / carrying == pytest.approx(0.6, abs=0.05)


def test_splits_columns_sizes_and_levels():
    train, evaluation = build_synthetic_splits(SMALL)
    for split in (train, evaluation):
        assert split.column_names == ["prompt_id", "prompt", "answer", "level"]
        assert split["prompt_id"] == list(range(len(split)))
    assert len(train) == SMALL.num_train
    levels = len(SMALL.level_steps)
    assert np.bincount(evaluation["level"], minlength=levels).tolist() == [SMALL.num_eval_per_level] * levels
    train_counts = np.bincount(train["level"], minlength=levels)
    expected = SMALL.num_train * level_probabilities(levels, SMALL.level_mix_power)
    assert np.all(np.abs(train_counts - expected) <= 1)
    assert train_counts[0] > train_counts[-1] > 0


def test_splits_are_disjoint_unique_and_consistent():
    train, evaluation = build_synthetic_splits(SMALL)
    assert len(set(train["prompt"])) == len(train)
    assert len(set(evaluation["prompt"])) == len(evaluation)
    assert not set(train["prompt"]) & set(evaluation["prompt"])
    for split in (train, evaluation):
        for row in split.select(range(0, len(split), 37)):
            problem = parse_prompt(row["prompt"])
            assert len(problem.deltas) == SMALL.level_steps[row["level"]]
            assert problem.answer == row["answer"]
            completion = solution_completion(row["prompt"])
            assert integer_match_reward(completion, row["answer"]) == 1.0
            assert set(row["prompt"] + completion) <= set(ALPHABET)
            assert len(row["prompt"]) == 3 + 2 * SMALL.slots


def test_splits_are_deterministic_and_eval_ignores_train_size():
    train_a, eval_a = build_synthetic_splits(SMALL)
    train_b, eval_b = build_synthetic_splits(SMALL)
    assert train_a["prompt"] == train_b["prompt"] and eval_a["prompt"] == eval_b["prompt"]
    _, eval_bigger = build_synthetic_splits(SyntheticTaskConfig(seed=3, num_train=900, num_eval_per_level=8))
    assert eval_bigger["prompt"] == eval_a["prompt"]
    train_other, _ = build_synthetic_splits(SyntheticTaskConfig(seed=4, num_train=600, num_eval_per_level=8))
    assert train_other["prompt"] != train_a["prompt"]


def test_small_level_can_be_exhausted_but_not_exceeded():
    rng = np.random.default_rng(0)
    every_problem = draw_unique_problems(rng, 1, 3, 1800)
    assert len({p.prompt for p in every_problem}) == 1800
    with pytest.raises(ValueError):
        draw_unique_problems(rng, 1, 3, 1800, exclude={every_problem[0].prompt})


def test_level_probabilities_floor():
    probs = level_probabilities(6, 2.0, floor=0.05)
    assert probs.sum() == pytest.approx(1.0)
    assert np.all(np.diff(probs) <= 0) and probs.min() >= 0.04
