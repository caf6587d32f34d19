"""Hand-computed values and properties for the online difficulty classifier (docs/algorithm.md §2)."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.difficulty import BIN_EDGE_PRESETS, ClassifierConfig, DifficultyClassifier
from gdro.core.state import decode_array


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def exact_rate_classifier(num_prompts: int = 4, **overrides) -> DifficultyClassifier:
    """Window 1, `rate` estimator with k = 1: p_hat = 1 - (1 - c/n)^1 = c/n of the last visit."""
    config = ClassifierConfig(window=1, estimator="rate", k=1, **overrides)
    return DifficultyClassifier(num_prompts, config)


def visit(classifier: DifficultyClassifier, prompt: int, correct: int, rollouts: int = 100) -> None:
    classifier.record(ids(prompt), ids(rollouts), ids(correct))


# ---------------------------------------------------------------- edges and configuration


def test_edge_presets() -> None:
    assert BIN_EDGE_PRESETS[3] == (0.4, 0.75)  # spec: "3 = edges 0.4, 0.75"
    assert BIN_EDGE_PRESETS[6] == (0.1, 0.3, 0.5, 0.7, 0.9)
    assert BIN_EDGE_PRESETS[10] == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    np.testing.assert_array_equal(ClassifierConfig().edges(), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_array_equal(ClassifierConfig(num_bins=3).edges(), [0.4, 0.75])
    assert DifficultyClassifier(5, ClassifierConfig(num_bins=6)).num_groups == 6


def test_bad_num_bins_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"classifier\.num_bins=7"):
        ClassifierConfig(num_bins=7).edges()


@pytest.mark.parametrize(
    "edges",
    [[0.2, 0.5], [0.5, 0.4, 0.9], [0.0, 0.5, 0.9], [0.2, 0.5, 1.0]],
    ids=["too-few", "decreasing", "zero", "one"],
)
def test_bad_bin_edges_name_the_key(edges: list[float]) -> None:
    with pytest.raises(ValueError, match=r"classifier\.bin_edges"):
        DifficultyClassifier(3, ClassifierConfig(num_bins=4, bin_edges=edges))


def test_custom_edges() -> None:
    classifier = DifficultyClassifier(2, ClassifierConfig(num_bins=4, bin_edges=[0.25, 0.5, 0.75]))
    np.testing.assert_array_equal(classifier.raw_bin(np.array([0.0, 0.25, 0.6, 0.75, 1.0])), [0, 1, 2, 3, 3])


# ---------------------------------------------------------------- reading and recording


def test_unseen_prompts_are_bin_zero_with_nan_estimates() -> None:
    classifier = DifficultyClassifier(5)
    np.testing.assert_array_equal(classifier.classify(ids(0, 3, 4)), [0, 0, 0])
    assert np.isnan(classifier.success_rate(ids(0, 3))).all()
    assert np.isnan(classifier.pass_estimate(ids(2))).all()
    np.testing.assert_array_equal(classifier.seen(ids(0, 1)), [False, False])
    np.testing.assert_array_equal(classifier.bin_counts(), [5, 0, 0, 0, 0, 0, 0, 0, 0, 0])


def test_classify_returns_old_bins_until_record() -> None:
    classifier = DifficultyClassifier(3)
    batch = ids(0, 1, 2)
    before = classifier.classify(batch)
    # Prompt 1 solved on every rollout: p_hat = 1/1 = 1 >= a_1 + delta = 0.13, raw bin 9.
    results = (ids(4, 4, 4), ids(0, 4, 0))
    np.testing.assert_array_equal(before, [0, 0, 0])
    np.testing.assert_array_equal(classifier.classify(batch), [0, 0, 0])  # classify is a pure read
    classifier.record(ids(0, 1, 2), *results)
    np.testing.assert_array_equal(classifier.classify(batch), [0, 9, 0])
    np.testing.assert_array_equal(before, [0, 0, 0])  # the earlier answer is a copy, not a view


def test_any_correct_sliding_window_drops_the_oldest_visit() -> None:
    classifier = DifficultyClassifier(2, ClassifierConfig(window=3))
    # Visits (correct, rollouts): (4, 4), (1, 4), (0, 4), (0, 2); any-correct bits 1, 1, 0, 0.
    for correct, rollouts in [(4, 4), (1, 4), (0, 4)]:
        visit(classifier, 0, correct, rollouts)
    assert classifier.pass_estimate(ids(0))[0] == pytest.approx(2 / 3)  # (1 + 1 + 0) / 3
    assert classifier.success_rate(ids(0))[0] == pytest.approx(5 / 12)  # (4 + 1 + 0) / (4 + 4 + 4)
    visit(classifier, 0, 0, 2)  # the first visit (4 of 4) leaves the window
    assert classifier.pass_estimate(ids(0))[0] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert classifier.success_rate(ids(0))[0] == pytest.approx(1 / 10)  # (1 + 0 + 0) / (4 + 4 + 2)
    assert np.isnan(classifier.success_rate(ids(1))[0])  # the other prompt is untouched


def test_rate_estimator() -> None:
    classifier = DifficultyClassifier(1, ClassifierConfig(estimator="rate", k=8))
    visit(classifier, 0, 1, 4)
    visit(classifier, 0, 2, 6)
    # p1 = (1 + 2) / (4 + 6) = 0.3; p_hat = 1 - 0.7^8 = 1 - 0.05764801 = 0.94235199.
    assert classifier.success_rate(ids(0))[0] == pytest.approx(0.3)
    assert classifier.pass_estimate(ids(0))[0] == pytest.approx(0.94235199)
    assert classifier.classify(ids(0))[0] == 9  # 0.942 >= 0.9


def test_record_rejects_more_correct_than_rollouts() -> None:
    classifier = DifficultyClassifier(3)
    with pytest.raises(ValueError, match="correct_per_prompt"):
        classifier.record(ids(0, 1), ids(4, 4), ids(2, 5))
    with pytest.raises(ValueError, match="correct_per_prompt"):
        classifier.record(ids(0), ids(4), ids(-1))


def test_repeated_ids_in_one_call_are_recorded_in_order() -> None:
    config = ClassifierConfig(window=2, estimator="rate", k=1)
    together, apart = DifficultyClassifier(3, config), DifficultyClassifier(3, config)
    for classifier in (together, apart):
        visit(classifier, 1, 3, 4)
    together.record(ids(1, 2, 1), ids(4, 5, 2), ids(0, 5, 2))
    apart.record(ids(1, 2), ids(4, 5), ids(0, 5))
    apart.record(ids(1), ids(2), ids(2))
    # Prompt 1's window holds its last two visits in order: (0 of 4), (2 of 2): p1 = 2/6.
    for classifier in (together, apart):
        assert classifier.success_rate(ids(1))[0] == pytest.approx(2 / 6)
    # One more visit (1 of 3) drops the OLDEST, (0 of 4): p1 = (2 + 1) / (2 + 3) = 0.6. Had the two
    # occurrences been written in reverse order it would drop (2 of 2) and give 1/7.
    for classifier in (together, apart):
        visit(classifier, 1, 1, 3)
        assert classifier.success_rate(ids(1))[0] == pytest.approx(3 / 5)
    np.testing.assert_array_equal(together.pass_estimate(ids(0, 1, 2)), apart.pass_estimate(ids(0, 1, 2)))
    np.testing.assert_array_equal(together.classify(ids(0, 1, 2)), apart.classify(ids(0, 1, 2)))


def test_zero_rollouts_is_not_a_visit() -> None:
    classifier = DifficultyClassifier(2)
    classifier.record(ids(0, 1), ids(0, 4), ids(0, 4))
    np.testing.assert_array_equal(classifier.seen(ids(0, 1)), [False, True])


# ---------------------------------------------------------------- hysteresis


def test_hysteresis_up_moves() -> None:
    classifier = exact_rate_classifier()
    visit(classifier, 0, 35)  # p_hat 0.35 >= a_1 + delta = 0.13: bin 0 -> raw bin 3
    assert classifier.classify(ids(0))[0] == 3
    visit(classifier, 0, 42)  # raw bin 4, but 0.42 < a_4 + delta = 0.4 + 0.03 = 0.43: stays
    assert classifier.classify(ids(0))[0] == 3
    visit(classifier, 0, 44)  # 0.44 >= 0.43: moves to raw bin 4
    assert classifier.classify(ids(0))[0] == 4
    visit(classifier, 0, 75)  # 0.75 >= a_5 + delta = 0.53: jumps to raw bin 7, skipping 5 and 6
    assert classifier.classify(ids(0))[0] == 7


def test_hysteresis_down_moves() -> None:
    classifier = exact_rate_classifier()
    visit(classifier, 0, 75)
    assert classifier.classify(ids(0))[0] == 7
    visit(classifier, 0, 68)  # raw bin 6, but 0.68 >= a_7 - delta = 0.7 - 0.03 = 0.67: stays
    assert classifier.classify(ids(0))[0] == 7
    visit(classifier, 0, 66)  # 0.66 < 0.67: moves to raw bin 6
    assert classifier.classify(ids(0))[0] == 6
    visit(classifier, 0, 15)  # 0.15 < a_6 - delta = 0.57: jumps to raw bin 1, skipping 5 .. 2
    assert classifier.classify(ids(0))[0] == 1
    visit(classifier, 0, 8)  # raw bin 0, but 0.08 >= a_1 - delta = 0.07: stays
    assert classifier.classify(ids(0))[0] == 1


def test_first_visit_from_bin_zero_needs_the_margin_too() -> None:
    classifier = exact_rate_classifier()
    visit(classifier, 0, 12)  # raw bin 1, but 0.12 < a_1 + delta = 0.13: an unseen prompt stays in 0
    assert classifier.classify(ids(0))[0] == 0
    visit(classifier, 1, 14)  # 0.14 >= 0.13
    assert classifier.classify(ids(1))[0] == 1


def test_top_bin_has_no_upper_edge() -> None:
    classifier = exact_rate_classifier(num_bins=3)  # edges 0.4, 0.75
    visit(classifier, 0, 100)
    assert classifier.classify(ids(0))[0] == 2
    visit(classifier, 0, 73)  # raw bin 1, but 0.73 >= a_2 - delta = 0.72: stays in the top bin
    assert classifier.classify(ids(0))[0] == 2


def _band(edges: np.ndarray, current: int, delta: float) -> tuple[float, float]:
    """[a_b - delta, a_{b+1} + delta): the p_hat values for which the rule keeps bin b."""
    lower = -np.inf if current == 0 else edges[current - 1] - delta
    upper = np.inf if current == len(edges) else edges[current] + delta
    return lower, upper


@settings(max_examples=60, deadline=None)
@given(
    num_bins=st.sampled_from([3, 6, 10]),
    window=st.sampled_from([20, 50]),
    data=st.data(),
)
def test_hysteresis_never_flips_within_the_band(num_bins: int, window: int, data: st.DataObject) -> None:
    """The rule, step by step: p_hat in [a_b - delta, a_{b+1} + delta) keeps bin b; outside it, the bin
    becomes the raw bin of p_hat. Most steps are steered to stay in the band (including the margins just
    past each edge); `forced` steps take their bit regardless, to exercise the moves as well.

    H in {20, 50} keeps every p_hat = count / H away from the band ends (delta * H = 0.6 or 1.5 counts),
    so no comparison here hangs on floating-point rounding at a boundary.
    """
    delta = 0.03
    classifier = DifficultyClassifier(1, ClassifierConfig(num_bins=num_bins, window=window, hysteresis=delta))
    edges = classifier.edges
    initial = data.draw(st.lists(st.integers(0, 1), min_size=window, max_size=window), label="initial")
    # One call with H occurrences fills the window in order and moves the bin once, from bin 0.
    classifier.record(np.zeros(window, dtype=np.int64), np.full(window, 4), np.array(initial) * 4)
    history = deque(initial, maxlen=window)
    p_hat = sum(history) / window
    expected = 0 if p_hat < edges[0] + delta else int(np.searchsorted(edges, p_hat, side="right"))
    assert classifier.classify(ids(0))[0] == expected

    steps = data.draw(
        st.lists(st.tuples(st.integers(0, 1), st.booleans()), min_size=20, max_size=80), label="steps"
    )
    for bit, forced in steps:
        current = int(classifier.classify(ids(0))[0])
        lower, upper = _band(edges, current, delta)
        candidate = (sum(history) - history[0] + bit) / window
        if not forced and not lower <= candidate < upper:
            bit = history[0]  # replace the dropped visit by its equal: p_hat unchanged, still in band
        visit(classifier, 0, 4 * bit, 4)
        history.append(bit)
        p_hat = sum(history) / window
        assert classifier.pass_estimate(ids(0))[0] == pytest.approx(p_hat)
        if lower <= p_hat < upper:
            assert classifier.classify(ids(0))[0] == current
        else:
            assert classifier.classify(ids(0))[0] == int(np.searchsorted(edges, p_hat, side="right"))


# ---------------------------------------------------------------- excluded extremes


def test_exclude_extremes() -> None:
    config = ClassifierConfig(exclude_extremes=True)
    classifier = DifficultyClassifier(5, config)
    assert classifier.num_groups == 11  # B + 1
    assert classifier.excluded_group == 10
    assert DifficultyClassifier(5).excluded_group is None
    # Prompt 0: never solved (p_hat 0); 1: always (p_hat 1); 2: 1 of 2 visits (p_hat 0.5); 3: unseen.
    classifier.record(ids(0, 1, 2), ids(4, 4, 4), ids(0, 4, 1))
    classifier.record(ids(0, 1, 2), ids(4, 4, 4), ids(0, 4, 0))
    np.testing.assert_array_equal(classifier.classify(ids(0, 1, 2, 3)), [10, 10, 5, 0])
    np.testing.assert_array_equal(classifier.bin_counts(), [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2])
    classifier.record(ids(0), ids(4), ids(1))  # p_hat (0 + 0 + 1) / 3 = 1/3 leaves the excluded group
    assert classifier.classify(ids(0))[0] == 3  # 1/3 >= a_1 + delta from bin 0: raw bin 3


def test_exclusion_is_decided_from_counts_not_from_a_rounded_rate() -> None:
    """p1 = 0.995: 1 - 0.005^8 rounds to 1.0 in float64, yet the window holds a failed rollout."""
    classifier = DifficultyClassifier(2, ClassifierConfig(exclude_extremes=True, estimator="rate", k=8))
    for _ in range(5):
        classifier.record(ids(0, 1), ids(40, 40), ids(40, 40))
    classifier.record(ids(0), ids(40), ids(39))  # prompt 0: 199 of 200 correct
    assert classifier.pass_estimate(ids(0))[0] == 1.0  # the float the old test compared
    np.testing.assert_array_equal(classifier.classify(ids(0, 1)), [9, 10])


def test_any_correct_visits_with_failed_rollouts_are_not_excluded() -> None:
    """p_hat = 1 under any_correct, but 1 of 4 rollouts failed: the group still has signal."""
    classifier = DifficultyClassifier(2, ClassifierConfig(exclude_extremes=True))
    classifier.record(ids(0, 1), ids(4, 4), ids(3, 4))
    assert classifier.pass_estimate(ids(0, 1)).tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(classifier.classify(ids(0, 1)), [9, 10])


def test_exclude_extremes_with_the_rate_estimator() -> None:
    classifier = DifficultyClassifier(3, ClassifierConfig(exclude_extremes=True, estimator="rate", k=8))
    classifier.record(ids(0, 1, 2), ids(4, 4, 4), ids(0, 4, 1))
    # p_hat: 1 - 1^8 = 0, 1 - 0^8 = 1, 1 - 0.75^8 = 0.8999 (raw bin 8).
    np.testing.assert_array_equal(classifier.classify(ids(0, 1, 2)), [10, 10, 8])


# ---------------------------------------------------------------- checkpointing and scale


def _fed_classifier(config: ClassifierConfig) -> DifficultyClassifier:
    classifier = DifficultyClassifier(40, config)
    rng = np.random.default_rng(3)
    for _ in range(12):
        batch = rng.choice(40, size=16, replace=False)
        rollouts = rng.integers(1, 9, size=16)
        classifier.record(batch, rollouts, rng.integers(0, rollouts + 1))
    return classifier


@pytest.mark.parametrize(
    "config",
    [
        ClassifierConfig(window=5),
        ClassifierConfig(window=7, estimator="rate", k=4, num_bins=6, exclude_extremes=True),
    ],
    ids=["any_correct", "rate-excluded"],
)
def test_state_dict_json_round_trip(config: ClassifierConfig) -> None:
    original = _fed_classifier(config)
    restored = DifficultyClassifier(40, config)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict())))
    everyone = np.arange(40)
    np.testing.assert_array_equal(restored.classify(everyone), original.classify(everyone))
    np.testing.assert_array_equal(restored.success_rate(everyone), original.success_rate(everyone))
    np.testing.assert_array_equal(restored.pass_estimate(everyone), original.pass_estimate(everyone))
    rng = np.random.default_rng(11)
    for _ in range(10):  # identical future: the ring buffers' cursors were restored too
        batch = rng.choice(40, size=16, replace=False)
        rollouts = rng.integers(1, 9, size=16)
        correct = rng.integers(0, rollouts + 1)
        original.record(batch, rollouts, correct)
        restored.record(batch, rollouts, correct)
        np.testing.assert_array_equal(restored.classify(everyone), original.classify(everyone))
        np.testing.assert_array_equal(restored.pass_estimate(everyone), original.pass_estimate(everyone))
        np.testing.assert_array_equal(restored.success_rate(everyone), original.success_rate(everyone))


def test_load_state_dict_rejects_another_dataset_size() -> None:
    state = DifficultyClassifier(4).state_dict()
    with pytest.raises(ValueError, match="4 prompts"):
        DifficultyClassifier(5).load_state_dict(state)


def test_large_classifier_agrees_with_a_per_prompt_reference() -> None:
    """N = 100k ids, batches with repeated ids: every estimate equals a dict-of-deques reference."""
    num_prompts, window = 100_000, 3
    classifier = DifficultyClassifier(num_prompts, ClassifierConfig(window=window, hysteresis=0.0))
    history: dict[int, deque] = {}
    rng = np.random.default_rng(0)
    for _ in range(6):
        batch = rng.choice(2_000, size=512, replace=True)  # repeats: recorded in batch order
        rollouts = rng.integers(1, 9, size=512)
        correct = rng.integers(0, rollouts + 1)
        classifier.record(batch, rollouts, correct)
        for x, n, c in zip(batch.tolist(), rollouts.tolist(), correct.tolist(), strict=True):
            history.setdefault(x, deque(maxlen=window)).append((n, c))
    seen = np.array(sorted(history))
    p_any = np.array([np.mean([c > 0 for _, c in history[x]]) for x in seen])
    p1 = np.array([sum(c for _, c in history[x]) / sum(n for n, _ in history[x]) for x in seen])
    np.testing.assert_allclose(classifier.pass_estimate(seen), p_any, rtol=0, atol=1e-12)
    np.testing.assert_allclose(classifier.success_rate(seen), p1, rtol=0, atol=1e-12)
    # Hysteresis 0: a recorded prompt sits in the raw bin of its p_hat; the rest stay in bin 0.
    np.testing.assert_array_equal(
        classifier.classify(seen), np.searchsorted(classifier.edges, p_any, "right")
    )
    counts = classifier.bin_counts()
    assert counts[0] == num_prompts - len(seen) + int((p_any < 0.1).sum())
    assert len(decode_array(classifier.state_dict()["seen_ids"])) == len(seen)  # state holds seen ids only
