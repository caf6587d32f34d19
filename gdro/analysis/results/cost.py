"""GPU-hours of one training run, from a stated FLOP model (no throughput was measured at the paper's sizes).

Symbols; the assumptions come from a plan's `cost:` block (`CostModel`), the rest from the job's resolved
config, so an override (more steps, another nbar) changes the estimate:

    N        policy parameters (the plan's scale)
    M        prompts per step (trainer.prompts_per_step); nbar rollouts per prompt (allocator.nbar)
    S        = M nbar sequences per step (every allocator spends exactly nbar M rollouts)
    P, R     mean prompt and response tokens per sequence (assumed, not measured; R < max_new_tokens)
    T        = S (P + R) tokens per step
    K        steps (trainer.steps); e PPO epochs (trainer.ppo_epochs)
    r        1 when a frozen reference model is run (trainer.kl_coef > 0), else 0
    g        1 with gradient checkpointing (model.gradient_checkpointing: one more forward), else 0
    E        evaluation prompts: the summed sizes of eval.benchmarks; k samples each (trainer.eval_samples)
    V        evaluations: at step 0, every eval_every steps and at step K,
             V = 1 + floor(K / eval_every) + [K mod eval_every != 0]
    F        peak dense bf16 FLOP/s of one GPU; u_gen, u_train its utilisation generating and training

FLOPs, with 2 N per token for a forward pass and 4 N for a backward pass (attention's terms in the
sequence length squared are left out; every sequence prefills its own prompt):

    generation   G = K * 2 N T
    training     U = K * c N T,   c = 2 (old log-probs) + 2 r (reference) + e (6 + 2 g) (PPO update)
    evaluation   Q = V * E k * 2 N (P + R)

    GPU-hours = (G / u_gen + U / u_train + Q / u_gen) / F / 3600

GPU-hours do not depend on how many GPUs share a job: a job on n GPUs takes GPU-hours / n hours of wall
time at the same utilisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class CostModel:
    """The assumptions of the module docstring's model. prompt_tokens, response_tokens: P and R; peak_flops:
    F (FLOP/s per GPU); generation_utilization, train_utilization: u_gen and u_train; eval_prompts:
    benchmark name -> its prompts (E sums those of eval.benchmarks)."""

    prompt_tokens: float
    response_tokens: float
    peak_flops: float
    generation_utilization: float
    train_utilization: float
    eval_prompts: Mapping[str, int]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CostModel:
        """From a plan's `cost:` block; a missing or unknown key is a ValueError naming it."""
        expected = {
            "prompt_tokens",
            "response_tokens",
            "peak_flops",
            "generation_utilization",
            "train_utilization",
            "eval_prompts",
        }
        if set(values) != expected:
            raise ValueError(
                f"cost: expected keys {sorted(expected)}; missing {sorted(expected - set(values))}, "
                f"unknown {sorted(set(values) - expected)}"
            )
        numbers = {key: float(values[key]) for key in expected - {"eval_prompts"}}
        return cls(**numbers, eval_prompts={name: int(n) for name, n in values["eval_prompts"].items()})


@dataclass(frozen=True)
class CostEstimate:
    """GPU-hours of one run by phase: generation (G), training (U) and evaluation (Q)."""

    generation: float
    training: float
    evaluation: float

    @property
    def total(self) -> float:
        return self.generation + self.training + self.evaluation


def evaluations(steps: int, eval_every: int) -> int:
    """V = 1 + floor(K / eval_every) + [K mod eval_every != 0]: step 0, every eval_every steps, step K."""
    return 1 + steps // eval_every + (1 if steps % eval_every else 0)


def train_flops_per_token(parameters: float, config: Mapping[str, Any]) -> float:
    """c N with c = 2 + 2 r + e (6 + 2 g): old log-probs, reference, and e epochs of PPO updates."""
    trainer = config["trainer"]
    reference = 1 if trainer["kl_coef"] > 0 else 0
    checkpointing = 1 if config["model"].get("gradient_checkpointing", False) else 0
    return (2 + 2 * reference + trainer["ppo_epochs"] * (6 + 2 * checkpointing)) * parameters


def estimate_gpu_hours(config: Mapping[str, Any], parameters: float, model: CostModel) -> CostEstimate:
    """The GPU-hours of the module docstring for one run of the resolved `config` with N = `parameters`.

    Evaluation sets other than named benchmarks (the embedded task's levels, which have no
    `eval.benchmarks`) count E = 0; a benchmark missing from `model.eval_prompts` is a ValueError.
    """
    trainer = config["trainer"]
    tokens_per_sequence = model.prompt_tokens + model.response_tokens
    tokens_per_step = trainer["prompts_per_step"] * config["allocator"]["nbar"] * tokens_per_sequence
    steps = trainer["steps"]
    benchmarks = config["eval"].get("benchmarks", [])
    unknown = [name for name in benchmarks if name not in model.eval_prompts]
    if unknown:
        raise ValueError(f"cost: no prompt count for the benchmarks {unknown} (cost.eval_prompts)")
    eval_prompts = sum(model.eval_prompts[name] for name in benchmarks)
    eval_tokens = eval_prompts * trainer["eval_samples"] * tokens_per_sequence

    def hours(flops: float, utilization: float) -> float:
        return flops / (model.peak_flops * utilization) / SECONDS_PER_HOUR

    return CostEstimate(
        generation=hours(steps * 2 * parameters * tokens_per_step, model.generation_utilization),
        training=hours(
            steps * train_flops_per_token(parameters, config) * tokens_per_step, model.train_utilization
        ),
        evaluation=hours(
            evaluations(steps, trainer["eval_every"]) * 2 * parameters * eval_tokens,
            model.generation_utilization,
        ),
    )
