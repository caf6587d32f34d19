"""A pool of worker processes that scores (text, answer) pairs under a hard per-item deadline.

Why processes: math-verify's parser and sympy run for seconds to forever on hostile model output
(`10^{10^{10^{10}}}`, `(10^{10})!`, 30 nested parentheses: tests/fixtures/reward_fuzz), and
math-verify's own timeout is `signal.alarm`, which works only in a process's main thread. A signal
interrupts Python code and the CPython big-integer and regex loops (probed on 3.11), but not C
extensions that never check for signals (gmpy2 / python-flint, which sympy uses for its integers
when installed), and it cannot undo a crash: only a process that can be killed bounds every item.

Design:
- N workers, each a daemonic process with its own duplex pipe. The parent sends one item at a time
  to an idle worker and waits on all pipes with `multiprocessing.connection.wait`, whose timeout is
  the earliest deadline of the busy workers.
- Two deadlines per item. Soft, in the worker: a real-time interval timer fires at
  `SOFT_DEADLINE_FRACTION * deadline_s` and raises `SoftDeadline` (a BaseException, so library code
  that catches `Exception` cannot swallow it); the worker answers "timeout" and stays alive. Hard, in
  the parent: a worker still busy `deadline_s` after the item was sent is SIGKILLed and replaced
  (C code that never checks for signals does not see the soft timer). Both score -1 and count in
  `timeouts`. The soft path keeps the worker, so a timeout costs no process start.
- An exception from the scoring function (a parser failing on garbage) scores -1 and counts in
  `errors`; a worker that dies mid-item (e.g. a C stack overflow) likewise, and is replaced. The
  first message of each call is logged. A worker that dies before it is ready is a configuration
  error (its module cannot be imported) and raises.
- Context "forkserver": the parent may hold torch and its threads, so no plain fork; the fork server
  is a fresh single-threaded process that imports `preload` once, after which starting or replacing
  a worker is a cheap fork instead of a fresh interpreter importing sympy. The preload list is
  process-wide and only the first pool that starts the fork server sets it; later pools whose
  modules are not preloaded still work, their workers import them on start.
- Workers ignore SIGINT: a Ctrl-C in the terminal reaches the whole process group, and the parent,
  not the workers, decides what to do; `close()`, garbage collection of the pool, and
  multiprocessing's exit handler (workers are daemonic) all kill them.
- As with any spawn/forkserver pool, the main script must guard its entry point with
  `if __name__ == "__main__":` (workers import it as `__mp_main__`); otherwise the first worker
  fails during start-up and `score` raises RuntimeError.
- Items are scored in any order across workers; results are returned in input order.
Costs (probed on 2 shared CPU cores): ~90 us of pipe round trip per item; a worker forks and is
ready in ~10 ms plus its initializer (math-verify's warm-up: ~0.2 s).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

import numpy as np

logger = logging.getLogger(__name__)

ScoreFn = Callable[[str, str], float]
SOFT_DEADLINE_FRACTION = 0.8
START_TIMEOUT_S = 120.0
_CONTEXT = multiprocessing.get_context("forkserver")


class SoftDeadline(BaseException):
    """Raised inside a worker by its interval timer when an item overruns the soft deadline."""


@dataclass(frozen=True)
class PoolResult:
    """Scores of one call (float64, shape [len(items)], -1 where no score came back) and counts."""

    scores: np.ndarray
    timeouts: int
    errors: int


def _raise_soft_deadline(signum: int, frame: object) -> None:
    raise SoftDeadline


def _score_one(score_fn: ScoreFn, text: str, answer: str, soft_deadline_s: float) -> tuple[str, float]:
    """("ok", score), ("timeout", -1.0) or ("error", -1.0) for one item, under the soft deadline."""
    try:
        signal.setitimer(signal.ITIMER_REAL, soft_deadline_s)
        try:
            return "ok", float(score_fn(text, answer))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except SoftDeadline:
        return "timeout", -1.0
    # Hostile text makes third-party parsers raise anything; the item scores -1, the parent logs it.
    except Exception as error:  # noqa: BLE001
        logger.debug("scoring failed", exc_info=True)
        return "error:" + repr(error)[:200], -1.0


def _worker_main(
    conn: Connection, score_fn: ScoreFn, initializer: Callable[[], None] | None, soft_deadline_s: float
) -> None:
    """Worker loop: answer ("ready",) once, then (index, status, score) per (index, text, answer)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _raise_soft_deadline)
    if initializer is not None:
        initializer()
    conn.send(("ready",))
    while True:
        try:
            index, text, answer = conn.recv()
        except EOFError:  # the parent closed the pipe or died
            return
        conn.send((index, *_score_one(score_fn, text, answer, soft_deadline_s)))


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    item: int | None = None
    deadline: float = 0.0


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.process.kill()
    for worker in workers:
        worker.process.join()
        worker.conn.close()


class ScoringPool:
    """`workers` processes that apply `score_fn(text, answer) -> float` with a `deadline_s` per item.

    `score_fn` and `initializer` must be module-level functions (they are pickled by name);
    `initializer()` runs once in each worker before it reports ready (warm-up, logging).
    `preload` names modules the fork server imports once (see the module docstring).
    One caller at a time: `score` is not thread-safe.
    """

    def __init__(
        self,
        score_fn: ScoreFn,
        workers: int = 4,
        deadline_s: float = 5.0,
        initializer: Callable[[], None] | None = None,
        preload: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        self.score_fn = score_fn
        self.deadline_s = deadline_s
        self.initializer = initializer
        self.respawns = 0
        _CONTEXT.set_forkserver_preload(["__main__", *preload])
        self._workers = [self._start_worker() for _ in range(workers)]
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = _CONTEXT.Pipe(duplex=True)
        soft_deadline_s = SOFT_DEADLINE_FRACTION * self.deadline_s
        process = _CONTEXT.Process(
            target=_worker_main,
            args=(child_conn, self.score_fn, self.initializer, soft_deadline_s),
            name="reward-worker",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn, deadline=time.monotonic() + START_TIMEOUT_S)

    def _replace(self, worker: _Worker) -> None:
        _kill_all([worker])
        self._workers[self._workers.index(worker)] = self._start_worker()
        self.respawns += 1

    def score(self, items: Sequence[tuple[str, str]]) -> PoolResult:
        """Score every (text, answer) item; each gets at most `deadline_s` of a worker's time."""
        if self.closed:
            raise RuntimeError("ScoringPool is closed")
        scores = np.full(len(items), -1.0)
        statuses: list[str] = []
        todo = deque(range(len(items)))
        try:
            while len(statuses) < len(items):
                self._dispatch(items, todo)
                for index, status, value in self._next_outcomes():
                    scores[index] = value
                    statuses.append(status)
        finally:
            if len(statuses) < len(items):  # interrupted: busy workers would answer stale items later
                self.close()
        errors = [status for status in statuses if status.startswith("error")]
        if errors:
            logger.warning("%d reward item(s) failed; first: %s", len(errors), errors[0])
        return PoolResult(scores, statuses.count("timeout"), len(errors))

    def _next_outcomes(self) -> list[tuple[int, str, float]]:
        """Wait until a worker answers or a deadline passes; the (index, status, score) items finished."""
        pending = [w for w in self._workers if not w.ready or w.item is not None]
        wait_s = max(0.0, min(w.deadline for w in pending) - time.monotonic())
        answered = set(wait([w.conn for w in pending], wait_s))
        outcomes = []
        for worker in pending:
            if worker.conn in answered:
                outcome = self._receive(worker)
            elif time.monotonic() >= worker.deadline:
                outcome = self._overrun(worker)
            else:
                outcome = None
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _dispatch(self, items: Sequence[tuple[str, str]], todo: deque[int]) -> None:
        for worker in self._workers:
            if not todo:
                return
            if worker.ready and worker.item is None:
                index = todo.popleft()
                text, answer = items[index]
                try:
                    worker.conn.send((index, text, answer))
                except (BrokenPipeError, ConnectionResetError):  # died while idle: retry elsewhere
                    todo.appendleft(index)
                    self._replace(worker)
                    continue
                worker.item = index
                worker.deadline = time.monotonic() + self.deadline_s

    def _receive(self, worker: _Worker) -> tuple[int, str, float] | None:
        """The finished item (index, status, score) of a worker that answered, or None."""
        try:
            message = worker.conn.recv()
        except EOFError:  # the worker died
            if not worker.ready:
                worker.process.join(1.0)
                code = worker.process.exitcode
                raise RuntimeError(f"reward worker exited during start-up (exit code {code})") from None
            index = worker.item
            self._replace(worker)
            return index, "error: worker died", -1.0
        if message == ("ready",):
            worker.ready = True
            return None
        worker.item = None
        return message

    def _overrun(self, worker: _Worker) -> tuple[int, str, float]:
        if not worker.ready:
            raise RuntimeError(f"reward worker not ready after {START_TIMEOUT_S} s")
        index = worker.item
        self._replace(worker)
        return index, "timeout", -1.0

    @property
    def closed(self) -> bool:
        """True after `close()`, or after a `score` call was interrupted (its workers are gone)."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Kill all workers (they hold no state). Idempotent."""
        self._finalizer()

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
