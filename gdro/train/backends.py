"""How the actor's accumulated gradients become one optimizer step: plain torch, or a DeepSpeed engine.

Both take the micro-batches' losses through `backward(loss, boundary)` (boundary: the mini-batch's
last pass) and then `step()`, which returns the gradient norm BEFORE clipping. Under DeepSpeed the
gradient is averaged over the W data-parallel ranks, so the actor multiplies each loss by `ranks`
(W) and divides by the mini-batch's global token or sequence count: the update then equals a single
process's on the union of the ranks' rows, for every `loss_agg` mode.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


class TrainingBackend(Protocol):
    """Gradient accumulation over a mini-batch's micro-batches, then one clipped optimizer step."""

    ranks: int

    def begin(self) -> None: ...

    def before_forward(self) -> None: ...

    def backward(self, loss: torch.Tensor, boundary: bool) -> None: ...

    def step(self) -> float: ...


class TorchBackend:
    """One process: `loss.backward()` per micro-batch, gradient-norm clipping, `optimizer.step()`."""

    ranks = 1

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float) -> None:
        self.model = model
        self.optimizer = optimizer
        self.grad_clip = grad_clip

    def begin(self) -> None:
        """Clear the previous mini-batch's gradients."""
        self.optimizer.zero_grad(set_to_none=True)

    def before_forward(self) -> None:
        """Nothing to prepare."""

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        """Accumulate this micro-batch's gradient."""
        loss.backward()

    def step(self) -> float:
        """Clip the gradient norm to `grad_clip`, step; the norm before clipping."""
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return float(norm)


class DeepSpeedBackend:
    """A `deepspeed` engine: the accumulation boundary is set by us before every backward (uneven work per
    rank makes DeepSpeed's own counter wrong; without the flag ZeRO-2 drops the first micro-batch's
    gradients), and DeepSpeed clips (`gradient_clipping`) and steps once per mini-batch."""

    def __init__(self, engine: Any, ranks: int) -> None:
        self.engine = engine
        self.ranks = ranks
        # ZeRO-3: parameters live in shards and are gathered by every module call (a collective)
        self.partitions_parameters = engine.zero_optimization_stage() == 3

    def begin(self) -> None:
        """DeepSpeed clears the gradients in its own `step`."""

    def before_forward(self) -> None:
        """What `engine.forward` does first, since the actor calls the module's body and head itself:
        ZeRO counts micro-steps here, and without it ZeRO-3 OVERWRITES the previous micro-batches'
        gradients instead of adding to them (the 2-rank equivalence test catches it)."""
        clear = getattr(self.engine.optimizer, "clear_backward_seen_flag", None)
        if clear is not None:
            clear()

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        """Accumulate; on the boundary pass the gradients are reduced across ranks."""
        self.engine.set_gradient_accumulation_boundary(boundary)
        self.engine.backward(loss)

    def step(self) -> float:
        """Clip and step; the global gradient norm before clipping."""
        self.engine.step()
        return float(self.engine.get_global_grad_norm())
