"""A test-only fault: NaN gradients on chosen updates, with the loss left finite.

`poison_updates(updates, rank)` wraps the backward of both training backends: the mini-batch loss of
this process's `updates`-th optimizer updates (1-based, counted at each mini-batch's boundary pass, as
they come across steps and resumes in this process) goes through `NaNGradient`, whose forward is the
identity and whose backward is NaN, so every gradient of that update is NaN while the loss it reports
stays what it was. Only rank `rank` is poisoned (None: every rank), so that 2-rank runs show that every
rank skips the same updates (RANK, as torchrun sets it). Nothing outside tests imports this.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import torch

from gdro.train.parallel.backends import DeepSpeedBackend, TorchBackend


class NaNGradient(torch.autograd.Function):
    """y = x; dL/dx = NaN (NaN times any gradient, zero included, is NaN)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, value: torch.Tensor) -> torch.Tensor:
        return value.clone()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("nan")


def poison_updates(updates: Iterable[int], rank: int | None = None) -> Callable[[], None]:
    """Poison the gradients of these updates of this process (see the module docstring); returns the undo."""
    chosen = set(updates)
    mine = rank is None or int(os.environ.get("RANK", "0")) == rank
    count = {"boundaries": 0}
    originals = {backend: backend.backward for backend in (TorchBackend, DeepSpeedBackend)}

    def wrap(original: Callable) -> Callable:
        def backward(self: object, loss: torch.Tensor, boundary: bool) -> None:
            if boundary:
                count["boundaries"] += 1
                if mine and count["boundaries"] in chosen:
                    loss = NaNGradient.apply(loss)
            original(self, loss, boundary)

        return backward

    for backend, original in originals.items():
        backend.backward = wrap(original)

    def undo() -> None:
        for backend, original in originals.items():
            backend.backward = original

    return undo
