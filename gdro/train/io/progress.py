"""Training progress: a tqdm bar on a terminal, a few status lines in a log file (SLURM, nohup, CI).

A bar redraws itself on every step; in a file each redraw is a new line, so a 1,500-step run fills its
log with thousands of them. When stderr is not a terminal, `Progress` logs one line instead at every
`every_steps`-th step (default: 20 lines over the run), whenever `every_seconds` have passed since the
last line, and at the last step:

    step 750/1500 (50%) reward +0.412 pass_rate 0.706 | 0.012 s/step, 9 s left
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)


class Progress:
    """Steps `start + 1 .. total` with the latest reward and pass rate; silent when `enabled` is False."""

    def __init__(
        self,
        start: int,
        total: int,
        *,
        enabled: bool = True,
        interactive: bool | None = None,
        every_steps: int | None = None,
        every_seconds: float = 60.0,
    ) -> None:
        self.start, self.total = start, total
        self.enabled = enabled
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.every_steps = every_steps if every_steps is not None else max(1, total // 20)
        self.every_seconds = every_seconds
        self.began = self.last_line = time.monotonic()
        self.bar = tqdm(initial=start, total=total, disable=not (enabled and self.interactive))

    def update(self, step: int, reward: float, pass_rate: float) -> None:
        """Step `step` is done: advance the bar, or log a status line when one is due."""
        if not self.enabled:
            return
        if self.interactive:
            self.bar.update(1)
            self.bar.set_postfix(reward=f"{reward:+.3f}", pass_rate=f"{pass_rate:.3f}")
            return
        now = time.monotonic()
        due = step % self.every_steps == 0 or now - self.last_line >= self.every_seconds
        if not due and step != self.total:
            return
        self.last_line = now
        seconds_per_step = (now - self.began) / max(1, step - self.start)
        log.info(
            "step %d/%d (%.0f%%) reward %+.3f pass_rate %.3f | %.3g s/step, %.0f s left",
            step,
            self.total,
            100.0 * step / self.total,
            reward,
            pass_rate,
            seconds_per_step,
            seconds_per_step * (self.total - step),
        )

    def close(self) -> None:
        """End the bar (nothing to do for status lines)."""
        self.bar.close()
