"""Boxed-answer extraction and the integer reward."""

from gdro.rewards import integer_match_reward, last_boxed


def test_last_boxed():
    assert last_boxed("5041\\boxed{46}") == "46"
    assert last_boxed("\\boxed{1} then \\boxed{2}") == "2"
    assert last_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{12") is None
    assert last_boxed("\\boxed{}") == ""


def test_integer_match_reward():
    assert integer_match_reward("504146\\boxed{46}", "46") == 1.0
    assert integer_match_reward("\\boxed{ 07 }", "7") == 1.0
    assert integer_match_reward("\\boxed{7}", "07") == 1.0
    assert integer_match_reward("\\boxed{-3}", "-3") == 1.0
    assert integer_match_reward("\\boxed{45}", "46") == -1.0
    assert integer_match_reward("\\boxed{46}\\boxed{45}", "46") == -1.0
    assert integer_match_reward("46", "46") == -1.0
    assert integer_match_reward("\\boxed{4 6}", "46") == -1.0
    assert integer_match_reward("\\boxed{46.0}", "46") == -1.0
    assert integer_match_reward("\\boxed{46", "46") == -1.0
