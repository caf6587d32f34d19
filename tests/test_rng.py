"""Side streams: evaluation draws from its own generator and leaves the training stream untouched."""

from __future__ import annotations

import torch

from gdro.train.rng import isolated_rng, side_stream_seed


def test_the_training_stream_continues_as_if_the_body_never_ran() -> None:
    torch.manual_seed(0)
    expected = torch.rand(5)
    torch.manual_seed(0)
    with isolated_rng(seed=0, step=7, purpose="eval"):
        torch.rand(1000)
    assert torch.equal(torch.rand(5), expected)


def test_the_side_stream_depends_on_seed_step_and_purpose_only() -> None:
    def draw(seed: int, step: int, purpose: str) -> torch.Tensor:
        torch.manual_seed(int(torch.randint(0, 2**31, (1,))))  # whatever state the caller is in
        with isolated_rng(seed, step, purpose):
            return torch.rand(4)

    assert torch.equal(draw(1, 50, "eval"), draw(1, 50, "eval"))
    assert not torch.equal(draw(1, 50, "eval"), draw(1, 100, "eval"))
    assert not torch.equal(draw(1, 50, "eval"), draw(2, 50, "eval"))
    assert not torch.equal(draw(1, 50, "eval"), draw(1, 50, "plot"))


def test_side_stream_seeds_fit_torch_and_differ() -> None:
    seeds = {side_stream_seed(s, t, "eval") for s in range(5) for t in range(50)}
    assert len(seeds) == 250
    assert all(0 <= s < 2**63 for s in seeds)
