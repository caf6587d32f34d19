"""Where a trainer's step time goes: wall time per phase, by wrapping the methods that run each phase.

A phase is entered when a wrapped method is called and left when it returns. Phases nest (TRL generates
inside its training step): each call's seconds are its own, those of the phases called inside it taken
out, so the phases of one thread of control never count a second twice. Every call is kept as
(phase, start, own seconds) with `time.perf_counter()` times, and `seconds_between` sums the calls that
started inside a window (the benchmark's timed steps, which leave evaluation out).

The phases (`PHASES`) and the methods wrapped for each:
  generate  ours: `HFEngine.generate` (all of a step's completions); TRL: `GRPOTrainer._generate`
            (tokenize the prompts, `model.generate`, decode);
  old, ref  ours: `Actor.logprobs` of the policy / of the reference (`model=`); TRL: the gradient-free
            `_get_per_token_logps_and_entropies` of `trainer.model` / of `trainer.ref_model`;
  update    ours: `Actor.update` (forward, backward, clip, optimizer step of one update); TRL:
            `training_step` (forward, backward; its generation batch's preparation taken out) and the
            optimizer step (torch's global optimizer pre- and post-step hooks);
  score     TRL's `_generate_and_score_completions` less the phases inside it (rewards, advantages,
            padding); ours does the same work between its phases and counts it in `other`.
The rest of a step (`other` in the report) is its seconds less these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import wraps
from typing import Any

from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

PHASES = ("generate", "old", "ref", "update")


class PhaseTimer:
    """Own seconds of nested phase calls (module docstring)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []  # (phase, start, own seconds)
        self._open: list[list[Any]] = []  # [phase, start, seconds of the calls inside]

    def enter(self, phase: str) -> None:
        """Start a call of `phase` (inside the call open now, if any)."""
        self._open.append([phase, time.perf_counter(), 0.0])

    def leave(self) -> None:
        """End the innermost open call; its whole time counts as inner time of the one around it."""
        phase, start, inner = self._open.pop()
        total = time.perf_counter() - start
        self.calls.append((phase, start, total - inner))
        if self._open:
            self._open[-1][2] += total

    def wrap(self, call: Callable[..., Any], phase: Callable[..., str | None]) -> Callable[..., Any]:
        """`call`, timed as phase(*args, **kwargs) (untimed where that is None)."""

        @wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = phase(*args, **kwargs)
            if name is None:
                return call(*args, **kwargs)
            self.enter(name)
            try:
                return call(*args, **kwargs)
            finally:
                self.leave()

        return timed

    @contextmanager
    def patched(self, owner: Any, attribute: str, phase: Callable[..., str | None]) -> Iterator[None]:
        """owner.attribute timed as `phase` while the context is open (a class's method or an instance's)."""
        own = vars(owner).get(attribute)  # a class's own method (restored after), or None: an instance's
        setattr(owner, attribute, self.wrap(getattr(owner, attribute), phase))
        try:
            yield
        finally:
            if own is None:
                delattr(owner, attribute)  # the method inherited from the class shows again
            else:
                setattr(owner, attribute, own)

    @contextmanager
    def optimizer_steps(self) -> Iterator[None]:
        """Every torch optimizer step timed as `update` (global pre- and post-step hooks)."""
        pre = register_optimizer_step_pre_hook(lambda *_: self.enter("update"))
        post = register_optimizer_step_post_hook(lambda *_: self.leave())
        try:
            yield
        finally:
            pre.remove()
            post.remove()

    def seconds_between(self, start: float, end: float) -> dict[str, float]:
        """Own seconds per phase of the calls that started in [start, end)."""
        totals = dict.fromkeys(PHASES, 0.0)
        for phase, began, seconds in self.calls:
            if start <= began < end:
                totals[phase] = totals.get(phase, 0.0) + seconds
        return totals


@contextmanager
def our_phases(timer: PhaseTimer) -> Iterator[None]:
    """Time our trainer's phases (module docstring) while open: the classes' methods are wrapped."""
    from gdro.engines.hf import HFEngine
    from gdro.train.actor import Actor

    with ExitStack() as stack:
        stack.enter_context(timer.patched(HFEngine, "generate", lambda *_, **__: "generate"))
        stack.enter_context(
            timer.patched(Actor, "logprobs", lambda *args, model=None, **_: "old" if model is None else "ref")
        )
        stack.enter_context(timer.patched(Actor, "update", lambda *_, **__: "update"))
        yield


@contextmanager
def trl_phases(timer: PhaseTimer, trainer: Any) -> Iterator[None]:
    """Time a `GRPOTrainer`'s phases (module docstring) while open: the instance's methods are wrapped, and
    every optimizer step (TRL steps outside `training_step`)."""
    import torch

    def logprob_phase(model: Any, *_: Any, **__: Any) -> str | None:
        if torch.is_grad_enabled():  # the loss's own forward: part of the update
            return None
        return "ref" if model is trainer.ref_model else "old"

    with ExitStack() as stack:
        stack.enter_context(timer.patched(trainer, "_generate", lambda *_, **__: "generate"))
        stack.enter_context(timer.patched(trainer, "_get_per_token_logps_and_entropies", logprob_phase))
        stack.enter_context(timer.patched(trainer, "_generate_and_score_completions", lambda *_: "score"))
        stack.enter_context(timer.patched(trainer, "training_step", lambda *_, **__: "update"))
        stack.enter_context(timer.optimizer_steps())
        yield
