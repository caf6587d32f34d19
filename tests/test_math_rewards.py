"""The rewards by name (gdro.rewards): hand-checked tables for math_verify, dapo and gpqa, the
registry, the GPQA shuffle, and dapo against verl's own scorer on 450 recorded cases."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdro.data.benchmarks.registry import gpqa_option_order
from gdro.rewards import (
    REWARDS,
    MathVerifyReward,
    build_reward,
    dapo_score,
    extract_choice,
    gpqa_score,
    integer_match_reward,
    last_boxed_answer,
    normalize_final_answer,
)
from gdro.rewards.math_equivalence import as_integer

FUZZ = Path(__file__).parent / "fixtures" / "reward_fuzz"

MATH_VERIFY_CASES = [
    ("\\boxed{\\frac{1}{2}}", "0.5", 1),
    ("\\boxed{0.5}", "\\frac{1}{2}", 1),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", 1),
    ("\\boxed{\\frac12}", "1/2", 1),
    ("\\boxed{\\frac{3}{6}}", "\\frac{1}{2}", 1),
    ("\\boxed{1/3}", "0.5", -1),
    ("\\boxed{1,000}", "1000", 1),
    ("\\boxed{1000}", "1,000", 1),
    ("\\boxed{1,2}", "12", -1),  # a pair, not twelve
    ("\\boxed{007}", "7", 1),
    ("\\boxed{$5$}", "5", 1),
    ("\\boxed{\\$5}", "5", 1),
    ("\\boxed{3.0}", "3", 1),
    ("\\boxed{5}", "6", -1),
    ("\\boxed{-7}", "-7", 1),
    ("\\boxed{[1,2)}", "[1,2)", 1),
    ("\\boxed{(1,2]}", "[1,2)", -1),
    ("\\boxed{(-\\infty, 3]}", "(-\\infty,3]", 1),
    ("\\boxed{\\{1,2\\}}", "\\{2,1\\}", 1),
    ("\\boxed{(1,2)}", "(1,2)", 1),
    ("\\boxed{(2,1)}", "(1,2)", -1),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\sqrt{2}/2", 1),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1),
    ("\\boxed{\\frac{\\pi}{2}}", "\\pi/2", 1),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", 1),
    ("\\boxed{x+1}", "x+2", -1),
    ("\\boxed{x = 5}", "5", 1),
    ("\\boxed{10\\%}", "10\\%", 1),
    ("\\boxed{\\text{(B)}}", "B", 1),
    ("first \\boxed{3} then \\boxed{4}", "4", 1),
    ("first \\boxed{4} then \\boxed{3}", "4", -1),
    ("no box, the answer is 4", "4", -1),
    ("\\boxed 7", "7", 1),
    ("\\boxed{\\frac{1}{2}", "\\frac12", -1),  # never closed
]

DAPO_CASES = [
    ("Work... Answer: $\\boxed{5}$", "5", 1),
    ("Answer: 1,000", "1000", 1),
    ("Answer: 12,345,678", "12345678", 1),
    ("Answer: 1,000", "1,000", 1),
    ("Answer: -1,000", "-1000", -1),  # "-1000" is not isdigit(): the commas stay
    ("Answer: x = 5", "5", 1),
    ("The final result is \\boxed{5}", "5", -1),  # no "Answer:" line and no boxed fallback
    ("Answer: 5", "6", -1),
    ("answer: 5", "5", 1),
    ("Answer:\n5", "5", 1),
    ("Answer: 5 cm", "5", 1),
    ("Answer: $10$ dollars", "10", 1),
    ("Answer: 90^\\circ", "90", 1),
    ("Answer: \\frac12", "\\frac{1}{2}", 1),
    ("Answer: \\dfrac{1}{2}", "\\frac{1}{2}", -1),  # exact match after normalisation: no dfrac rule
    ("Answer: 0.5", "\\frac{1}{2}", -1),
    ("Answer: \\sqrt2", "\\sqrt{2}", 1),
    ("Answer: \\text{B}", "B", 1),
    ("Answer: 3\nAnswer: 4", "4", 1),
    ("Answer: 4\n" + "x" * 400, "4", -1),  # outside the last 300 characters
    ("Answer: 5.", "5", -1),
    ("Answer: $5$.", "5", 1),
]

GPQA_CASES = [
    ("\\boxed{C}", "C", 1),
    ("\\boxed{(C)}", "C", 1),
    ("\\boxed{\\textbf{(B)}}", "B", 1),
    ("Answer: B", "B", 1),
    ("The answer is (D).", "D", 1),
    ("The answer is (D).", "A", -1),
    ("The answer is: D", "D", 1),
    ("the answer is A.", "A", 1),
    ("**Answer:** A", "A", 1),
    ("The answer is $\\boxed{D}$", "D", 1),
    ("I think \\boxed{A} ... actually the answer is (B)", "B", 1),
    ("answer is (B) ... \\boxed{\\text{C}}", "C", 1),
    ("Answer: Because of symmetry", "B", -1),
    ("Answer: C2", "C", -1),
    ("answer: a", "A", -1),
    ("\\boxed{E}", "A", -1),
    ("no letter here", "A", -1),
]


@pytest.fixture(scope="module")
def math_verify():
    with MathVerifyReward(workers=2, deadline_s=10.0) as reward:
        yield reward


def test_math_verify_table(math_verify):
    texts, answers, expected = zip(*MATH_VERIFY_CASES, strict=True)
    scores = math_verify.rewards(list(texts), list(answers))
    wrong = [case for case, score in zip(MATH_VERIFY_CASES, scores, strict=True) if score != case[2]]
    assert wrong == []
    assert scores.dtype == np.float64 and scores.shape == (len(texts),)
    assert (math_verify.timeouts, math_verify.errors) == (0, 0)


def test_math_verify_integer_fast_path_needs_no_pool():
    reward = MathVerifyReward(workers=1)
    scores = reward.rewards(
        ["\\boxed{1,000}", "\\boxed{ 42 }", "\\boxed{41}", "none"], ["1000", "42", "42", "1"]
    )
    assert scores.tolist() == [1.0, 1.0, -1.0, -1.0]
    assert reward._pool is None  # broken variant rejected: sending integers through sympy
    reward.close()


def test_math_verify_empty_batch(math_verify):
    assert math_verify.rewards([], []).shape == (0,)


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("a \\boxed{1} b \\boxed{\\frac{1}{2}} c", "\\frac{1}{2}"),
        ("\\boxed{{a}{b{c}}}", "{a}{b{c}}"),
        ("\\boxed {5}", "5"),
        ("so \\boxed 12 apples", "12"),
        ("\\boxed{5}}}", "5"),
        ("\\boxedx", None),
        ("\\boxed{5", None),
        ("\\boxed", None),
        ("no box", None),
    ],
)
def test_last_boxed_answer(text, content):
    assert last_boxed_answer(text) == content


def test_last_boxed_answer_caps_the_content():
    assert last_boxed_answer("\\boxed{" + "1" * 1000 + "}") == "1" * 1000
    assert last_boxed_answer("\\boxed{" + "1" * 1001 + "}") is None
    assert last_boxed_answer("\\boxed " + "1" * 1001) is None
    assert last_boxed_answer("\\boxed{" + "1" * 20 + "}", max_chars=10) is None


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("1,000", 1000),
        ("$-5$", -5),
        (" 1 000 ", 1000),
        ("+07", 7),
        ("1,00", None),
        ("1,2", None),
        ("5.0", None),
    ],
)
def test_as_integer(answer, value):
    assert as_integer(answer) == value


def test_dapo_table():
    wrong = [case for case in DAPO_CASES if dapo_score(case[0], case[1]) != case[2]]
    assert wrong == []


def test_dapo_matches_verl_recorded_scores():
    """250 scores and 200 normalisations recorded from verl b178a3cd's math_dapo (make_dapo_cases.py)."""
    scores = [json.loads(line) for line in (FUZZ / "dapo_verl_scores.jsonl").read_text().splitlines()]
    assert sum(case["score"] > 0 for case in scores) > 50  # the table holds correct answers too
    assert [dapo_score(case["text"], case["answer"]) for case in scores] == [case["score"] for case in scores]
    normalized = [json.loads(line) for line in (FUZZ / "dapo_verl_normalize.jsonl").read_text().splitlines()]
    assert [normalize_final_answer(case["raw"]) for case in normalized] == [
        c["normalized"] for c in normalized
    ]


def test_gpqa_table():
    wrong = [case for case in GPQA_CASES if gpqa_score(case[0], case[1]) != case[2]]
    assert wrong == []
    assert extract_choice("no letter") is None


def test_gpqa_option_order_is_a_permutation_that_varies_by_question():
    order = gpqa_option_order("What is 2+2?")
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    assert gpqa_option_order("What is 2+2?").tolist() == order.tolist()
    orders = {tuple(gpqa_option_order(f"question {i}").tolist()) for i in range(40)}
    assert len(orders) > 10  # broken variant rejected: one order for every question


def test_gpqa_option_order_same_in_another_process():
    code = "from gdro.data.benchmarks.registry import gpqa_option_order; print(gpqa_option_order('q-17').tolist())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    output = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert output.stdout.strip() == str(gpqa_option_order("q-17").tolist())


def test_build_reward_by_name():
    assert sorted(REWARDS) == ["dapo", "gpqa", "integer_match", "math_verify"]
    texts, answers = ["\\boxed{12}", "\\boxed{13}", "Answer: 12"], ["12", "12", "12"]
    with build_reward("integer_match") as reward:
        expected = [integer_match_reward(text, answer) for text, answer in zip(texts, answers, strict=True)]
        assert reward.rewards(texts, answers).tolist() == expected
        assert reward.timeouts == 0
    with build_reward("dapo") as reward:
        assert reward.rewards(texts, answers).tolist() == [-1.0, -1.0, 1.0]
    with build_reward("gpqa") as reward:
        assert reward.rewards(["Answer: C"], ["C"]).tolist() == [1.0]
    with build_reward("math_verify", workers=1, deadline_s=3.0, max_answer_chars=50) as reward:
        assert (reward.workers, reward.deadline_s, reward.max_answer_chars) == (1, 3.0, 50)


def test_build_reward_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match=r"reward\.name='math'.*dapo.*gpqa.*integer_match.*math_verify"):
        build_reward("math")
    with pytest.raises(TypeError):
        build_reward("dapo", workers=2)


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_rewards_check_their_batch(name):
    with build_reward(name) as reward:
        with pytest.raises(ValueError, match="2 texts but 1 answers"):
            reward.rewards(["a", "b"], ["1"])
        with pytest.raises(TypeError, match="bytes"):
            reward.rewards([b"\\boxed{1}"], ["1"])


def test_math_verify_restarts_a_closed_pool(math_verify):
    assert math_verify.rewards(["\\boxed{0.5}"], ["1/2"]).tolist() == [1.0]
    math_verify._pool.close()
    assert math_verify.rewards(["\\boxed{0.5}"], ["1/2"]).tolist() == [1.0]
