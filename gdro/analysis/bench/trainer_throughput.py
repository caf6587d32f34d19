"""Throughput of our GRPO trainer (`gdro.train.loop.train`, what `train.py` runs) against TRL's `GRPOTrainer`
on the same base model, tokenizer, prompts, reward and settings, in this process: for each torch thread count,
`repeats` runs of each trainer, interleaved (ours, TRL, ours, TRL, ...) so that the machine's load falls on
both alike.

A step is one generation batch in both trainers: M prompts x G completions, then ppo_epochs x ppo_mini_batches
optimizer updates on them (TRL's own `global_step` counts updates; it is divided back). Each trainer runs
`warmup + steps` steps. What is measured, with one instrument for both (torch's global optimizer-step hook,
which fires after every optimizer update of any trainer):
  seconds    wall clock from the last update of step `warmup` to the last update of step `warmup + steps`:
             generation, reward, old and reference log-probs, the updates, and each trainer's own per-step
             bookkeeping (our curriculum and metrics.jsonl line, TRL's logging); evaluation and checkpoints
             fall outside (ours evaluates before the first and after the last update);
  steps/s    steps / seconds (each timed step's own seconds, last update to last update, are kept too);
  tokens/s   generated completion tokens of the timed steps (up to and including eos, no padding) / seconds;
             ours from metrics.jsonl's tokens/generated, TRL's counted in its reward function, which gets
             every completion's token ids (and checked against TRL's own logged mean completion length);
  phases     own seconds of generation, old and reference log-probs and the updates inside the timed steps
             (`gdro.analysis.bench.phase_timer`: the methods that run each phase, wrapped in both trainers).
The TRL settings are derived from our run config (`trl_settings`); `gdro.analysis.bench.trainer_report` states what is
matched and what cannot be.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from gdro.analysis.bench.phase_timer import PhaseTimer, our_phases, trl_phases
from gdro.analysis.results.sweep import compose_run_config
from gdro.config import HFPolicyConfig, RunConfig, SyntheticDatasetConfig, TinyModelConfig, parse_run_config
from gdro.rewards import Reward
from gdro.train.io.checkpoint import resolve_resume
from gdro.train.loop import train

# Our run: no W&B, a fresh start; its evaluations (outside the clock) at one sample, at one sampling.
OUR_OVERRIDES = (
    "logger=none",
    "resume=null",
    "trainer.eval_samples=1",
    "trainer.eval_at_rollout_temperature=false",
)
# our trainer.loss_agg -> TRL's loss_type (same aggregation over one update's batch)
LOSS_TYPES = {"token-mean": "bnpo", "seq-mean-token-mean": "grpo", "seq-mean-token-sum-norm": "dr_grpo"}
# our trainer.adv_std -> TRL's scale_rewards (TRL's group std is Bessel-corrected, like ours)
REWARD_SCALING = {"unbiased": "group", "none": "none"}
TRAINERS = ("ours", "trl")


@dataclass
class TrainerThroughput:
    """One trainer's run; completions, generated_tokens and reward_mean hold one entry per step (generation
    batch), warm-up steps first; step_seconds one per timed step."""

    trainer: str
    repeat: int  # which run of this trainer at this thread count (0, 1, ...)
    warmup_steps: int
    timed_steps: int
    step_seconds: list[float]  # wall clock of each timed step, last update to last update
    optimizer_updates: int  # all of them, warm-up included
    completions: list[int]  # completions generated per step
    generated_tokens: list[int]  # completion tokens generated per step
    reward_mean: list[float]  # mean reward of the step's completions
    max_parameter_change: float  # max |theta_end - theta_0| over every parameter
    torch_threads: int  # torch.get_num_threads() after the run
    load_average: tuple[float, float]  # the machine's 1-minute load average before and after the run
    phase_seconds: dict[str, float]  # own seconds of each phase in the timed steps (`phase_timer.PHASES`)

    @property
    def seconds(self) -> float:
        """Wall clock of the timed steps (module docstring)."""
        return sum(self.step_seconds)

    @property
    def steps_per_second(self) -> float:
        """Timed steps / seconds."""
        return self.timed_steps / self.seconds

    @property
    def tokens_per_second(self) -> float:
        """Generated completion tokens of the timed steps / seconds."""
        return sum(self.generated_tokens[self.warmup_steps :]) / self.seconds

    def as_json(self) -> dict[str, Any]:
        """The fields and both rates."""
        return {
            **asdict(self),
            "seconds": self.seconds,
            "steps_per_second": self.steps_per_second,
            "tokens_per_second": self.tokens_per_second,
        }


class UpdateClock:
    """time.perf_counter() after every optimizer update of any torch optimizer, while `running`."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @contextmanager
    def running(self) -> Iterator[UpdateClock]:
        """Record through torch's global optimizer-step post hook, removed on exit."""
        handle = register_optimizer_step_post_hook(
            lambda optimizer, args, kwargs: self.times.append(time.perf_counter())
        )
        try:
            yield self
        finally:
            handle.remove()

    def step_seconds(self, warmup: int, steps: int, updates_per_step: int) -> list[float]:
        """Steps warmup + 1 .. warmup + steps (warmup >= 1), each from the last update of the step before to
        its own last update."""
        return [end - start for start, end in pairwise(self._step_ends(warmup, steps, updates_per_step))]

    def phases(self, timer: PhaseTimer, warmup: int, steps: int, updates_per_step: int) -> dict[str, float]:
        """`timer`'s own seconds per phase in the timed steps' window (the `step_seconds` window)."""
        ends = self._step_ends(warmup, steps, updates_per_step)
        return timer.seconds_between(ends[0], ends[-1])

    def _step_ends(self, warmup: int, steps: int, updates_per_step: int) -> list[float]:
        ends = self.times[warmup * updates_per_step - 1 :: updates_per_step]
        if len(ends) != steps + 1:
            raise RuntimeError(f"{len(self.times)} updates, not {(warmup + steps) * updates_per_step}")
        return ends


def benchmark_config(overrides: Sequence[str], steps: int, warmup: int) -> tuple[RunConfig, dict[str, Any]]:
    """Our run config (validated) and its resolved dict: `OUR_OVERRIDES`, then `overrides`, then the step count
    with evaluation, checkpoint and heatmaps only at the end (after the clock stops)."""
    if warmup < 1 or steps < 1:
        raise ValueError(
            f"warmup={warmup}, steps={steps}: need at least 1 of each (the clock starts at a warm-up step)"
        )
    total = warmup + steps
    schedule = [f"trainer.{key}={total}" for key in ("steps", "eval_every", "save_every", "plot_every")]
    config = compose_run_config([*OUR_OVERRIDES, *overrides, *schedule])
    run = parse_run_config(config)
    check_comparable(run)
    return run, config


def check_comparable(run: RunConfig) -> None:
    """Refuse a config TRL cannot run like for like, naming the setting."""
    t = run.trainer
    problems = []
    if run.sampler != "uniform" or run.allocator != "fixed":
        problems.append(
            f"sampler={run.sampler} allocator={run.allocator}: TRL draws prompts uniformly and gives each the same "
            "number of completions; use sampler=uniform allocator=fixed"
        )
    if not isinstance(run.model, TinyModelConfig) or not isinstance(run.dataset, SyntheticDatasetConfig):
        problems.append("the benchmark runs model=tiny on dataset=synthetic")
    if not isinstance(run.policy, HFPolicyConfig) or run.policy.engine != "hf" or t.backend != "torch":
        problems.append("the benchmark runs policy=hf with policy.engine=hf and trainer.backend=torch")
    if run.budget.nbar != int(run.budget.nbar) or run.budget.nbar < 2:
        problems.append(f"allocator.nbar={run.budget.nbar}: TRL's num_generations is an integer >= 2")
    if t.prompts_per_step % t.ppo_mini_batches:
        problems.append(
            f"trainer.prompts_per_step={t.prompts_per_step} is not a multiple of trainer.ppo_mini_batches="
            f"{t.ppo_mini_batches}: TRL's updates all take the same number of rows"
        )
    if t.loss_agg not in LOSS_TYPES or t.adv_std not in REWARD_SCALING:
        problems.append(
            f"trainer.loss_agg in {sorted(LOSS_TYPES)} and trainer.adv_std in {sorted(REWARD_SCALING)}"
        )
    if problems:
        raise ValueError("not comparable with TRL: " + "; ".join(problems))


def updates_per_step(run: RunConfig) -> int:
    """Optimizer updates per generation batch: ppo_epochs x ppo_mini_batches."""
    return run.trainer.ppo_epochs * run.trainer.ppo_mini_batches


def trl_settings(run: RunConfig, steps: int) -> dict[str, Any]:
    """`GRPOConfig` keyword arguments (but output_dir) matching our run config for `steps` generation batches.

    One generation batch of M G completions (generation_batch_size = per_device_train_batch_size x
    steps_per_generation) is split into ppo_mini_batches updates of M G / ppo_mini_batches rows, each one
    forward/backward (gradient_accumulation_steps = 1), ppo_epochs times (num_iterations)."""
    t = run.trainer
    rollouts = int(run.budget.nbar)
    return {
        "num_generations": rollouts,
        "per_device_train_batch_size": t.prompts_per_step * rollouts // t.ppo_mini_batches,
        "gradient_accumulation_steps": 1,
        "steps_per_generation": t.ppo_mini_batches,
        "num_iterations": t.ppo_epochs,
        "max_steps": steps * updates_per_step(run),
        "max_completion_length": t.max_new_tokens,
        "temperature": t.temperature,
        "top_p": t.top_p,
        "top_k": t.top_k,
        "learning_rate": t.lr,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": t.warmup_steps * updates_per_step(run),
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.grad_clip,
        "optim": "adamw_torch",
        "beta": t.kl_coef,
        "epsilon": t.clip_low,
        "epsilon_high": t.clip_high,
        "loss_type": LOSS_TYPES[t.loss_agg],
        "scale_rewards": REWARD_SCALING[t.adv_std],
        "seed": run.seed,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def base_model_path(run: RunConfig) -> Path:
    """The cached base model both trainers start from (trained into the cache the first time)."""
    from gdro.models.base_model import ensure_base_model

    return ensure_base_model(
        Path(run.cache_dir), run.dataset.task(), run.model.architecture(), run.model.warm_start, device="cpu"
    )


def max_change(state: dict[str, torch.Tensor], initial: dict[str, torch.Tensor]) -> float:
    """max over parameters of |state - initial|."""
    return max(float((state[name] - value).abs().max()) for name, value in initial.items())


def run_ours(
    run: RunConfig, config: dict[str, Any], run_dir: Path, warmup: int, repeat: int = 0
) -> TrainerThroughput:
    """`train` (what `python train.py` runs) for warmup + steps steps into `run_dir`."""
    from gdro.models.base_model import load_base_model

    load_before = os.getloadavg()[0]
    clock, timer = UpdateClock(), PhaseTimer()
    with clock.running(), our_phases(timer):
        records = train(run, run_dir, config, progress=False)
    steps = records[1:]  # records[0]: the evaluation at step 0
    timed = len(steps) - warmup
    final = torch.load(resolve_resume("latest", run_dir) / "policy.pt", weights_only=True)["model"]
    initial = load_base_model(base_model_path(run))[0].state_dict()
    return TrainerThroughput(
        trainer="ours",
        repeat=repeat,
        warmup_steps=warmup,
        timed_steps=timed,
        step_seconds=clock.step_seconds(warmup, timed, updates_per_step(run)),
        optimizer_updates=len(clock.times),
        completions=[record["rollouts/total"] for record in steps],
        generated_tokens=[record["tokens/generated"] for record in steps],
        reward_mean=[record["reward/mean"] for record in steps],
        max_parameter_change=max_change(final, initial),
        torch_threads=torch.get_num_threads(),
        load_average=(load_before, os.getloadavg()[0]),
        phase_seconds=clock.phases(timer, warmup, timed, updates_per_step(run)),
    )


def counting_reward(
    reward: Reward, name: str, counts: list[tuple[int, int, float]]
) -> Callable[..., list[float]]:
    """A TRL reward function scoring with `reward` against the dataset's `answer` column; each call (one
    generation batch) appends (completions, completion tokens, mean reward) to `counts`."""

    def score(
        completions: list[str], completion_ids: list[list[int]], answer: list[str], **_: Any
    ) -> list[float]:
        rewards = reward.rewards(completions, answer)
        counts.append((len(completion_ids), sum(len(ids) for ids in completion_ids), float(rewards.mean())))
        return [float(value) for value in rewards]

    score.__name__ = name  # TRL names the reward's metrics after the function
    return score


def run_trl(run: RunConfig, output_dir: Path, warmup: int, steps: int, repeat: int = 0) -> TrainerThroughput:
    """TRL's `GRPOTrainer` with `trl_settings` on a fresh copy of the base model, our tokenizer, the synthetic
    task's train split (plain-text prompts) and our reward, for warmup + steps generation batches."""
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from gdro.data.synthetic import build_synthetic_splits
    from gdro.models.base_model import load_base_model
    from gdro.rewards import build_reward

    torch.set_num_threads(run.trainer.torch_threads)
    model, tokenizer = load_base_model(base_model_path(run))
    initial = {name: value.detach().clone() for name, value in model.state_dict().items()}
    prompts, _ = build_synthetic_splits(run.dataset.task())
    reward = build_reward(run.reward.name, **run.reward.options())
    counts: list[tuple[int, int, float]] = []
    load_before = os.getloadavg()[0]
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=counting_reward(reward, run.reward.name, counts),
        args=GRPOConfig(output_dir=str(output_dir), **trl_settings(run, warmup + steps)),
        train_dataset=prompts,
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)  # its log lines go to stdout; log_history keeps them
    clock, timer = UpdateClock(), PhaseTimer()
    try:
        with clock.running(), trl_phases(timer, trainer):
            trainer.train()
    finally:
        reward.close()
    logged = [
        entry["completions/mean_length"]
        for entry in trainer.state.log_history
        if "completions/mean_length" in entry
    ]
    counted = [tokens / completions for completions, tokens, _ in counts]
    if len(logged) != len(counted) or any(abs(a - b) > 1e-3 for a, b in zip(logged, counted, strict=True)):
        raise RuntimeError(
            f"TRL logged mean completion lengths {logged}, the reward function counted {counted}"
        )
    return TrainerThroughput(
        trainer="trl",
        repeat=repeat,
        warmup_steps=warmup,
        timed_steps=steps,
        step_seconds=clock.step_seconds(warmup, steps, updates_per_step(run)),
        optimizer_updates=len(clock.times),
        completions=[completions for completions, _, _ in counts],
        generated_tokens=[tokens for _, tokens, _ in counts],
        reward_mean=[mean for _, _, mean in counts],
        max_parameter_change=max_change(trainer.model.state_dict(), initial),
        torch_threads=torch.get_num_threads(),
        load_average=(load_before, os.getloadavg()[0]),
        phase_seconds=clock.phases(timer, warmup, steps, updates_per_step(run)),
    )


def run_benchmark(
    overrides: Sequence[str] = (),
    steps: int = 20,
    warmup: int = 2,
    threads: Sequence[int] = (1, 2),
    repeats: int = 3,
    order: Sequence[str] = TRAINERS,
) -> tuple[dict[int, RunConfig], dict[int, dict[str, Any]], list[TrainerThroughput]]:
    """Both trainers on our config with `overrides`, in this process: for each torch thread count in `threads`,
    `repeats` rounds, each running the trainers in `order` (A B A B ...). Our run config and its resolved
    dict per thread count, and every run's throughput in the order they ran."""
    if sorted(order) != sorted(TRAINERS):
        raise ValueError(f"order={list(order)}: name each of {TRAINERS} once")
    if repeats < 1 or not threads:
        raise ValueError(
            f"repeats={repeats}, threads={list(threads)}: need one run at one thread count at least"
        )
    runs, configs, results = {}, {}, []
    for count in threads:
        runs[count], configs[count] = benchmark_config(
            [*overrides, f"trainer.torch_threads={count}"], steps, warmup
        )
    first = runs[threads[0]]
    torch.set_num_threads(first.trainer.torch_threads)  # the base model's warm start too, when not cached
    base_model_path(first)  # build the base model (if not cached) before any clock runs
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as scratch:
        for count in threads:
            for repeat in range(repeats):
                for name in order:
                    where = Path(scratch) / f"{name}-{count}-{repeat}"
                    if name == "ours":
                        results.append(run_ours(runs[count], configs[count], where, warmup, repeat))
                    else:
                        results.append(run_trl(runs[count], where, warmup, steps, repeat))
    return runs, configs, results
