"""How the actor's weights are trained and kept: plain torch, or DeepSpeed (ZeRO-2 / ZeRO-3).

A backend takes the micro-batches' losses through `backward(loss, boundary)` (boundary: the mini-batch's
last pass) and then `step()`, which returns the gradient norm BEFORE clipping and whether the update was
applied: when a micro-batch's loss or the norm is not finite, the update is skipped (gradients zeroed,
weights and optimizer state untouched; `gdro.train.nonfinite` counts the skips). Under DeepSpeed every
rank takes the same decision: ZeRO-2 and ZeRO-3 skip a step whose global (all-reduced) gradient norm is
not finite, in fp32 and in bf16 (`check_grad_overflow`, set in `ds_config`), and a rank whose loss is not
finite makes its gradients NaN, hence the global norm, hence every rank's step. Under DeepSpeed the
gradient is averaged over the W data-parallel ranks, so the actor multiplies each loss by `ranks`
(W) and divides by the mini-batch's global token or sequence count: the update then equals a single
process's on the union of the ranks' rows, for every `loss_agg` mode.

It also owns what the weights and the optimizer are on disk and on the wire: `save` / `load` write and
read a checkpoint's `policy.pt` (with the learner's own entries, e.g. its schedule) and, under DeepSpeed,
every rank's shards (`deepspeed/`); `weights` gives the whole weights by name, for the rollout engine's
sync and for exports.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

from gdro.engines.base import full_state
from gdro.train.parallel.world import World

POLICY_FILE = "policy.pt"  # model, optimizer (torch) and the learner's entries, in every checkpoint
DEEPSPEED_TAG = "deepspeed"  # the sub-folder of DeepSpeed's shards


class TrainingBackend(Protocol):
    """Gradient accumulation over a mini-batch's micro-batches, one clipped optimizer step, and the state."""

    ranks: int
    partitions_parameters: bool
    optimizer: Any

    def begin(self) -> None: ...

    def before_forward(self) -> None: ...

    def backward(self, loss: torch.Tensor, boundary: bool) -> None: ...

    def step(self) -> tuple[float, bool]: ...

    def save(self, directory: Path, extra: dict[str, Any]) -> None: ...

    def load(self, directory: Path) -> dict[str, Any]: ...

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]: ...


class TorchBackend:
    """One process: `loss.backward()` per micro-batch, gradient-norm clipping, `optimizer.step()`."""

    ranks = 1
    partitions_parameters = False

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float) -> None:
        self.model = model
        self.optimizer = optimizer
        self.grad_clip = grad_clip
        self.losses_finite = True  # every micro-batch loss of the mini-batch so far

    def begin(self) -> None:
        """Clear the previous mini-batch's gradients."""
        self.optimizer.zero_grad(set_to_none=True)
        self.losses_finite = True

    def before_forward(self) -> None:
        """Nothing to prepare."""

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        """Accumulate this micro-batch's gradient."""
        self.losses_finite = self.losses_finite and bool(torch.isfinite(loss))
        loss.backward()

    def step(self) -> tuple[float, bool]:
        """Clip the gradient norm to `grad_clip` and step (as `clip_grad_norm_` then `optimizer.step()`),
        unless a loss or the norm is not finite: then zero the gradients instead. Returns the norm before
        clipping and whether the step was applied."""
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
        if not (self.losses_finite and bool(torch.isfinite(norm))):
            self.optimizer.zero_grad(set_to_none=True)
            return float(norm), False
        torch.nn.utils.clip_grads_with_norm_(parameters, self.grad_clip, norm)
        self.optimizer.step()
        return float(norm), True

    def save(self, directory: Path, extra: dict[str, Any]) -> None:
        """`policy.pt`: the model's and the optimizer's state (exact, for resume) and `extra`."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), **extra}
        torch.save(state, directory / POLICY_FILE)

    def load(self, directory: Path) -> dict[str, Any]:
        """Restore what `save` wrote; returns its `extra` entries."""
        state = torch.load(directory / POLICY_FILE, weights_only=True)
        self.model.load_state_dict(state.pop("model"))
        self.optimizer.load_state_dict(state.pop("optimizer"))
        return state

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        """The module's own tensors under every name, tied head included (`full_state`)."""
        return full_state(self.model)


class DeepSpeedBackend:
    """A model wrapped by `deepspeed.initialize` (`ds_model`): the accumulation boundary is set by us before
    every backward (uneven work per rank makes DeepSpeed's own counter wrong; without the flag ZeRO-2 drops
    the first micro-batch's gradients), and DeepSpeed clips (`gradient_clipping`) and steps once per
    mini-batch."""

    def __init__(self, ds_model: Any, world: World) -> None:
        self.ds_model = ds_model
        self.world = world
        self.ranks = world.size
        # ZeRO-3: parameters live in shards and are gathered by every module call (a collective)
        self.partitions_parameters = ds_model.zero_optimization_stage() == 3

    @property
    def optimizer(self) -> Any:
        """DeepSpeed's (ZeRO) optimizer, whose `param_groups` the learning-rate schedule sets."""
        return self.ds_model.optimizer

    def begin(self) -> None:
        """DeepSpeed clears the gradients in its own `step`."""

    def before_forward(self) -> None:
        """What `ds_model.forward` does first, since the actor calls the module's body and head itself:
        ZeRO counts micro-steps here, and without it ZeRO-3 OVERWRITES the previous micro-batches'
        gradients instead of adding to them (the 2-rank equivalence test catches it)."""
        clear = getattr(self.ds_model.optimizer, "clear_backward_seen_flag", None)
        if clear is not None:
            clear()

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        """Accumulate; on the boundary pass the gradients are reduced across ranks. A loss that is not
        finite backpropagates as NaN (NaN x 0 is NaN: every gradient it reaches), so that the global norm
        is NaN and every rank's DeepSpeed skips the step."""
        if not bool(torch.isfinite(loss)):
            loss = loss * float("nan")
        self.ds_model.set_gradient_accumulation_boundary(boundary)
        self.ds_model.backward(loss)

    def step(self) -> tuple[float, bool]:
        """Clip and step, or skip a step whose global gradient norm is not finite (DeepSpeed zeroes the
        gradients and leaves the weights and optimizer state); the global norm before clipping (inf when
        skipped) and whether the step was applied."""
        self.ds_model.step()
        return float(self.ds_model.get_global_grad_norm()), bool(self.ds_model.was_step_applied())

    def save(self, directory: Path, extra: dict[str, Any]) -> None:
        """Every rank writes its shards of the weights and optimizer (`deepspeed/`); rank 0 `policy.pt`
        with `extra`."""
        self.ds_model.save_checkpoint(str(directory), tag=DEEPSPEED_TAG, save_latest=False)
        if self.world.is_main:
            torch.save(extra, directory / POLICY_FILE)

    def load(self, directory: Path) -> dict[str, Any]:
        """Restore this rank's shards; returns `policy.pt`'s `extra` entries."""
        extra = torch.load(directory / POLICY_FILE, weights_only=True)
        self.ds_model.load_checkpoint(str(directory), tag=DEEPSPEED_TAG)
        return extra

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        """The whole weights by name: under ZeRO-3 gathered one parameter at a time (a collective: every
        rank must consume them all; a tied head under both its names), else the module's own tensors
        (`full_state`)."""
        if self.partitions_parameters:
            from gdro.train.parallel.deepspeed_zero import gathered_parameters

            return gathered_parameters(self.ds_model.module)
        return full_state(self.ds_model.module)
