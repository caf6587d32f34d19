"""Hand-computed values and properties for the data order, the uniform sampler and Prompt-GDRO (docs/algorithm.md §3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.difficulty import ClassifierConfig, DifficultyClassifier
from gdro.core.samplers import PromptGDROConfig, PromptGDROSampler, UniformSampler
from gdro.core.samplers.data_order import EpochOrder
from gdro.core.step import StepResult

NAN = float("nan")


def classifier_with_bins(bins: list[int], num_bins: int = 10, exclude_extremes: bool = False):
    """A real classifier whose prompt i sits in group bins[i] (group B = excluded when enabled).

    Window 1, `rate` estimator with k = 1, so p_hat = c/n of one visit: put each prompt mid-bin
    (p_hat = (2b + 1) / 20 for 10 bins); an excluded prompt gets p_hat = 0.
    """
    config = ClassifierConfig(
        num_bins=num_bins, window=1, estimator="rate", k=1, exclude_extremes=exclude_extremes
    )
    classifier = DifficultyClassifier(len(bins), config)
    edges = np.r_[0.0, classifier.edges, 1.0]
    mids = (edges[:-1] + edges[1:]) / 2
    correct = [0 if b == num_bins else round(mids[b] * 1000) for b in bins]
    classifier.record(np.arange(len(bins)), np.full(len(bins), 1000), np.array(correct))
    np.testing.assert_array_equal(classifier.classify(np.arange(len(bins))), bins)
    return classifier


def result(bins, success_rate, surrogate_loss=None) -> StepResult:
    m = len(bins)
    return StepResult(
        prompt_ids=np.arange(m),
        bins=np.asarray(bins, dtype=np.int64),
        rollouts_per_prompt=np.full(m, 4),
        correct_per_prompt=np.zeros(m, dtype=np.int64),
        success_rate=np.asarray(success_rate, dtype=np.float64),
        surrogate_loss=None if surrogate_loss is None else np.asarray(surrogate_loss, dtype=np.float64),
    )


def sampler(num_groups: int = 4, num_prompts: int = 10, seed: int = 0, **config) -> PromptGDROSampler:
    return PromptGDROSampler(num_prompts, num_groups, PromptGDROConfig(**config), seed=seed)


# ---------------------------------------------------------------- data order


def test_epoch_order_covers_every_id_once_per_epoch_with_drop_last() -> None:
    order = EpochOrder(10, seed=0)
    epoch = [order.next_batch(3) for _ in range(3)]  # 3 batches of 3 = 9 ids; the 10th is dropped
    assert order.epoch == 0
    seen = np.concatenate(epoch)
    assert len(set(seen.tolist())) == 9
    for batch in epoch:
        assert len(set(batch.tolist())) == 3
    nxt = order.next_batch(3)  # 9 + 3 > 10: a new permutation
    assert order.epoch == 1
    assert len(set(nxt.tolist())) == 3
    order = EpochOrder(12, seed=5)
    for _ in range(3):
        covered = np.sort(np.concatenate([order.next_batch(4) for _ in range(3)]))
        np.testing.assert_array_equal(covered, np.arange(12))


def test_epoch_order_rejects_batches_larger_than_the_dataset() -> None:
    with pytest.raises(ValueError, match=r"trainer\.prompts_per_step=6"):
        EpochOrder(5, seed=0).next_batch(6)


def test_epoch_order_state_round_trip() -> None:
    order = EpochOrder(10, seed=1)
    order.next_batch(4)
    copy = EpochOrder(10, seed=99)
    copy.load_state_dict(order.state_dict())
    for _ in range(5):
        np.testing.assert_array_equal(copy.next_batch(4), order.next_batch(4))


# ---------------------------------------------------------------- uniform sampler


def test_uniform_sampler_weights_are_the_batch_share() -> None:
    classifier = classifier_with_bins([0, 0, 2, 2, 2, 7, 9, 9])
    plan = UniformSampler(8, 10, seed=0).plan(8, classifier)
    np.testing.assert_array_equal(np.sort(plan.prompt_ids), np.arange(8))
    np.testing.assert_array_equal(plan.bins, classifier.classify(plan.prompt_ids))
    np.testing.assert_allclose(plan.bin_weights, [2 / 8, 0, 3 / 8, 0, 0, 0, 0, 1 / 8, 0, 2 / 8])
    np.testing.assert_array_equal(plan.advantage_weights, np.ones(8))


# ---------------------------------------------------------------- q from scores


def mixed(logits: list[float], gamma: float) -> list[float]:
    exps = [math.exp(x) for x in logits]
    return [(1 - gamma) * e / sum(exps) + gamma / len(logits) for e in exps]


def test_q_without_score_norm_fills_unscored_active_bins() -> None:
    s = sampler(score_norm="none")
    s.scores = np.array([0.2, NAN, 0.6, 1.0])
    q = s.bin_weights(np.array([True, True, True, False]))
    # Bin 1 is active but unscored: it takes mean(0.2, 0.6) = 0.4. Bin 3 is inactive: q = 0.
    # Logits eta * S = 0.65 * (0.2, 0.4, 0.6) = (0.13, 0.26, 0.39); gamma / B_active = 0.01 / 3.
    np.testing.assert_allclose(q, [*mixed([0.13, 0.26, 0.39], gamma=0.01), 0.0])
    assert q[0] == pytest.approx(
        0.99 * math.exp(0.13) / (math.exp(0.13) + math.exp(0.26) + math.exp(0.39)) + 0.01 / 3
    )
    np.testing.assert_array_equal(s.scores, [0.2, NAN, 0.6, 1.0])  # reading q does not write scores


def test_q_with_zscore() -> None:
    s = sampler()  # our preset: zscore
    s.scores = np.array([0.2, NAN, 0.6, 1.0])
    q = s.bin_weights(np.array([True, True, True, False]))
    # Active scores (0.2, 0.4, 0.6): mean 0.4, population std sqrt((0.04 + 0 + 0.04) / 3) = 0.163299;
    # z = (-0.2, 0, 0.2) / 0.163299 = (-1.224745, 0, 1.224745).
    z = 0.2 / math.sqrt(0.08 / 3)
    np.testing.assert_allclose(q, [*mixed([-0.65 * z, 0.0, 0.65 * z], gamma=0.01), 0.0])


def test_zscore_clips_at_three() -> None:
    s = sampler(num_groups=11)
    s.scores = np.array([1.0] + [0.0] * 10)
    q = s.bin_weights(np.ones(11, dtype=bool))
    # mean 1/11, std sqrt((1/11)(10/11)) = sqrt(10)/11; z_0 = (10/11) / (sqrt(10)/11) = sqrt(10) = 3.16,
    # clipped to 3; the others z = -(1/11) / (sqrt(10)/11) = -1/sqrt(10).
    np.testing.assert_allclose(q, mixed([0.65 * 3.0] + [-0.65 / math.sqrt(10)] * 10, gamma=0.01))


def test_zscore_std_floor_gives_uniform_q() -> None:
    s = sampler()
    s.scores = np.array([0.3, 0.3, 0.3, NAN])
    np.testing.assert_allclose(s.bin_weights(np.array([True, True, True, True])), [0.25] * 4)


def test_no_active_bin_gives_zero_weights() -> None:
    np.testing.assert_array_equal(sampler().bin_weights(np.zeros(4, dtype=bool)), np.zeros(4))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    num_groups=st.integers(1, 12),
    score_norm=st.sampled_from(["none", "zscore"]),
    gamma=st.floats(0.0, 0.5),
    eta=st.floats(0.0, 5.0),
)
def test_q_is_on_the_simplex_of_active_bins(data, num_groups, score_norm, gamma, eta) -> None:
    scores = data.draw(
        st.lists(st.one_of(st.just(NAN), st.floats(-10, 10)), min_size=num_groups, max_size=num_groups)
    )
    active = np.array(data.draw(st.lists(st.booleans(), min_size=num_groups, max_size=num_groups)))
    if not active.any():
        active[data.draw(st.integers(0, num_groups - 1))] = True
    s = sampler(num_groups=num_groups, score_norm=score_norm, gamma=gamma, eta=eta)
    s.scores = np.array(scores)
    q = s.bin_weights(active)
    assert np.all(np.isfinite(q))
    assert q[active].sum() == pytest.approx(1.0)
    assert np.all(q[active] >= gamma / active.sum() - 1e-12)
    np.testing.assert_array_equal(q[~active], 0.0)


# ---------------------------------------------------------------- score updates


def test_ema_update_with_first_observation_init() -> None:
    s = sampler(num_groups=3, score_signal="learnability")
    # Step 1: learnability p1 (1 - p1) = (0.25, 0.09, 0.16); bin 0 mean (0.25 + 0.09) / 2 = 0.17, bin 1 0.16.
    s.update(result([0, 0, 1], [0.5, 0.1, 0.2]))
    np.testing.assert_allclose(s.bin_scores(), [0.17, 0.16, NAN])
    # Step 2: bin 0 sees 1.0 (1 - 1.0) = 0: 0.88 * 0.17 + 0.12 * 0 = 0.1496; bin 1 absent keeps 0.16;
    # bin 2's first observation 0.5 * 0.5 = 0.25 initialises it.
    s.update(result([0, 2], [1.0, 0.5]))
    np.testing.assert_allclose(s.bin_scores(), [0.1496, 0.16, 0.25])
    s.update(result([2], [0.1]))  # 0.88 * 0.25 + 0.12 * 0.09 = 0.2308
    np.testing.assert_allclose(s.bin_scores(), [0.1496, 0.16, 0.2308])


def test_share_norm_divides_by_the_batch_share() -> None:
    s = sampler(num_groups=3, score_signal="learnability", share_norm=True)
    # M = 3: bin 0 share 2/3, mean 0.17 -> 0.17 / (2/3) = 0.255; bin 1 share 1/3, 0.16 -> 0.48.
    s.update(result([0, 0, 1], [0.5, 0.1, 0.2]))
    np.testing.assert_allclose(s.bin_scores(), [0.255, 0.48, NAN])


def test_failure_signal() -> None:
    s = sampler(num_groups=2, score_signal="failure")
    s.update(result([0, 0, 1], [0.5, 0.1, 0.2]))  # 1 - p1: bin 0 (0.5 + 0.9) / 2 = 0.7, bin 1 0.8
    np.testing.assert_allclose(s.bin_scores(), [0.7, 0.8])


def test_surrogate_signal() -> None:
    s = sampler(num_groups=2, score_signal="surrogate")
    s.update(result([0, 0, 1], [0.5, 0.1, 0.2], surrogate_loss=[0.3, -0.1, 0.05]))
    np.testing.assert_allclose(s.bin_scores(), [0.1, 0.05])  # (0.3 - 0.1) / 2, 0.05
    with pytest.raises(ValueError, match="surrogate"):
        s.update(result([0, 1], [0.5, 0.5]))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("mode", "both"),
        ("score_signal", "loss"),
        ("score_norm", "minmax"),
        ("gamma", 1.5),
        ("max_weight", 0.5),
    ],
)
def test_config_errors_name_the_key(key: str, value) -> None:
    with pytest.raises(ValueError, match=rf"sampler\.{key}"):
        sampler(**{key: value})


# ---------------------------------------------------------------- advantage weights


def test_advantage_weights_mean_one_before_the_cap() -> None:
    s = sampler(num_groups=3, max_weight=15.0)
    q = np.array([0.5, 0.3, 0.2])
    bins = np.array([0, 1, 1, 2])
    # mean q(b_i) = (0.5 + 0.3 + 0.3 + 0.2) / 4 = 0.325; w = q / 0.325.
    np.testing.assert_allclose(
        s.advantage_weights(bins, q, None), [0.5 / 0.325, 0.3 / 0.325, 0.3 / 0.325, 0.2 / 0.325]
    )


def test_advantage_weights_cap_binds() -> None:
    s = sampler(num_groups=2, score_norm="none", gamma=0.0, eta=1.0)
    s.scores = np.array([math.log(99), 0.0])  # softmax: (99, 1) / 100 = (0.99, 0.01)
    q = s.bin_weights(np.array([True, True]))
    np.testing.assert_allclose(q, [0.99, 0.01])
    bins = np.array([0] + [1] * 99)
    # mean q = (0.99 + 99 * 0.01) / 100 = 0.0198; raw w = 0.99 / 0.0198 = 50 -> capped at 15;
    # w = 0.01 / 0.0198 = 0.50505 for the rest.
    w = s.advantage_weights(bins, q, None)
    assert w[0] == 15.0
    np.testing.assert_allclose(w[1:], 0.01 / 0.0198)


def test_excluded_prompts_get_weight_one_and_stay_out_of_the_mean() -> None:
    s = sampler(num_groups=3)
    q = np.array([0.6, 0.4, 0.0])
    bins = np.array([0, 1, 2, 2])  # group 2 is excluded
    # Mean over the counted prompts only: (0.6 + 0.4) / 2 = 0.5 -> (1.2, 0.8); excluded prompts 1.
    np.testing.assert_allclose(s.advantage_weights(bins, q, excluded=2), [1.2, 0.8, 1.0, 1.0])


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    num_groups=st.integers(1, 11),
    batch_size=st.integers(1, 64),
    max_weight=st.floats(1.0, 20.0),
    with_excluded=st.booleans(),
)
def test_multipliers_have_mean_one_and_respect_the_cap(
    data, num_groups, batch_size, max_weight, with_excluded
) -> None:
    groups = num_groups + int(with_excluded)
    excluded = num_groups if with_excluded else None
    bins = np.array(data.draw(st.lists(st.integers(0, groups - 1), min_size=batch_size, max_size=batch_size)))
    q = np.array(data.draw(st.lists(st.floats(1e-4, 1.0), min_size=groups, max_size=groups)))
    counted = bins != excluded
    uncapped = sampler(num_groups=groups, max_weight=math.inf).advantage_weights(bins, q, excluded)
    capped = sampler(num_groups=groups, max_weight=max_weight).advantage_weights(bins, q, excluded)
    np.testing.assert_array_equal(uncapped[~counted], 1.0)
    np.testing.assert_array_equal(capped[~counted], 1.0)
    if counted.any():
        assert uncapped[counted].mean() == pytest.approx(1.0)
    assert np.all(capped <= max_weight)
    np.testing.assert_allclose(capped[counted], np.minimum(uncapped[counted], max_weight))


def test_reweight_plan() -> None:
    classifier = classifier_with_bins([0, 0, 0, 5, 5, 10, 10], exclude_extremes=True)
    s = sampler(num_groups=11, num_prompts=7, score_norm="none", gamma=0.0, eta=1.0)
    s.scores = np.r_[math.log(3), np.zeros(10)]  # active bins 0 and 5: softmax (3, 1) / 4
    plan = s.plan(7, classifier)
    np.testing.assert_array_equal(np.sort(plan.prompt_ids), np.arange(7))
    np.testing.assert_array_equal(plan.bins, classifier.classify(plan.prompt_ids))
    np.testing.assert_allclose(plan.bin_weights, [0.75, 0, 0, 0, 0, 0.25, 0, 0, 0, 0, 0])
    # Counted mean of q(b_i): (3 * 0.75 + 2 * 0.25) / 5 = 0.55; w = 0.75 / 0.55, 0.25 / 0.55, 1 (excluded).
    expected = {0: 0.75 / 0.55, 5: 0.25 / 0.55, 10: 1.0}
    np.testing.assert_allclose(plan.advantage_weights, [expected[b] for b in plan.bins])


# ---------------------------------------------------------------- resample mode


def resample_setup(bins: list[int], log_scores: list[float], seed: int = 0, exclude_extremes: bool = True):
    classifier = classifier_with_bins(bins, exclude_extremes=exclude_extremes)
    groups = classifier.num_groups
    s = sampler(
        num_groups=groups,
        num_prompts=len(bins),
        seed=seed,
        mode="resample",
        score_norm="none",
        gamma=0.0,
        eta=1.0,
    )
    s.scores = np.r_[log_scores, np.zeros(groups - len(log_scores))]
    return classifier, s


def test_resample_when_the_favourite_bin_is_too_small() -> None:
    # Bin 0 holds 3 prompts, bins 1 and 2 hold 20 each, 10 prompts are excluded; bins 3..9 are empty.
    bins = [0] * 3 + [1] * 20 + [2] * 20 + [10] * 10
    classifier, s = resample_setup(bins, [math.log(18), 0.0, 0.0])
    plan = s.plan(16, classifier)
    # softmax over the bins holding prompts (0, 1, 2): (18, 1, 1) / 20 = (0.9, 0.05, 0.05); 0 elsewhere.
    np.testing.assert_allclose(plan.bin_weights, [0.9, 0.05, 0.05] + [0.0] * 8)
    assert len(set(plan.prompt_ids.tolist())) == 16
    assert {0, 1, 2} <= set(plan.prompt_ids.tolist())  # bin 0 is drained, the rest spills over
    assert set(plan.bins.tolist()) <= {0, 1, 2}  # never the excluded group, never an empty bin
    np.testing.assert_array_equal(plan.bins, classifier.classify(plan.prompt_ids))
    np.testing.assert_array_equal(plan.advantage_weights, np.ones(16))


def test_resample_is_seeded() -> None:
    bins = [0] * 30 + [3] * 30 + [6] * 30
    first = resample_setup(bins, [0.5, 0, 0, 1.0], seed=7)
    second = resample_setup(bins, [0.5, 0, 0, 1.0], seed=7)
    other = resample_setup(bins, [0.5, 0, 0, 1.0], seed=8)
    batches = [s.plan(20, c).prompt_ids for c, s in (first, second, other)]
    np.testing.assert_array_equal(batches[0], batches[1])
    assert not np.array_equal(batches[0], batches[2])


def test_resample_frequencies_follow_q() -> None:
    bins = [0] * 200 + [4] * 200 + [8] * 200
    log_scores = [math.log(5), 0, 0, 0, math.log(3), 0, 0, 0, math.log(2)]
    classifier, s = resample_setup(bins, log_scores, exclude_extremes=False)
    drawn = np.concatenate([s.plan(20, classifier).bins for _ in range(200)])
    # q = (5, 3, 2) / 10 on bins 0, 4, 8; 4000 draws: standard error <= sqrt(0.25 / 4000) = 0.008.
    frequencies = np.bincount(drawn, minlength=10) / len(drawn)
    np.testing.assert_allclose(frequencies[[0, 4, 8]], [0.5, 0.3, 0.2], atol=0.03)
    assert frequencies.sum() == pytest.approx(1.0)


def test_resample_rejects_batches_larger_than_the_dataset() -> None:
    classifier, s = resample_setup([0, 1, 2], [0.0, 0.0, 0.0], exclude_extremes=False)
    with pytest.raises(ValueError, match=r"trainer\.prompts_per_step=4"):
        s.plan(4, classifier)


def test_sampler_state_round_trip() -> None:
    bins = [0] * 10 + [5] * 10
    classifier, s = resample_setup(bins, [0.3, 0, 0, 0, 0, 0.1])
    s.plan(5, classifier)
    copy = sampler(
        num_groups=classifier.num_groups,
        num_prompts=20,
        seed=42,
        mode="resample",
        score_norm="none",
        gamma=0.0,
        eta=1.0,
    )
    copy.load_state_dict(json.loads(json.dumps(s.state_dict())))
    np.testing.assert_array_equal(copy.bin_scores(), s.bin_scores())
    np.testing.assert_array_equal(copy.plan(5, classifier).prompt_ids, s.plan(5, classifier).prompt_ids)
