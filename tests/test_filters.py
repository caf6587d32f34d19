"""The group filters and their generation rounds (gdro.core.filters): by hand, and as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.config.checking import ConfigError
from gdro.core.filters import (
    AccuracyBand,
    AccuracyBandConfig,
    FilterExhaustedError,
    KeepAll,
    RoundsConfig,
    RoundSelection,
)
from gdro.core.registry import FILTERS, build_filter

DYNAMIC = AccuracyBandConfig(low=0.0, high=1.0, inclusive=False)


def test_the_registry_holds_both_filters_and_builds_them() -> None:
    assert list(FILTERS) == ["accuracy_band", "none"]
    assert isinstance(build_filter("none", None), KeepAll)
    band = build_filter("accuracy_band", AccuracyBandConfig(0.2, 0.8))
    assert isinstance(band, AccuracyBand) and band.config.low == 0.2


def test_dynamic_sampling_keeps_the_groups_whose_rewards_differ_and_a_group_of_one() -> None:
    n = np.array([4, 4, 4, 1, 1, 2, 2])
    c = np.array([0, 4, 1, 0, 1, 1, 2])
    assert AccuracyBand(DYNAMIC).keep(n, c).tolist() == [False, False, True, True, True, True, False]


def test_prime_band_edges_are_inclusive_and_the_exclusive_band_drops_them() -> None:
    n = np.full(6, 5)
    c = np.array([0, 1, 2, 3, 4, 5])  # accuracies 0, 0.2, 0.4, 0.6, 0.8, 1
    prime = AccuracyBand(AccuracyBandConfig())  # [0.2, 0.8]
    assert prime.keep(n, c).tolist() == [False, True, True, True, True, False]
    open_band = AccuracyBand(AccuracyBandConfig(0.2, 0.8, inclusive=False))
    assert open_band.keep(n, c).tolist() == [False, False, True, True, False, False]
    # A group of one is kept in any band (DAPO's rule), also where its accuracy 0 or 1 lies outside.
    assert prime.keep(np.array([1, 1]), np.array([0, 1])).tolist() == [True, True]


def test_none_keeps_everything() -> None:
    assert KeepAll().keep(np.array([4, 4]), np.array([0, 4])).tolist() == [True, True]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AccuracyBandConfig(0.8, 0.2), "filter.low=0.8, filter.high=0.2"),
        (AccuracyBandConfig(0.5, 0.5), "filter.low=0.5, filter.high=0.5"),
        (AccuracyBandConfig(-0.1, 0.5), "filter.low=-0.1"),
        (AccuracyBandConfig(0.0, 1.0, inclusive=True), "keeps every group: use filter=none"),
    ],
)
def test_a_band_that_cannot_work_is_refused_naming_the_keys(config: AccuracyBandConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_rounds_accumulate_until_m_kept_then_cut_to_the_first_m_in_generation_order() -> None:
    selection = RoundSelection(4, RoundsConfig())
    selection.add(np.array([True, False, False, True, False]))  # 2 kept
    assert not selection.done and selection.kept == 2
    selection.add(np.array([False, False, False, False, False]))  # 0 kept
    assert not selection.done
    selection.add(np.array([False, True, True, True, False]))  # 3 kept: 5 >= 4
    assert selection.done and not selection.exhausted and selection.kept == 5
    chosen = selection.selection()
    assert [c.tolist() for c in chosen] == [[0, 3], [], [1, 2]]  # round 3's position 3 is the surplus
    with pytest.raises(RuntimeError, match="no further round"):
        selection.add(np.array([True]))


def test_one_round_of_everything_is_the_batch_as_it_is() -> None:
    selection = RoundSelection(3, RoundsConfig())
    selection.add(np.ones(3, dtype=bool))
    assert selection.done and [c.tolist() for c in selection.selection()] == [[0, 1, 2]]


def test_the_round_limit_raises_naming_the_key_or_trains_on_what_it_has() -> None:
    failing = RoundSelection(4, RoundsConfig(max_gen_batches=2))
    failing.add(np.array([True, False, False, False]))
    assert not failing.done
    failing.add(np.array([False, True, False, False]))
    assert failing.done and failing.exhausted
    with pytest.raises(FilterExhaustedError, match=r"filter\.max_gen_batches=2.*filter\.on_exhausted=train"):
        failing.selection()
    training = RoundSelection(4, RoundsConfig(max_gen_batches=2, on_exhausted="train"))
    training.add(np.array([True, False, False, False]))
    training.add(np.array([False, True, False, False]))
    assert [c.tolist() for c in training.selection()] == [[0], [1]]
    empty = RoundSelection(4, RoundsConfig(max_gen_batches=1, on_exhausted="train"))
    empty.add(np.zeros(4, dtype=bool))
    with pytest.raises(FilterExhaustedError, match="no group passed the filter"):
        empty.selection()


def test_rounds_settings_are_checked_naming_the_key() -> None:
    with pytest.raises(ValueError, match="filter.gen_batch_size=0"):
        RoundsConfig(gen_batch_size=0).validate()
    with pytest.raises(ValueError, match="filter.max_gen_batches=-1"):
        RoundsConfig(max_gen_batches=-1).validate()
    with pytest.raises(ValueError, match="filter.on_exhausted=train acts at filter.max_gen_batches"):
        RoundsConfig(on_exhausted="train").validate()
    assert RoundsConfig().round_size(8) == 8 and RoundsConfig(gen_batch_size=12).round_size(8) == 12


@settings(max_examples=200, deadline=None)
@given(
    batch_size=st.integers(1, 6),
    round_size=st.integers(1, 8),
    limit=st.integers(0, 4),
    band=st.sampled_from([DYNAMIC, AccuracyBandConfig(), AccuracyBandConfig(0.25, 0.75, inclusive=False)]),
    seed=st.integers(0, 10_000),
)
def test_rounds_are_minimal_the_cut_exact_and_every_trained_group_in_the_band(
    batch_size: int, round_size: int, limit: int, band: AccuracyBandConfig, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    group_filter = AccuracyBand(band)
    selection = RoundSelection(batch_size, RoundsConfig(round_size, limit, "train" if limit else "error"))
    rounds = []
    while not selection.done and len(rounds) < 50:
        n = rng.integers(1, 5, size=round_size)
        c = rng.binomial(n, rng.uniform(0, 1, size=round_size))
        keep = group_filter.keep(n, c)
        rounds.append((n, c, keep))
        selection.add(keep)
    if not selection.done:  # no limit and a long unlucky streak: nothing to check
        return
    kept_before_last = sum(int(keep.sum()) for _, _, keep in rounds[:-1])
    assert kept_before_last < batch_size  # the last round was needed
    if selection.exhausted:
        assert len(rounds) == limit and selection.kept < batch_size
        if selection.kept == 0:
            return
    chosen = selection.selection()
    trained = sum(len(positions) for positions in chosen)
    assert trained == min(batch_size, selection.kept)
    for (n, c, keep), positions in zip(rounds, chosen, strict=True):
        assert keep[positions].all()  # every trained group passes the band
        accuracy = c[positions] / n[positions]
        inside = (accuracy >= band.low) & (accuracy <= band.high) | (n[positions] == 1)
        assert inside.all()
    # the cut takes the first kept groups in generation order: no kept group before a trained one is left out
    order = [(r, p) for r, (_, _, keep) in enumerate(rounds) for p in np.flatnonzero(keep)]
    assert [(r, p) for r, positions in enumerate(chosen) for p in positions] == order[:trained]


def test_a_filter_config_that_cannot_run_is_refused_at_start() -> None:
    from conf_helpers import compose_config

    from gdro.config import parse_run_config

    with pytest.raises(ConfigError, match="filter.low=0.9, filter.high=0.1"):
        parse_run_config(compose_config(["filter=accuracy_band", "filter.low=0.9", "filter.high=0.1"]))
    with pytest.raises(ConfigError, match="filter.gen_batch_size=0"):
        parse_run_config(compose_config(["filter=dynamic_sampling", "filter.gen_batch_size=0"]))
    with pytest.raises(ConfigError, match="filter=none trains every group"):
        parse_run_config(compose_config(["filter.gen_batch_size=128"]))
    with pytest.raises(ConfigError, match="filter.gen_batch_size=2000 exceeds dataset.num_train=1024"):
        parse_run_config(compose_config(["filter=dynamic_sampling", "filter.gen_batch_size=2000"]))
    with pytest.raises(ConfigError, match=r"filter\.gen_batch_size=3"):
        parse_run_config(
            compose_config(["filter=dynamic_sampling", "filter.gen_batch_size=3", "allocator.nbar=2.5"])
        )
    with pytest.raises(ConfigError, match="filter.on_exhausted"):
        parse_run_config(compose_config(["filter=dynamic_sampling", "filter.on_exhausted=skip"]))
    run = parse_run_config(compose_config(["method=dapo_dynamic_sampling"]))
    assert (run.filter, run.filter_schema, run.filter_config) == (
        "dynamic_sampling",
        "accuracy_band",
        DYNAMIC,
    )
    assert run.rounds == RoundsConfig()
