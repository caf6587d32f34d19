"""The scoring pool (gdro.rewards.pool): order, soft and hard deadlines, dead workers, lifecycle.

The scorer is tests/reward_helpers.scripted_score (its own module so workers can import it).
"""

import os
import time

import pytest
from reward_helpers import scripted_score

from gdro.rewards.pool import SOFT_DEADLINE_FRACTION, ScoringPool

DEADLINE_S = 1.5  # the soft deadline fires at 1.2 s: 0.3 s to answer before the hard one


@pytest.fixture(scope="module")
def pool():
    with ScoringPool(scripted_score, workers=2, deadline_s=DEADLINE_S, preload=("reward_helpers",)) as pool:
        yield pool


def quick_items(count):
    return [(f"x{i}", f"x{i}" if i % 3 else "other") for i in range(count)]


def expected_scores(items):
    return [1.0 if text == answer else -1.0 for text, answer in items]


def test_scores_come_back_in_input_order(pool):
    items = quick_items(50)
    result = pool.score(items)
    assert result.scores.tolist() == expected_scores(items)
    assert (result.timeouts, result.errors) == (0, 0)
    assert pool.score([]).scores.shape == (0,)


def test_soft_deadline_cuts_a_sleeping_item_and_keeps_the_worker(pool):
    """Rejects a pool that waits for the item (the call would take an hour)."""
    respawns = pool.respawns
    items = [("sleep", ""), *quick_items(10)]
    start = time.monotonic()
    result = pool.score(items)
    elapsed = time.monotonic() - start
    assert result.scores.tolist() == [-1.0, *expected_scores(items[1:])]
    assert (result.timeouts, result.errors) == (1, 0)
    assert SOFT_DEADLINE_FRACTION * DEADLINE_S * 0.95 <= elapsed < DEADLINE_S
    assert pool.respawns == respawns


def test_hard_deadline_kills_a_stuck_worker_and_the_batch_still_scores(pool):
    """An item that ignores the soft deadline is cut at `deadline_s`: its worker is killed and
    replaced; the other worker scores the rest meanwhile, and the next batch runs on both.
    Rejects a pool that waits on the stuck worker, drops the rest of the batch, or loses a worker."""
    respawns = pool.respawns
    items = [("hang", ""), *quick_items(20)]
    start = time.monotonic()
    result = pool.score(items)
    elapsed = time.monotonic() - start
    assert result.scores.tolist() == [-1.0, *expected_scores(items[1:])]
    assert (result.timeouts, result.errors) == (1, 0)
    assert DEADLINE_S * 0.95 <= elapsed < DEADLINE_S + 2.0
    assert pool.respawns == respawns + 1
    items = quick_items(30)
    assert pool.score(items).scores.tolist() == expected_scores(items)


def test_several_stuck_items_in_one_batch(pool):
    items = [("hang", ""), ("sleep", ""), ("hang", ""), *quick_items(6)]
    result = pool.score(items)
    assert result.scores.tolist() == [-1.0, -1.0, -1.0, *expected_scores(items[3:])]
    assert (result.timeouts, result.errors) == (3, 0)


def test_raising_scorer_and_dying_worker_count_as_errors(pool):
    respawns = pool.respawns
    items = [("raise", ""), ("crash", ""), *quick_items(8)]
    result = pool.score(items)
    assert result.scores.tolist() == [-1.0, -1.0, *expected_scores(items[2:])]
    assert (result.timeouts, result.errors) == (0, 2)
    assert pool.respawns == respawns + 1  # the crash; a raising scorer keeps its worker
    items = quick_items(10)
    assert pool.score(items).scores.tolist() == expected_scores(items)


def test_close_kills_the_workers_and_refuses_more_work():
    with ScoringPool(scripted_score, workers=2, deadline_s=DEADLINE_S, preload=("reward_helpers",)) as pool:
        pool.score([("", "")] * 4)
        pids = [worker.process.pid for worker in pool._workers]
    assert len(pids) == 2 and os.getpid() not in pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        pool.score([("a", "a")])
    pool.close()  # idempotent


@pytest.mark.parametrize(("workers", "deadline_s"), [(0, 1.0), (1, 0.0)])
def test_rejects_bad_settings(workers, deadline_s):
    with pytest.raises(ValueError):
        ScoringPool(scripted_score, workers=workers, deadline_s=deadline_s)


def test_an_interrupted_call_closes_the_pool(monkeypatch):
    """Busy workers of an interrupted call would answer its items into the next call: the pool
    closes instead (MathVerifyReward then starts a new one)."""
    pool = ScoringPool(scripted_score, workers=1, deadline_s=DEADLINE_S, preload=("reward_helpers",))

    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(pool, "_next_outcomes", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pool.score([("a", "a")])
    assert pool.closed
