"""Step time, its phases and peak memory of the GRPO step `train.py` runs, on any device and dtype.

`measure_grpo_steps(overrides)` composes the run config `python train.py OVERRIDES` would run, builds the
curriculum and the learner as the training loop does (`gdro.train.build`: the model, the engine, the
actor with its torch or DeepSpeed backend, the task and its reward), and runs `steps` steps of
`HFLearner.train_step` (`gdro.train.grpo_step.grpo_step`, prompt groups cut into PPO mini-batches, the
curriculum's plans). Nothing is re-implemented: the phases are timed by wrapping the learner's own
objects for the duration (the device synchronised around each call):
  generate   the rollout engine's `generate`
  logprobs   the actor's `logprobs` (old, and reference when trainer.kl_coef > 0)
  update     the actor's `update` (every PPO mini-batch and epoch)
  sync       the engine's `sync_weights` after the updates (a no-op on the actor's own weights)
  step       the whole `train_step` (also reward, advantages and the outcome's gather)
The update's achieved TFLOP/s counts 6 N FLOPs per token it trains on (prompt and completion, N
parameters: forward and backward, attention's own FLOPs left out) plus 2 N for the recomputed forward
under gradient checkpointing: a lower bound. Used by `scripts/gpu_check.py` (one prepared run on a lent
GPU) and tested on the CPU at toy size; nothing in training imports it.
"""

from __future__ import annotations

import atexit
import os
import socket
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from gdro.analysis.results.sweep import compose_run_config
from gdro.config import parse_run_config
from gdro.train.build import build_curriculum, build_learner
from gdro.train.parallel.world import World, destroy_group

PHASES = ("generate", "logprobs", "update", "sync", "step")
# (the learner's attribute, its method, the phase it is timed as)
TIMED = (
    ("engine", "generate", "generate"),
    ("actor", "logprobs", "logprobs"),
    ("actor", "update", "update"),
    ("engine", "sync_weights", "sync"),
)
BENCH_OVERRIDES = ("logger=none", "resume=null")


def measure_grpo_steps(overrides: Sequence[str] = (), steps: int = 4) -> dict[str, Any]:
    """Run `steps` real GRPO steps of the run `overrides` configure; per-phase median seconds (steps after
    the first, which pays for warm-up), generated tokens/s, the update's TFLOP/s and peak memory."""
    run = parse_run_config(compose_run_config([*BENCH_OVERRIDES, *overrides]))
    torch.manual_seed(run.seed)
    torch.set_num_threads(run.trainer.torch_threads)
    world = _deepspeed_world() if run.trainer.backend == "deepspeed" else World()
    learner = build_learner(run, world)
    try:
        curriculum = build_curriculum(run, learner.num_prompts)
        device = learner.model.device
        # ZeRO-3 partitions the actor: its engine's whole copy holds every parameter
        parameters = learner.engine.model.num_parameters()
        per_call: dict[str, list[float]] = {key: [] for key in (*PHASES, "update_tokens")}
        per_step: dict[str, list[float]] = {key: [] for key in per_call}
        generated, rollouts = [], 0
        with ExitStack() as timing:
            for owner, name, phase in TIMED:
                timing.enter_context(
                    _timed(
                        getattr(learner, owner), name, phase, per_call, device, count_tokens=phase == "update"
                    )
                )
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(steps):
                began = time.perf_counter()
                plan = curriculum.plan(run.trainer.prompts_per_step)
                outcome = learner.train_step(plan)
                curriculum.observe(
                    plan, outcome.correct_per_prompt, outcome.surrogate_loss, outcome.tokens_per_prompt
                )
                _synchronise(device)
                per_call["step"].append(time.perf_counter() - began)
                for key, values in per_call.items():  # a step's calls of each phase, summed
                    per_step[key].append(sum(values))
                    values.clear()
                generated.append(outcome.generated_tokens)
                rollouts = int(plan.rollouts_per_prompt.sum())
        later = slice(1, None) if steps > 1 else slice(None)
        medians = {phase: statistics.median(per_step[phase][later]) for phase in PHASES}
        update_tokens = statistics.median(per_step["update_tokens"][later])
        checkpointed = getattr(run.model, "gradient_checkpointing", False)  # model=tiny has no such setting
        flops_per_token = (8 if checkpointed else 6) * parameters
        return {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "dtype": str(learner.model.dtype).removeprefix("torch."),
            "zero_stage": run.deepspeed.stage if run.trainer.backend == "deepspeed" else None,
            "overrides": list(overrides),
            "parameters": parameters,
            "rollouts_per_step": rollouts,
            "ppo_mini_batches": run.trainer.ppo_mini_batches,
            "max_new_tokens": run.trainer.max_new_tokens,
            "median_seconds": medians,
            "generated_tokens_per_second": statistics.median(generated[later]) / medians["step"],
            "update_tokens": update_tokens,
            "update_tflops": flops_per_token * update_tokens / medians["update"] / 1e12,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30
            if device.type == "cuda"
            else None,
            "finite_parameters": all(
                bool(torch.isfinite(p).all()) for p in learner.engine.model.parameters()
            ),
        }
    finally:
        learner.close()


@contextmanager
def _timed(
    owner: Any,
    name: str,
    phase: str,
    per_call: dict[str, list[float]],
    device: torch.device,
    count_tokens: bool = False,
) -> Iterator[None]:
    """While open, each call of `owner.name` appends its seconds to per_call[phase] (the device synchronised
    before and after); with `count_tokens`, the prompt + completion tokens of the rows with a completion
    in its first two arguments to per_call["update_tokens"]."""
    original: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        _synchronise(device)
        began = time.perf_counter()
        result = original(*args, **kwargs)
        _synchronise(device)
        per_call[phase].append(time.perf_counter() - began)
        if count_tokens:
            prompts, completions = args[:2]
            per_call["update_tokens"].append(
                sum(len(p) + len(c) for p, c in zip(prompts, completions, strict=True) if c)
            )
        return result

    setattr(owner, name, timed)  # on the instance: the learner's own calls find it
    try:
        yield
    finally:
        delattr(owner, name)  # the class's method again


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _deepspeed_world() -> World:
    """The ranks torchrun described, or a world of one described as torchrun would (DeepSpeed needs a
    process group): the same variables, a free port for its rendezvous."""
    if "RANK" not in os.environ:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        single = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
        os.environ.update({**single, "MASTER_PORT": str(port)})
    world = World.from_env()
    if not torch.distributed.is_initialized():  # a world of one: from_env leaves it to us
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(destroy_group)
    return world
