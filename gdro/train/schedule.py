"""The learning-rate schedule: linear warm-up to `lr` over `warmup` steps, then constant.

lr_t = lr * min(1, (t + 1) / max(warmup, 1)) for RL step t = 0, 1, ... (every PPO update of step t uses
lr_t). It sets `param_groups[*]["lr"]` of whatever optimizer it is given, torch's or DeepSpeed's ZeRO
optimizer (not a torch Optimizer, so torch's LambdaLR cannot drive it), and its state is the step count
(`last_epoch`, as torch's schedulers name it, so checkpoints of either load).
"""

from __future__ import annotations

from typing import Any


class WarmupSchedule:
    """Linear warm-up, then constant; `step()` once per RL step."""

    def __init__(self, optimizer: Any, lr: float, warmup: int) -> None:
        self.optimizer = optimizer
        self.lr = lr
        self.warmup = max(warmup, 1)
        self.last_epoch = 0
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The rate of the current step, per parameter group."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance to the next RL step."""
        self.last_epoch += 1
        self._apply()

    def state_dict(self) -> dict[str, int]:
        """The step count."""
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the saved step count."""
        self.last_epoch = int(state["last_epoch"])
        self._apply()

    def _apply(self) -> None:
        rate = self.lr * min(1.0, (self.last_epoch + 1) / self.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
