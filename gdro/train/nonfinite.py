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

log = logging.getLogger(__name__)

SETTINGS_TO_CHECK = (
    "trainer.lr (lower it)",
    "model.dtype (bfloat16 rounds far more coarsely than float32)",
    "trainer.clip_ratio_c (the dual clip bounds the loss of negative-advantage tokens)",
    "trainer.grad_clip (the global gradient-norm clip)",
)


class NonFiniteError(RuntimeError):
    """Training met inf or NaN it cannot go on from: `what` was not finite at `step` (None while a step is
    not yet known; `HFLearner` fills it in), after the last finite update loss `last_finite_loss`."""

    def __init__(self, what: str, step: int | None = None, last_finite_loss: float | None = None) -> None:
        self.what, self.step, self.last_finite_loss = what, step, last_finite_loss
        where = f"step {step}: " if step is not None else ""
        loss = "none yet" if last_finite_loss is None else f"{last_finite_loss:.6g}"
        super().__init__(
            f"{where}{what} not finite; the last finite update loss: {loss}. The weights diverged or an "
            f"update overflowed: look at {', '.join(SETTINGS_TO_CHECK)}. Checkpoints and exports are never "
            "written from non-finite weights: checkpoints/latest, if any, holds finite ones."
        )

    def at(self, step: int, last_finite_loss: float | None) -> NonFiniteError:
        """This error with its step and last finite loss (those it has already are kept)."""
        return NonFiniteError(
            self.what,
            self.step if self.step is not None else step,
            self.last_finite_loss if self.last_finite_loss is not None else last_finite_loss,
        )


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
