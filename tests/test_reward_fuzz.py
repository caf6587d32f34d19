"""Hostile model output: every reward returns -1 or a correct score, within its deadline, never hangs.

A fixed corpus (fixtures/reward_fuzz/hostile_math.jsonl: power towers, factorial and product bombs,
deep \\frac/\\sqrt/paren nesting, code, control characters; "expected" null where either score is
defensible), generated giants (1 MB outputs, 10k nested braces, invalid UTF-8 decoded both ways),
and hypothesis over random unicode and random LaTeX-ish fragments.
"""

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdro.rewards import REWARDS, MathVerifyReward, build_reward, math_verify_score

CORPUS = Path(__file__).parent / "fixtures" / "reward_fuzz" / "hostile_math.jsonl"
WORKERS = 2
DEADLINE_S = 1.0
START_SLACK_S = 10.0  # pool start-up and worker replacement on two busy cores
INLINE_LIMIT_S = 1.0  # per batch, for the rewards that run inline
MEGABYTE = 1 << 20
FRAGMENTS = [
    "\\frac{", "\\dfrac", "\\sqrt{", "\\sqrt[3]{", "{", "}", "}{", "^{", "_{", "(", ")", "[", "]", "\\{",
    "\\}", "1", "9", "10", "0.5", "-", "+", "*", "/", "=", ",", "x", "y", "\\pi", "e", "i", "\\infty",
    "\\cdot", "\\times", "!", "\\%", "$", "\\$", "\\text{", "\\left(", "\\right)", "\\begin{pmatrix}",
    "\\end{pmatrix}", "&", "\\\\", "\\sum_{n=1}^{", "\\int", "\\lim", "\\log", "\\sin", "\\binom{", " ",
    "\\boxed{", "\u0000", "\udcff", "\ufffd",
]  # fmt: skip
HYPOTHESIS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def max_pool_seconds(items):
    """Upper bound for a pool call: each worker runs its share of items to the deadline at worst."""
    return math.ceil(items / WORKERS) * DEADLINE_S + START_SLACK_S


@pytest.fixture(scope="module")
def math_verify():
    with MathVerifyReward(workers=WORKERS, deadline_s=DEADLINE_S) as reward:
        yield reward


def timed_rewards(reward, texts, answers):
    start = time.monotonic()
    scores = reward.rewards(texts, answers)
    elapsed = time.monotonic() - start
    assert set(scores.tolist()) <= {-1.0, 1.0}
    assert scores.shape == (len(texts),)
    return scores, elapsed


def test_fixed_corpus_scores_within_the_deadline(math_verify):
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    scores, elapsed = timed_rewards(math_verify, [r["text"] for r in rows], [r["answer"] for r in rows])
    wrong = [(r["name"], s) for r, s in zip(rows, scores, strict=True) if r["expected"] not in (None, s)]
    assert wrong == []
    assert elapsed < max_pool_seconds(len(rows))
    assert math_verify.timeouts >= 5  # the towers and bombs are really cut, not answered


def giant_texts():
    """(name, text, answer, expected score or None) for outputs too big for a hand-written corpus."""
    filler = "reasoning step. " * (MEGABYTE // 16)
    invalid = (b"\xff\xfe\xc3\x28 bad bytes \xed\xa0\x80 " * 1000) + b"so \\boxed{42}"
    return [
        ("1 MB then the answer", filler + "\\boxed{42}", "42", 1.0),
        ("1 MB then a fraction", filler + "\\boxed{\\frac{84}{2}}", "42", 1.0),
        ("1 MB, no answer", filler, "42", -1.0),
        ("1 MB of boxed openers", "\\boxed{" * (MEGABYTE // 7), "42", -1.0),
        ("1 MB of closing braces", "\\boxed{42" + "}" * MEGABYTE, "42", 1.0),
        ("10k nested braces", "\\boxed{" + "{" * 10_000 + "42" + "}" * 10_000 + "}", "42", -1.0),
        ("10k nested braces, then answer", "{" * 10_000 + "42" + "}" * 10_000 + "\\boxed{42}", "42", 1.0),
        ("10k-deep frac bomb", "\\boxed{" + "\\frac{" * 10_000 + "1}{2}" * 10_000 + "}", "42", -1.0),
        ("80-deep frac bomb", "\\boxed{" + "\\frac{1}{" * 80 + "2" + "}" * 80 + "}", "42", -1.0),
        ("1 MB of null bytes", "\u0000" * MEGABYTE + "\\boxed{42}", "42", 1.0),
        ("invalid UTF-8, replace", invalid.decode("utf-8", errors="replace"), "42", 1.0),
        ("invalid UTF-8, surrogateescape", invalid.decode("utf-8", errors="surrogateescape"), "42", 1.0),
        ("surrogates in the answer", "\\boxed{4\udcff2}", "\\frac{84}{2}", None),
        ("replacement chars in the answer", "\\boxed{4\ufffd2}", "\\frac{84}{2}", None),
        ("huge integer", "\\boxed{" + "9" * 999 + "}", "1", -1.0),
    ]


def test_giant_outputs(math_verify):
    cases = giant_texts()
    scores, elapsed = timed_rewards(math_verify, [c[1] for c in cases], [c[2] for c in cases])
    wrong = [(c[0], s) for c, s in zip(cases, scores, strict=True) if c[3] not in (None, s)]
    assert wrong == []
    assert elapsed < max_pool_seconds(len(cases))


@pytest.mark.parametrize("name", ["integer_match", "dapo", "gpqa"])
def test_inline_rewards_on_giant_outputs(name):
    cases = giant_texts()
    with build_reward(name) as reward:
        for case in cases:
            answer = "42" if name == "integer_match" else case[2]
            _, elapsed = timed_rewards(reward, [case[1]], [answer])
            assert elapsed < INLINE_LIMIT_S, case[0]
        letters = "The answer is (B). " * (MEGABYTE // 19) + "Answer: C"
        assert reward.rewards([letters], ["C" if name == "gpqa" else "1"]).tolist() == [
            1.0 if name == "gpqa" else -1.0
        ]


ATOMS = [
    "1",
    "9",
    "10",
    "0.5",
    "x",
    "y",
    "\\pi",
    "e",
    "\\infty",
    "-",
    "+",
    "*",
    "/",
    "=",
    "!",
    "\\%",
    "\u0000",
]
fragment_soup = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)  # mostly unbalanced
balanced_latex = st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda pair: f"\\frac{{{pair[0]}}}{{{pair[1]}}}"),
        st.tuples(inner, inner).map(lambda pair: f"{pair[0]}^{{{pair[1]}}}"),
        inner.map(lambda a: f"\\sqrt{{{a}}}"),
        inner.map(lambda a: f"({a})"),
        inner.map(lambda a: f"\\left[{a}\\right)"),
        inner.map(lambda a: f"\\{{{a}\\}}"),
        st.lists(inner, min_size=2, max_size=3).map(",".join),
        st.lists(inner, min_size=2, max_size=3).map("".join),
    ),
    max_leaves=20,
)
latex_ish = st.one_of(fragment_soup, balanced_latex)
answers = st.sampled_from(["42", "\\frac{1}{2}", "x+1", "[0,1)", "\\sqrt{2}", "-3"])


@HYPOTHESIS
@given(st.lists(st.tuples(latex_ish, answers), min_size=1, max_size=8))
def test_random_latex_in_boxed(math_verify, batch):
    texts = [f"so \\boxed{{{fragment}}}" for fragment, _ in batch]
    _, elapsed = timed_rewards(math_verify, texts, [answer for _, answer in batch])
    assert elapsed < max_pool_seconds(len(batch))


@HYPOTHESIS
@given(st.lists(st.tuples(st.text(max_size=300), st.text(min_size=1, max_size=20)), min_size=1, max_size=8))
def test_random_unicode_every_reward(math_verify, batch):
    texts = [text for text, _ in batch]
    for name in sorted(REWARDS):
        if name == "integer_match":  # its answers are integers by contract
            reward, answers_used = build_reward(name), ["7"] * len(texts)
        elif name == "math_verify":
            reward, answers_used = math_verify, [answer for _, answer in batch]
        else:
            reward, answers_used = build_reward(name), [answer for _, answer in batch]
        _, elapsed = timed_rewards(reward, texts, answers_used)
        assert elapsed < max_pool_seconds(len(texts))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12), st.booleans())
def test_integer_answers_need_no_parser(predicted, reference, commas):
    """Integer pairs go through the inline fast path: equality exactly, thousands commas allowed."""
    reward = MathVerifyReward(workers=1)
    shown = f"{predicted:,}" if commas else str(predicted)
    scores = reward.rewards([f"\\boxed{{{shown}}}", f"\\boxed{{{reference}}}"], [str(reference)] * 2)
    assert scores.tolist() == [1.0 if predicted == reference else -1.0, 1.0]
    assert reward._pool is None


def test_pool_scores_all_items_and_matches_inline_scoring(math_verify):
    """The pool returns the scores math_verify_score gives in-process, in input order."""
    contents = ["\\frac{1}{2}", "0.5", "x+1", "1+x", "[0,1)", "\\sqrt{4}", "2", "(0,1)"]
    answers_used = ["0.5", "\\frac12", "x+1", "x+1", "[0,1)", "2", "\\sqrt{4}", "[0,1)"]
    scores = math_verify.rewards([f"\\boxed{{{c}}}" for c in contents], answers_used)
    inline = [math_verify_score(c, a) for c, a in zip(contents, answers_used, strict=True)]
    np.testing.assert_array_equal(scores, inline)
