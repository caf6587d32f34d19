"""Truncated rollout importance sampling: the weights and statistics by hand, and their place in the loss."""

from __future__ import annotations

import math

import pytest
import torch
from logprob_reference import sequence_logprobs
from test_actor import (
    COMPLETIONS,
    NORM_LENGTH,
    PROMPTS,
    TEMPERATURE,
    actor_config,
    assert_gradients_close,
    budget_for,
    frozen_actor,
    gradients,
    ppo_inputs,
    tiny_model,
)

from gdro.core.grpo import aggregate_loss, clipped_surrogate_loss
from gdro.core.rollout_correction import rollout_is_weights

# Two sequences: log pi_old - log pi_sampler = [0.5, -1.0, 2.0] and [0.1, (padding)].
OLD = torch.tensor([[0.0, -1.0, 1.0], [-0.4, 0.0, 0.0]])
SAMPLER = torch.tensor([[-0.5, 0.0, -1.0], [-0.5, 5.0, 5.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def test_token_weights_are_truncated_ratios_and_padding_weighs_one() -> None:
    weights, metrics = rollout_is_weights(OLD, SAMPLER, MASK, "token", cap=2.0)
    raw = [math.exp(0.5), math.exp(-1.0), math.exp(2.0), math.exp(0.1)]
    expected = torch.tensor([[raw[0], raw[1], 2.0], [raw[3], 1.0, 1.0]])
    assert torch.allclose(weights, expected)
    assert metrics["rollout/logprob_diff"] == pytest.approx((0.5 + 1.0 + 2.0 + 0.1) / 4)
    assert metrics["rollout_is/mean"] == pytest.approx(sum(raw) / 4)
    assert metrics["rollout_is/max"] == pytest.approx(math.exp(2.0))
    assert metrics["rollout_is/capped"] == pytest.approx(1 / 4)


def test_sequence_weights_use_the_summed_log_ratio() -> None:
    weights, metrics = rollout_is_weights(OLD, SAMPLER, MASK, "sequence", cap=2.0)
    first, second = math.exp(0.5 - 1.0 + 2.0), math.exp(0.1)  # 4.48 (capped), 1.105
    assert torch.allclose(weights, torch.tensor([[2.0, 2.0, 2.0], [second, 1.0, 1.0]]))
    assert metrics["rollout_is/mean"] == pytest.approx((first + second) / 2)
    assert metrics["rollout_is/capped"] == pytest.approx(1 / 2)


def test_mode_none_weighs_one_and_still_reports_the_difference() -> None:
    weights, metrics = rollout_is_weights(OLD, SAMPLER, MASK, "none", cap=2.0)
    assert torch.equal(weights, torch.ones_like(MASK))
    assert set(metrics) == {"rollout/logprob_diff"}
    with pytest.raises(ValueError, match="rollout_is"):
        rollout_is_weights(OLD, SAMPLER, MASK, "tokens", cap=2.0)


def test_actor_multiplies_each_token_loss_by_its_weight() -> None:
    """The gradient with weights w is that of agg(w * l^clip), for any micro-batch cut."""
    model = tiny_model()
    inputs = ppo_inputs(model)
    logprobs, mask = sequence_logprobs(model, PROMPTS, COMPLETIONS, TEMPERATURE)
    weights = 0.5 + 1.5 * torch.rand(mask.shape, generator=torch.Generator().manual_seed(7))
    surrogate = clipped_surrogate_loss(logprobs, inputs["old_logprobs"], inputs["advantages"])
    aggregate_loss(surrogate.loss_tok * weights, mask, "token-mean", NORM_LENGTH).backward()
    expected = gradients(model)
    for cuts in (1, 2):
        actor = frozen_actor(actor_config("token-mean", 0.0, budget_for(cuts)))
        actor.update(
            PROMPTS,
            COMPLETIONS,
            advantages=inputs["advantages"],
            old_logprobs=inputs["old_logprobs"],
            is_weights=weights,
        )
        assert_gradients_close(gradients(actor.model), expected)
