"""The error a run stops with when it meets inf or NaN it did not make on purpose (the weights diverged, or
updates overflowed): raised by the rollout engines, the actor, the step and the checkpoint and export
guards alike, so it lives beside them all rather than in any one (`gdro.train.nonfinite` counts the
skipped updates that come before it)."""

from __future__ import annotations

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
