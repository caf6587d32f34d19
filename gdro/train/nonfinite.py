"""Non-finite values in training: skipped updates, and the error that stops a run whose weights diverged.

Two ways a run meets inf / NaN:
- One update's loss or pre-clip gradient norm is not finite (a bad batch, an overflow in one backward).
  The backend skips that update: gradients zeroed, weights and optimizer state untouched
  (`gdro.train.parallel.backends`; verl does the same). `NonFiniteGuard` counts the skips
  (`optim/nonfinite_skips` per step, the running total in every checkpoint), warns naming the step and
  the mini-batch, and after `trainer.max_nonfinite_skips` consecutive skips stops the run.
- The weights diverged while staying finite (a learning rate far too high: one enormous update, then
  the next forward overflows). Where the trainer meets values it never makes on purpose (the rollout
  engine's logits, the actor's log-probs, the rewards, the weights and optimizer state about to be
  checkpointed or exported) it raises `NonFiniteError` instead of failing later in torch with a message
  that names neither the step nor the setting; no checkpoint or export is written from such weights, so
  `checkpoints/latest` keeps naming the last good one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from gdro.errors import NonFiniteError

log = logging.getLogger(__name__)


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every floating-point tensor is finite."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def require_finite(tensors: Iterable[torch.Tensor], what: str) -> None:
    """Raise `NonFiniteError(what)` unless every element of every tensor is finite."""
    if not all_finite(tensors):
        raise NonFiniteError(what)


def optimizer_tensors(optimizer: Any) -> Iterable[torch.Tensor]:
    """The weights an optimizer updates (its `param_groups`; under DeepSpeed ZeRO this rank's fp32 master
    partitions) and every tensor of its state (Adam's moments)."""
    for group in optimizer.param_groups:
        yield from group["params"]
    for state in optimizer.state.values():
        yield from (value for value in state.values() if torch.is_tensor(value))


class NonFiniteGuard:
    """Counts skipped updates and stops the run after `max_consecutive` of them in a row.

    total: skipped updates since the run began (restored from checkpoints); consecutive: the current
    run of skips, across step boundaries; last_finite_loss: the loss of the last applied update.
    """

    def __init__(self, max_consecutive: int) -> None:
        self.max_consecutive = max_consecutive
        self.total = 0
        self.consecutive = 0
        self.last_finite_loss: float | None = None

    def observe(
        self, step: int, minibatch: int, minibatches: int, loss: float, grad_norm: float, skipped: bool
    ) -> None:
        """Record one update (mini-batch `minibatch` of `minibatches`, 1-based, of `step`); warn when it was
        skipped and raise `NonFiniteError` at the `max_consecutive`-th skip in a row."""
        if not skipped:
            self.consecutive = 0
            self.last_finite_loss = loss
            return
        self.total += 1
        self.consecutive += 1
        log.warning(
            "step %d, mini-batch %d of %d: loss %s, gradient norm %s before clipping: update skipped "
            "(%d in a row; the run stops at trainer.max_nonfinite_skips=%d)",
            step, minibatch, minibatches, loss, grad_norm, self.consecutive, self.max_consecutive,
        )  # fmt: skip
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(
                f"the loss or the gradient norm of {self.consecutive} updates in a row (trainer."
                f"max_nonfinite_skips; the last: mini-batch {minibatch} of {minibatches}, loss {loss}, "
                f"norm {grad_norm}) were",
                step,
                self.last_finite_loss,
            )

    def state_dict(self) -> dict[str, Any]:
        """The counts and the last finite loss, for checkpoints (so a resumed run continues them)."""
        return {
            "total": self.total,
            "consecutive": self.consecutive,
            "last_finite_loss": self.last_finite_loss,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` gave."""
        self.total, self.consecutive = int(state["total"]), int(state["consecutive"])
        self.last_finite_loss = state["last_finite_loss"]
