"""A run limited by generated compute: `trainer.budget_rollouts` or `trainer.budget_tokens` (B), with
evaluations at fixed fractions of it (`trainer.eval_every_budget`, f), so that every method is evaluated
at the same generated compute whatever its step count.

    spent_t      compute/rollouts_generated_total (or compute/tokens_generated_total) after step t
    the run      stops after the first step t with spent_t >= B (evaluation, final export, checkpoint),
                 or at trainer.steps, whichever comes first: trainer.steps stays the cap (the learning
                 rate is warm-up then constant, so no schedule depends on where the run stops)
    thresholds   tau_k = ceil(k f B), k = 1, 2, ... while k f < 1 (within 1e-6); the budget B itself last
    evaluation   at step t when spent_{t-1} < tau_k <= spent_t for some k; its record holds
                 compute/budget_fraction = k f of the largest such k (1.0 at the budget; spent_t / B at a
                 last step reached by the steps cap first; 0.0 at step 0)

Without `eval_every_budget` a budgeted run evaluates every `trainer.eval_every` steps and at its last
step; with it, the budget's fractions replace the step schedule. Everything here depends on the totals
alone, which checkpoints keep: a resumed run evaluates and stops where the uninterrupted one did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ROLLOUTS = "rollouts"
TOKENS = "tokens"
FRACTION_KEY = "compute/budget_fraction"
_TOTAL_KEYS = {ROLLOUTS: "compute/rollouts_generated_total", TOKENS: "compute/tokens_generated_total"}
_DIGITS = 4  # compute/budget_fraction is rounded to this many decimals


@dataclass(frozen=True)
class ComputeBudget:
    """B generated `unit`s (rollouts or tokens); evaluations at multiples of `eval_fraction` of B
    (None: on the trainer's step schedule)."""

    unit: str
    limit: int
    eval_fraction: float | None = None

    @classmethod
    def from_trainer(cls, trainer: Any) -> ComputeBudget | None:
        """The budget of a `TrainerConfig` or of a resolved config's `trainer` dict (configs written before
        these keys existed have none); None when both budgets are null."""

        def get(name: str) -> Any:
            return trainer.get(name) if isinstance(trainer, dict) else getattr(trainer, name)

        rollouts, tokens = get("budget_rollouts"), get("budget_tokens")
        if rollouts is None and tokens is None:
            return None
        unit, limit = (ROLLOUTS, rollouts) if rollouts is not None else (TOKENS, tokens)
        return cls(unit, int(limit), get("eval_every_budget"))

    @property
    def total_key(self) -> str:
        """The metrics.jsonl key of the spent total."""
        return _TOTAL_KEYS[self.unit]

    def spent(self, rollouts_total: int, tokens_total: int | None) -> int:
        """The spent total of this budget's unit (tokens None: a policy without tokens, counted as 0)."""
        if self.unit == ROLLOUTS:
            return rollouts_total
        return 0 if tokens_total is None else tokens_total

    def reached(self, spent: int) -> bool:
        """spent >= B."""
        return spent >= self.limit

    def thresholds(self) -> list[tuple[float, int]]:
        """(k f, tau_k) for every evaluation threshold, the budget (1.0, B) last."""
        steps: list[tuple[float, int]] = []
        if self.eval_fraction is not None:
            k = 1
            while k * self.eval_fraction < 1.0 - 1e-6:
                fraction = k * self.eval_fraction
                steps.append((round(fraction, _DIGITS), math.ceil(fraction * self.limit - 1e-9)))
                k += 1
        return [*steps, (1.0, self.limit)]

    def crossing(self, before: int, after: int) -> float | None:
        """k f of the largest threshold with before < tau_k <= after; None when the step crossed none."""
        crossed = [fraction for fraction, tau in self.thresholds() if before < tau <= after]
        return crossed[-1] if crossed else None

    def fraction(self, spent: int) -> float:
        """spent / B, rounded as compute/budget_fraction is."""
        return round(spent / self.limit, _DIGITS)
