"""The outcome of a GRPO step from the ranks' shares (`gdro.train.grpo_step.whole_batch`): one rank's share
is the outcome as it is (the numbers of a one-process run do not change), and two ranks' shares add up
to what one process holding all the rollouts reports. The 2-rank runs themselves are in
tests/test_train_distributed.py."""

from __future__ import annotations

import numpy as np
import pytest

from gdro.train.grpo_step import RankShare, whole_batch

ROLLOUTS = np.array([4, 2, 0, 3])


def share(
    correct: list[int], signal: list[float], tokens: list[int], loss: float, norm: float, correction=None
) -> RankShare:
    return RankShare(
        correct=np.array(correct, dtype=np.int64),
        signal=np.array(signal),
        tokens=np.array(tokens, dtype=np.float64),
        sums={"loss/total": loss, "reward/timeouts": 0.0},
        truncated=1,
        rollouts=4,
        means={"loss/grad_norm": norm, "loss/microbatches": 2.0, "optim/lr": 1e-5},
        correction=correction,
    )


def test_one_rank_share_is_the_outcome_as_it_is() -> None:
    correction = ({"rollout/logprob_diff": 0.1, "rollout_is/mean": 0.9}, 7.0, 7.0)
    outcome = whole_batch(
        [share([3, 1, 0, 2], [0.4, -0.2, 0.0, 0.3], [9, 5, 0, 7], -0.0, 0.5, correction)], ROLLOUTS
    )
    assert outcome.correct_per_prompt.tolist() == [3, 1, 0, 2]
    assert outcome.surrogate_loss == pytest.approx([0.1, -0.1, 0.0, 0.1])
    assert outcome.tokens_per_prompt.tolist() == [9, 5, 0, 7] and outcome.generated_tokens == 21
    assert outcome.metrics["loss/total"] == 0.0 and str(outcome.metrics["loss/total"]) == "-0.0"
    assert outcome.metrics["rollout/truncation_rate"] == 0.25
    assert {k: outcome.metrics[k] for k in correction[0]} == correction[0]  # not re-weighted


def test_two_ranks_shares_add_up_to_the_whole_batch() -> None:
    """Rank 0 holds prompts 0 and 2, rank 1 prompts 1 and 3; each loss is a share of the global aggregate."""
    first = (
        {
            "rollout/logprob_diff": 0.1,
            "rollout_is/mean": 1.0,
            "rollout_is/capped": 0.0,
            "rollout_is/max": 1.5,
        },
        30.0,
        30.0,
    )
    second = (
        {
            "rollout/logprob_diff": 0.4,
            "rollout_is/mean": 0.5,
            "rollout_is/capped": 0.5,
            "rollout_is/max": 2.0,
        },
        10.0,
        10.0,
    )
    outcome = whole_batch(
        [
            share([3, 0, 0, 0], [0.4, 0.0, 0.0, 0.0], [9, 0, 0, 0], 0.25, 0.5, first),
            share([0, 1, 0, 2], [0.0, -0.2, 0.0, 0.3], [0, 5, 0, 7], 0.5, 0.5, second),
        ],
        ROLLOUTS,
    )
    assert outcome.correct_per_prompt.tolist() == [3, 1, 0, 2]
    assert outcome.surrogate_loss == pytest.approx([0.1, -0.1, 0.0, 0.1])
    assert outcome.generated_tokens == 21
    assert outcome.metrics["loss/total"] == 0.75  # shares add up
    assert outcome.metrics["loss/grad_norm"] == 0.5  # the global norm, the same on every rank
    assert outcome.metrics["rollout/truncation_rate"] == 2 / 8
    assert outcome.metrics["rollout/logprob_diff"] == pytest.approx((0.1 * 30 + 0.4 * 10) / 40)  # by tokens
    assert outcome.metrics["rollout_is/mean"] == pytest.approx((1.0 * 30 + 0.5 * 10) / 40)
    assert outcome.metrics["rollout_is/max"] == 2.0
