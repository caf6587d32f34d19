"""Loss numerics the paper's runs had through verl defaults (docs/algorithm.md §1): dual clip, the log-ratio
clamp before exp, the k3 value clamp, and sequence means over non-empty rows only.

Each hand case names the value the previous code gave, the broken variant it rejects.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gdro.core.grpo import LOSS_AGGREGATIONS, aggregate_loss, clipped_surrogate_loss, kl_k3

F64 = torch.float64


def surrogate_of(log_ratios: list[list[float]], advantages: list[float], **kwargs):
    """clipped_surrogate_loss with old log-probs 0, so logprobs are the log-ratios."""
    logprobs = torch.tensor(log_ratios, dtype=F64)
    return clipped_surrogate_loss(
        logprobs, torch.zeros_like(logprobs), torch.tensor(advantages, dtype=F64), **kwargs
    )


def test_dual_clip_caps_the_loss_of_negative_advantage_tokens() -> None:
    # A = -1 at ratio 4 (verl: 3.0; without dual clip: 4.0).
    assert surrogate_of([[math.log(4.0)]], [-1.0]).loss_tok.item() == pytest.approx(3.0, rel=1e-12)
    # Row 0: A = -1, ratios 4, 3.5, 2, 0.5 -> min(4, 3) = 3, min(3.5, 3) = 3, 2 (inside the cap),
    # and 0.5 clipped up to 0.8 by clip-low. Row 1: A = -2 at ratio 4 -> min(8, 2 * 3) = 6.
    out = surrogate_of(
        [[math.log(4.0), math.log(3.5), math.log(2.0), math.log(0.5)], [math.log(4.0)] * 4], [-1.0, -2.0]
    )
    np.testing.assert_allclose(out.loss_tok.numpy(), [[3.0, 3.0, 2.0, 0.8], [6.0] * 4], rtol=1e-12)
    np.testing.assert_array_equal(out.dual_clipped.numpy(), [[1, 1, 0, 0], [1, 1, 1, 1]])
    # The flags never overlap: clip-low and the dual cap cannot both bind on one token.
    np.testing.assert_array_equal(out.clipped.numpy(), [[0, 0, 0, 1], [0, 0, 0, 0]])
    assert out.dual_clipped.dtype == F64


def test_dual_clip_with_another_constant() -> None:
    # A = -0.5 at ratio 4 with c = 1.5: min(2.0, 0.75) = 0.75.
    out = surrogate_of([[math.log(4.0)]], [-0.5], clip_ratio_c=1.5)
    assert out.loss_tok.item() == pytest.approx(0.75, rel=1e-12)
    assert out.dual_clipped.item() == 1.0


def test_clip_ratio_c_none_reproduces_the_loss_without_dual_clip() -> None:
    out = surrogate_of([[math.log(4.0)]], [-1.0], clip_ratio_c=None)
    assert out.loss_tok.item() == pytest.approx(4.0, rel=1e-12)
    assert out.dual_clipped.item() == 0.0


def test_dual_clip_leaves_non_negative_advantages_alone() -> None:
    log_ratios = [[math.log(r) for r in (10.0, 4.0, 1.1, 0.5)]] * 3
    advantages = [1.0, 0.0, 2.5]
    with_dual = surrogate_of(log_ratios, advantages)
    without = surrogate_of(log_ratios, advantages, clip_ratio_c=None)
    assert torch.equal(with_dual.loss_tok, without.loss_tok)
    assert torch.equal(with_dual.dual_clipped, torch.zeros(3, 4, dtype=F64))
    # A = +1: ratio 10 and 4 clip at 1.28, 1.1 is inside, 0.5 keeps the unclipped -0.5.
    np.testing.assert_allclose(with_dual.loss_tok[0].numpy(), [-1.28, -1.28, -1.1, -0.5], rtol=1e-12)


def test_clip_ratio_c_must_exceed_one() -> None:
    for bad in (1.0, 0.5):
        with pytest.raises(ValueError, match="clip_ratio_c"):
            surrogate_of([[0.0]], [-1.0], clip_ratio_c=bad)


def test_dual_clipped_tokens_get_no_gradient() -> None:
    # A = -1: ratio 4 is dual-clipped (no gradient); ratio 2 is not: d(rho * 1)/d logprob = 2.
    logprobs = torch.tensor([[math.log(4.0), math.log(2.0)]], dtype=F64, requires_grad=True)
    out = clipped_surrogate_loss(logprobs, torch.zeros(1, 2, dtype=F64), torch.tensor([-1.0], dtype=F64))
    out.loss_tok.sum().backward()
    np.testing.assert_allclose(logprobs.grad.numpy(), [[0.0, 2.0]], rtol=1e-12, atol=0.0)


def test_log_ratio_is_clamped_to_20_before_exp() -> None:
    # Log-ratio 25 with A = -1 gave exp(25) = 7.2e10; clamped, the ratio is exp(20).
    no_dual = surrogate_of([[25.0, -25.0]], [-1.0], clip_ratio_c=None).loss_tok
    assert no_dual[0, 0].item() == pytest.approx(math.exp(20.0), rel=1e-12)
    assert no_dual[0, 1].item() == pytest.approx(0.8, rel=1e-12)  # exp(-20) clipped up to 0.8
    assert surrogate_of([[25.0]], [-1.0]).loss_tok.item() == pytest.approx(3.0, rel=1e-12)
    # A = +1 at log-ratio -25 keeps the unclipped -rho, with rho = exp(-20), not exp(-25).
    positive = surrogate_of([[25.0, -25.0]], [1.0]).loss_tok
    np.testing.assert_allclose(positive.numpy(), [[-1.28, -math.exp(-20.0)]], rtol=1e-12)


@pytest.mark.parametrize("clip_ratio_c", [None, 3.0])
@pytest.mark.parametrize(
    ("log_ratio", "advantage"), [(25.0, -1.0), (100.0, -1.0), (100.0, 1.0), (-100.0, 1.0)]
)
def test_gradients_are_finite_and_zero_beyond_the_clamp(
    clip_ratio_c: float | None, advantage: float, log_ratio: float
) -> None:
    # float32, as the trainer runs: exp(100) overflows to inf without the clamp (inf loss at
    # A = -1, NaN gradient at A = +1); at 25 the unclamped gradient was exp(25) = 7.2e10.
    logprobs = torch.tensor([[log_ratio]], dtype=torch.float32, requires_grad=True)
    out = clipped_surrogate_loss(
        logprobs, torch.zeros(1, 1), torch.tensor([advantage]), clip_ratio_c=clip_ratio_c
    )
    assert bool(torch.isfinite(out.loss_tok).all())
    out.loss_tok.sum().backward()
    assert logprobs.grad.item() == 0.0


def test_k3_value_is_clamped_to_10() -> None:
    # log(pi_ref / pi_theta) = 3: exp(3) - 3 - 1 = 16.09 before the clamp; verl gives 10.
    # 2 stays exp(2) - 3 = 4.389; -12 gives exp(-12) + 11 = 11.000006 -> 10.
    logprobs = torch.zeros(1, 4, dtype=F64, requires_grad=True)
    ref_logprobs = torch.tensor([[3.0, 2.0, -12.0, 0.0]], dtype=F64)
    kl = kl_k3(logprobs, ref_logprobs)
    np.testing.assert_allclose(kl.detach().numpy(), [[10.0, math.exp(2.0) - 3.0, 10.0, 0.0]], rtol=1e-12)
    kl.sum().backward()
    # Clamped tokens give no gradient; d k3 / d logprob = 1 - exp(log_ratio) elsewhere.
    np.testing.assert_allclose(logprobs.grad.numpy(), [[0.0, 1.0 - math.exp(2.0), 0.0, 0.0]], rtol=1e-12)


ONE_FULL_ONE_EMPTY = (torch.ones(2, 2, dtype=F64), torch.tensor([[1, 1], [0, 0]], dtype=torch.bool))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("seq-mean-token-mean", 1.0),  # the empty row is left out; averaging it in gave 0.5
        ("seq-mean-token-sum-norm", 1.0),  # row sum 2 / 1 non-empty row / T = 2; gave 0.5
    ],
)
def test_sequence_means_skip_empty_rows(mode: str, expected: float) -> None:
    assert aggregate_loss(*ONE_FULL_ONE_EMPTY, mode=mode).item() == pytest.approx(expected, rel=1e-12)


def test_sum_norm_divides_by_non_empty_rows_and_norm_length() -> None:
    # Rows: tokens (1, 2, 3), (4), empty. (6 + 4) / 2 non-empty rows / norm_length 5 = 1.0.
    token_loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0], [9.0, 9.0, 9.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=F64)
    value = aggregate_loss(token_loss, mask, mode="seq-mean-token-sum-norm", norm_length=5)
    assert value.item() == pytest.approx(1.0, rel=1e-12)
    assert aggregate_loss(token_loss, mask, mode="seq-mean-token-mean").item() == pytest.approx(3.0)


@pytest.mark.parametrize("mode", LOSS_AGGREGATIONS)
def test_all_zero_mask_gives_zero_and_a_zero_gradient(mode: str) -> None:
    # The masked tokens hold extreme float32 log-ratios (+-100): their losses must not leak in
    # as inf * 0 = NaN, into the value or the gradient.
    logprobs = torch.tensor([[100.0, -100.0, 0.5], [3.0, -2.0, 100.0]], requires_grad=True)
    old_logprobs = torch.zeros(2, 3)
    mask = torch.zeros(2, 3)
    token_loss = clipped_surrogate_loss(logprobs, old_logprobs, torch.tensor([-1.0, 1.0])).loss_tok
    kl = kl_k3(logprobs, -logprobs)
    value = aggregate_loss(token_loss, mask, mode=mode) + aggregate_loss(kl, mask, mode=mode)
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(logprobs.grad, torch.zeros(2, 3))


def reference_token(log_ratio: float, advantage: float, c: float | None) -> tuple[float, int, int]:
    """verl's vanilla token loss with clip 0.2 / 0.28, written out on floats: (loss, clipped, dual)."""
    rho = math.exp(min(max(log_ratio, -20.0), 20.0))
    unclipped, clipped = -rho * advantage, -min(max(rho, 0.8), 1.28) * advantage
    loss = max(unclipped, clipped)
    dual = c is not None and advantage < 0 and loss > -advantage * c
    return (-advantage * c if dual else loss), int(clipped > unclipped), int(dual)


def reference_k3(log_ratio: float) -> float:
    x = min(max(log_ratio, -20.0), 20.0)
    return min(max(math.exp(x) - x - 1.0, -10.0), 10.0)


def reference_aggregate(losses: list[list[float]], lengths: list[int], mode: str, norm_length: int) -> float:
    """Rows hold `lengths[s]` leading tokens; empty rows count for nothing; no tokens at all give 0."""
    sums = [sum(row[:n]) for row, n in zip(losses, lengths, strict=True)]
    if sum(lengths) == 0:
        return 0.0
    if mode == "token-mean":
        return sum(sums) / sum(lengths)
    kept = [(total, n) for total, n in zip(sums, lengths, strict=True) if n > 0]
    if mode == "seq-mean-token-mean":
        return sum(total / n for total, n in kept) / len(kept)
    return sum(total for total, _ in kept) / len(kept) / norm_length


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_matches_a_reference_on_random_inputs_with_empty_rows(data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 5), label="rows")
    width = data.draw(st.integers(1, 6), label="width")
    logprob = st.floats(-30.0, 0.0, allow_nan=False)
    matrix = st.lists(st.lists(logprob, min_size=width, max_size=width), min_size=rows, max_size=rows)
    logprobs, olds = data.draw(matrix, label="logprobs"), data.draw(matrix, label="old_logprobs")
    advantages = data.draw(
        st.lists(st.sampled_from([0.0, 1.0, -1.0]) | st.floats(-5.0, 5.0), min_size=rows, max_size=rows)
    )
    lengths = data.draw(st.lists(st.integers(0, width), min_size=rows, max_size=rows), label="lengths")
    c = data.draw(st.sampled_from([None, 1.5, 3.0, 10.0]), label="clip_ratio_c")
    mode = data.draw(st.sampled_from(LOSS_AGGREGATIONS), label="mode")
    norm_length = data.draw(st.integers(1, 10), label="norm_length")

    logprobs_t, olds_t = torch.tensor(logprobs, dtype=F64), torch.tensor(olds, dtype=F64)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    out = clipped_surrogate_loss(logprobs_t, olds_t, torch.tensor(advantages, dtype=F64), clip_ratio_c=c)
    # The same float64 subtraction as the function, so the clamp sees the same log-ratio.
    log_ratios = (logprobs_t - olds_t).tolist()
    expected = [
        [reference_token(x, a, c) for x in row] for row, a in zip(log_ratios, advantages, strict=True)
    ]
    expected_loss = [[loss for loss, _, _ in row] for row in expected]
    np.testing.assert_allclose(out.loss_tok.numpy(), expected_loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out.clipped.numpy(), [[f for _, f, _ in row] for row in expected])
    np.testing.assert_array_equal(out.dual_clipped.numpy(), [[f for _, _, f in row] for row in expected])

    value = aggregate_loss(out.loss_tok, mask, mode=mode, norm_length=norm_length)
    reference = reference_aggregate(expected_loss, lengths, mode, norm_length)
    assert value.item() == pytest.approx(reference, rel=1e-10, abs=1e-10)

    kl = kl_k3(logprobs_t, olds_t)
    expected_kl = [[reference_k3(-x) for x in row] for row in log_ratios]
    np.testing.assert_allclose(kl.numpy(), expected_kl, rtol=1e-12, atol=1e-12)
