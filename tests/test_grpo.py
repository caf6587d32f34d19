"""Hand-computed values and properties for `gdro.core.grpo` (docs/algorithm.md §1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.grpo import (
    ADVANTAGE_STD_MODES,
    LOSS_AGGREGATIONS,
    aggregate_loss,
    clipped_surrogate_loss,
    group_advantages,
    kl_k3,
    sequence_mean,
)

EPS = 1e-6

# Rows: ids [7, 3, 7, 100, 3, 7]: group 7 = rewards [1, -1, -1] (rows 0, 2, 5), group 3 = [1, -1]
# (rows 1, 4), group 100 = a single rollout (row 3).
IDS = torch.tensor([7, 3, 7, 100, 3, 7], dtype=torch.int64)
REWARDS = torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0, -1.0], dtype=torch.float64)


def expected_advantages(std_mode: str) -> list[float]:
    # Group 7: mean -1/3, deviations 4/3, -2/3, -2/3, sum of squares 16/9 + 2 * 4/9 = 8/3.
    # Group 3: mean 0, deviations 1, -1, sum of squares 2.
    if std_mode == "unbiased":
        std7 = math.sqrt((8 / 3) / 2)  # = sqrt(4/3)
        std3 = math.sqrt(2 / 1)
    elif std_mode == "population":
        std7 = math.sqrt((8 / 3) / 3)  # = sqrt(8/9)
        std3 = math.sqrt(2 / 2)
    else:  # "none" (Dr.GRPO): the deviations themselves, no eps either
        return [4 / 3, 1.0, -2 / 3, 0.0, -1.0, -2 / 3]
    a7_hi, a7_lo = (4 / 3) / (std7 + EPS), (-2 / 3) / (std7 + EPS)
    a3 = 1.0 / (std3 + EPS)
    return [a7_hi, a3, a7_lo, 0.0, -a3, a7_lo]


@pytest.mark.parametrize("std_mode", ADVANTAGE_STD_MODES)
def test_group_advantages_hand_values_with_shuffled_ids(std_mode: str) -> None:
    advantages = group_advantages(REWARDS, IDS, std_mode=std_mode)
    assert advantages.shape == (6,)
    assert advantages.dtype == torch.float64
    np.testing.assert_allclose(advantages.numpy(), expected_advantages(std_mode), rtol=1e-12, atol=1e-12)


def test_group_advantages_spot_numbers() -> None:
    # Literal numbers, independent of the helper above: sqrt(4/3) = 1.1547..., sqrt(8/9) = 0.9428...
    unbiased = group_advantages(REWARDS, IDS, std_mode="unbiased")
    population = group_advantages(REWARDS, IDS, std_mode="population")
    none = group_advantages(REWARDS, IDS, std_mode="none")
    assert unbiased[0].item() == pytest.approx(1.1547005, abs=1e-6)
    assert unbiased[2].item() == pytest.approx(-0.5773503, abs=1e-6)
    assert unbiased[1].item() == pytest.approx(0.7071068, abs=1e-6)
    assert population[0].item() == pytest.approx(1.4142136, abs=1e-5)
    assert population[1].item() == pytest.approx(1.0, abs=1e-5)
    assert none[0].item() == pytest.approx(4 / 3)
    assert none[4].item() == pytest.approx(-1.0)


@pytest.mark.parametrize("std_mode", ADVANTAGE_STD_MODES)
def test_size_one_and_constant_groups_are_exactly_zero(std_mode: str) -> None:
    # In float32 the group mean of [0.9, 0.9, 0.9] is 0.9 - 6e-8, and 6e-8 / (0 + eps) = 0.06: a naive
    # (r - mean) / (std + eps) would hand a constant group a visible advantage.
    rewards = torch.tensor([0.9, 5.0, 0.9, -1.0, 0.9, -1.0, 1.0], dtype=torch.float32)
    ids = torch.tensor([4, 9, 4, 2, 4, 2, 11])
    advantages = group_advantages(rewards, ids, std_mode=std_mode, clip=None)
    assert torch.equal(advantages, torch.zeros(7))


@pytest.mark.parametrize(
    ("std_mode", "unclipped_success"),
    [
        # One success in 40: mean = (1 - 39)/40 = -0.95, success deviation 1.95, failure -0.05.
        # Population var = (1.95^2 + 39 * 0.05^2)/40 = 0.0975, std = 0.31225 -> 1.95/0.31225 = 6.245.
        ("population", 1.95 / (math.sqrt(0.0975) + EPS)),
        # Unbiased var = 3.9/39 = 0.1, std = 0.31623 -> 1.95/0.31623 = 6.166.
        ("unbiased", 1.95 / (math.sqrt(0.1) + EPS)),
    ],
)
def test_clip_to_five_binds_for_one_success_in_forty(std_mode: str, unclipped_success: float) -> None:
    rewards = torch.tensor([1.0] + [-1.0] * 39, dtype=torch.float64)
    ids = torch.zeros(40, dtype=torch.int64)
    clipped = group_advantages(rewards, ids, std_mode=std_mode)
    unclipped = group_advantages(rewards, ids, std_mode=std_mode, clip=None)
    assert unclipped[0].item() == pytest.approx(unclipped_success, rel=1e-9)
    assert unclipped[0].item() > 6.0
    assert clipped[0].item() == 5.0
    # Failures are far inside the clip range and unchanged.
    std = math.sqrt(0.0975) if std_mode == "population" else math.sqrt(0.1)
    assert clipped[1].item() == pytest.approx(-0.05 / (std + EPS), rel=1e-9)
    assert torch.equal(clipped[1:], unclipped[1:])


def test_group_advantages_rejects_unknown_std_mode() -> None:
    with pytest.raises(ValueError, match="unbiased.*population.*none"):
        group_advantages(REWARDS, IDS, std_mode="sample")


def test_group_advantages_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(REWARDS, IDS[:5])


@st.composite
def grouped_rewards(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=8))
    prompt_ids = draw(st.lists(st.integers(0, 10_000), min_size=len(sizes), max_size=len(sizes), unique=True))
    ids = [pid for pid, size in zip(prompt_ids, sizes, strict=True) for _ in range(size)]
    rewards = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=len(ids), max_size=len(ids)))
    order = draw(st.permutations(range(len(ids))))
    return (
        torch.tensor([rewards[i] for i in order], dtype=torch.float32),
        torch.tensor([ids[i] for i in order], dtype=torch.int64),
    )


@settings(max_examples=60, deadline=None)
@given(batch=grouped_rewards(), std_mode=st.sampled_from(ADVANTAGE_STD_MODES))
def test_advantages_sum_to_zero_within_each_group(
    batch: tuple[torch.Tensor, torch.Tensor], std_mode: str
) -> None:
    rewards, ids = batch
    advantages = group_advantages(rewards, ids, std_mode=std_mode, clip=None)
    for group in torch.unique(ids):
        assert abs(advantages[ids == group].sum().item()) < 1e-5


@settings(max_examples=60, deadline=None)
@given(batch=grouped_rewards(), std_mode=st.sampled_from(ADVANTAGE_STD_MODES), data=st.data())
def test_advantages_are_permutation_equivariant(
    batch: tuple[torch.Tensor, torch.Tensor], std_mode: str, data: st.DataObject
) -> None:
    rewards, ids = batch
    perm = torch.tensor(data.draw(st.permutations(range(len(ids)))), dtype=torch.int64)
    advantages = group_advantages(rewards, ids, std_mode=std_mode)
    permuted = group_advantages(rewards[perm], ids[perm], std_mode=std_mode)
    torch.testing.assert_close(permuted, advantages[perm], rtol=0.0, atol=1e-6)


def test_clipped_surrogate_clip_higher_asymmetry() -> None:
    # Row 0 has A = +1, row 1 has A = -1; per-token ratios rho below.
    ratios = torch.tensor([[1.5, 0.5, 1.25], [0.5, 1.5, 0.85]], dtype=torch.float64)
    advantages = torch.tensor([1.0, -1.0], dtype=torch.float64)
    old_logprobs = torch.tensor([[-0.3, -2.0, -1.1], [-0.7, -4.0, -0.2]], dtype=torch.float64)
    logprobs = old_logprobs + ratios.log()
    loss, clipped, _ = clipped_surrogate_loss(logprobs, old_logprobs, advantages)
    expected_loss = [
        # A=+1: rho 1.5 -> min(1.5, 1.28) = 1.28; rho 0.5 -> min(0.5, 0.8) = 0.5;
        # rho 1.25 is inside [0.8, 1.28] (a symmetric 0.2 would have clipped it at 1.2).
        [-1.28, -0.5, -1.25],
        # A=-1: rho 0.5 -> min(-0.5, -0.8) = -0.8; rho 1.5 -> min(-1.5, -1.28) = -1.5; rho 0.85 inside.
        [0.8, 1.5, 0.85],
    ]
    np.testing.assert_allclose(loss.numpy(), expected_loss, rtol=1e-12)
    np.testing.assert_array_equal(clipped.numpy(), [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert clipped.dtype == torch.float64


def test_clipped_tokens_get_no_gradient() -> None:
    ratios = torch.tensor([[1.5, 1.1], [0.5, 0.9]], dtype=torch.float64)
    advantages = torch.tensor([2.0, -3.0], dtype=torch.float64)
    old_logprobs = torch.zeros(2, 2, dtype=torch.float64)
    logprobs = ratios.log().requires_grad_(True)
    loss, _, _ = clipped_surrogate_loss(logprobs, old_logprobs, advantages)
    loss.sum().backward()
    # d(-rho * A)/d logprob = -rho * A on the unclipped branch, 0 on the clipped one.
    np.testing.assert_allclose(logprobs.grad.numpy(), [[0.0, -1.1 * 2.0], [0.0, 0.9 * 3.0]], rtol=1e-12)


def test_kl_k3_hand_values() -> None:
    logprobs = torch.tensor([[math.log(0.5), math.log(0.5), math.log(0.3)]], dtype=torch.float64)
    ref_logprobs = torch.tensor([[math.log(0.25), math.log(1.0), math.log(0.3)]], dtype=torch.float64)
    kl = kl_k3(logprobs, ref_logprobs)
    # log_ratio = log(0.25/0.5) = -ln 2: 0.5 + ln 2 - 1 = 0.193147...
    # log_ratio = log(1.0/0.5) = ln 2: 2 - ln 2 - 1 = 0.306853...; equal log-probs: 0.
    expected = [[0.5 + math.log(2) - 1, 2 - math.log(2) - 1, 0.0]]
    np.testing.assert_allclose(kl.numpy(), expected, rtol=1e-12, atol=0.0)
    assert kl[0, 0].item() == pytest.approx(0.1931472, abs=1e-7)
    assert kl[0, 1].item() == pytest.approx(0.3068528, abs=1e-7)


def test_kl_k3_zero_iff_equal_and_clamped() -> None:
    logprobs = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kl_k3(logprobs, logprobs), torch.zeros(4, 5))
    shifted = kl_k3(logprobs, logprobs + 0.1)
    assert bool((shifted > 0).all())
    # A log ratio of 100 is clamped to 20, and k3 = exp(20) - 20 - 1 then to 10 (as verl).
    extreme = kl_k3(torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[100.0]], dtype=torch.float64))
    assert extreme.item() == 10.0


# Masked example: row 0 has 3 response tokens (1, 2, 3), row 1 has 1 (10); padding holds 100s.
TOKEN_LOSS = torch.tensor([[1.0, 2.0, 3.0, 100.0], [10.0, 100.0, 100.0, 100.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize(
    ("mode", "norm_length", "expected"),
    [
        ("token-mean", None, (1 + 2 + 3 + 10) / 4),  # 4.0
        ("seq-mean-token-mean", None, ((1 + 2 + 3) / 3 + 10 / 1) / 2),  # 6.0
        ("seq-mean-token-sum-norm", None, ((1 + 2 + 3) + 10) / 2 / 4),  # 2.0, norm_length = T = 4
        ("seq-mean-token-sum-norm", 8, ((1 + 2 + 3) + 10) / 2 / 8),  # 1.0
    ],
)
def test_aggregate_loss_hand_values(mode: str, norm_length: int | None, expected: float) -> None:
    value = aggregate_loss(TOKEN_LOSS, MASK, mode=mode, norm_length=norm_length)
    assert value.ndim == 0
    assert value.item() == pytest.approx(expected, rel=1e-12)


def test_aggregation_modes_differ_on_the_example() -> None:
    values = [aggregate_loss(TOKEN_LOSS, MASK, mode=mode).item() for mode in LOSS_AGGREGATIONS]
    assert values == pytest.approx([4.0, 6.0, 2.0])


@pytest.mark.parametrize("mode", LOSS_AGGREGATIONS)
def test_empty_mask_gives_zero_not_nan(mode: str) -> None:
    value = aggregate_loss(TOKEN_LOSS, torch.zeros_like(MASK), mode=mode)
    assert value.item() == 0.0


def test_aggregate_loss_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="token-mean"):
        aggregate_loss(TOKEN_LOSS, MASK, mode="sum")


def test_sequence_mean_hand_values() -> None:
    mask = torch.tensor(
        [[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64
    )
    token_loss = torch.cat([TOKEN_LOSS, torch.full((1, 4), 7.0, dtype=torch.float64)])
    # (1 + 2 + 3)/3 = 2, 10/1 = 10, empty row -> 0.
    np.testing.assert_allclose(sequence_mean(token_loss, mask).numpy(), [2.0, 10.0, 0.0], rtol=1e-12)
