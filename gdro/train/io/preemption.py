"""Checkpoint at a step boundary on SLURM's warning signals, so a preempted or timed-out run loses no steps.

SLURM (through submitit's `signal_delay_s`) sends SIGUSR2 some seconds before it kills a job that reaches
its time limit or is preempted; `scancel` (and a preemption, per submitit) sends SIGTERM. `StopSignals`
replaces the handlers of both for the duration of the loop with one that only records the signal. The
loop asks `requested()` after each step (all ranks agree through one max-reduction), writes a
checkpoint, and calls `hand_on()`, which gives the signal to the handler that was installed before:

- outside submitit that is the default action of both signals: the process exits, with status 128 +
  signal (SystemExit, so `finally` blocks run);
- under submitit, SIGUSR2 goes to its `checkpoint_and_try_requeue`: on rank 0 it runs `scontrol
  requeue` (same job, same overrides, same run folder) and exits, and the rerun resumes from the
  checkpoint (`resume: auto`); when the job has used up `max_num_timeout` it raises instead and the job
  fails. SIGTERM goes to a handler that only logs (submitit expects SIGUSR2 or the kill to follow), so
  training goes on until one of them comes: nothing since the checkpoint is lost either way.

The step in flight when the signal came is finished first: `signal_delay_s` must exceed one step plus
one checkpoint.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)

Handler = Callable[[int, FrameType | None], Any] | int | None


class StopSignals:
    """A context manager that turns `signals` into a request the loop honours at its next step boundary.

    Installs nothing outside the main thread (Python delivers signals there only) or for a signal
    whose handler is SIG_IGN (someone chose to ignore it).
    """

    def __init__(self, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received: list[signal.Signals] = []  # in order of arrival, each once
        self._announced = 0  # how many of `received` `requested` has logged
        self._previous: dict[signal.Signals, Handler] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                previous = signal.getsignal(signum)
                if previous is not signal.SIG_IGN:
                    self._previous[signum] = previous
                    signal.signal(signum, self._record)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def _record(self, signum: int, frame: FrameType | None) -> None:
        """The handler: remember the signal (a SIGTERM does not hide the SIGUSR2 that follows it).

        It logs nothing: a handler runs between two bytecodes of the main thread, possibly inside a
        log write of the loop or of submitit's own handler (SLURM sends SIGCONT just before SIGUSR2),
        and a nested write to the same file fails ("reentrant call inside BufferedWriter"), so
        `logging` drops the line. `requested` announces it instead."""
        if signal.Signals(signum) not in self.received:
            self.received.append(signal.Signals(signum))

    def requested(self) -> bool:
        """Whether a signal has arrived (this process) since the last `hand_on`; logs each new one once,
        from the loop's own flow."""
        while self._announced < len(self.received):  # one arriving meanwhile is logged too
            log.warning("received %s: checkpoint after this step", self.received[self._announced].name)
            self._announced += 1
        return bool(self.received)

    def hand_on(self, step: int) -> None:
        """After the checkpoint of `step`: give each signal received, in order, to the handler installed
        before ours (module docstring); returns when those handlers do (training goes on, and later
        signals are caught again). Another rank's signal alone (this one's may still be on its way)
        hands nothing on."""
        received, self.received, self._announced = self.received, [], 0
        for signum in received:
            log.warning("checkpoint of step %d written; handing %s on", step, signum.name)
            previous = self._previous.get(signum)
            if not callable(previous):
                raise SystemExit(128 + signum)
            previous(signum, None)  # submitit: requeue and exit (SIGUSR2 on rank 0), or log (SIGTERM)

    def _restore(self) -> None:
        """Put the handlers back as they were."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}
