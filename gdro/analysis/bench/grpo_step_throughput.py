"""Step time and peak memory of the GRPO step's model side (engine + actor) on any device and dtype.

The prompts are arithmetic questions in the byte tokenizer; the verifier is a stand-in: a rollout
scores +1 when its first generated character is a digit, so that groups disagree and the PPO updates
carry non-zero gradients whatever the (random) model writes. Everything else is the real path:
`HFEngine.generate` on token ids, group advantages, old log-probs and micro-batched `Actor.update`
with the chunked log-probs. With `zero_stage` the actor trains through DeepSpeed (ZeRO-2 or ZeRO-3, bf16
when `dtype` is, a process group of one unless torchrun made one) as `train.py trainer.backend=deepspeed`
sets it up: under ZeRO-3 the engine generates on a whole copy that follows the partitioned actor through
`gathered_parameters` after every step (the `sync` phase). Used by `scripts/gpu_check.py` (one prepared
run on a lent GPU) and tested on the CPU at toy size. It sits with the benchmarks: nothing in training
imports it.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from typing import Any

import numpy as np
import torch

from gdro.core.grpo import group_advantages
from gdro.engines.base import Decoding
from gdro.engines.hf import HFEngine, tokenize_prompts
from gdro.models.ascii_tokenizer import build_ascii_tokenizer
from gdro.models.tiny import build_tiny_qwen3
from gdro.train.actor import Actor, ActorConfig
from gdro.train.parallel.world import World


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_grpo_steps(
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    steps: int = 4,
    prompts_per_step: int = 32,
    rollouts_per_prompt: int = 4,
    max_new_tokens: int = 64,
    ppo_mini_batches: int = 2,
    max_tokens_per_microbatch: int = 16384,
    architecture: dict[str, int] | None = None,
    seed: int = 0,
    zero_stage: int | None = None,
) -> dict[str, Any]:
    """Run `steps` GRPO steps; return per-phase median seconds (steps after the first), tokens/s, peak memory."""
    torch.manual_seed(seed)
    target = torch.device(device)
    tokenizer = build_ascii_tokenizer()
    shape = architecture or {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024}  # fmt: skip
    model = build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=seed, **shape)
    parameters = sum(p.numel() for p in model.parameters())
    config = ActorConfig(
        clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0, kl_coef=0.0, loss_agg="token-mean",
        norm_length=max_new_tokens, grad_clip=1.0, temperature=1.0, surrogate_signal_kl=False,
        max_tokens_per_microbatch=max_tokens_per_microbatch,
    )  # fmt: skip
    batch_size = prompts_per_step * rollouts_per_prompt
    if zero_stage is None:
        model = model.to(target, dtype)
        actor = Actor(model, torch.optim.AdamW(model.parameters(), lr=1e-5), config)
        engine = HFEngine(model, tokenizer, batch_size=batch_size)
    else:
        actor = _deepspeed_actor(model, config, zero_stage, target, dtype)
        # ZeRO-3 partitions the actor: generate on a whole copy, as train.py does
        rollout_model = (
            actor.model
            if zero_stage == 2
            else build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=seed, **shape).to(target, dtype)
        )
        engine = HFEngine(rollout_model, tokenizer, batch_size=batch_size)
    rng = np.random.default_rng(seed)
    decoding = Decoding(temperature=1.0, max_new_tokens=max_new_tokens)
    phases: dict[str, list[float]] = {"generate": [], "logprobs": [], "update": [], "step": []}
    if zero_stage == 3:
        from gdro.train.parallel.deepspeed_zero import gathered_parameters

        phases["sync"] = []
    tokens: list[int] = []
    if target.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target)
    for _ in range(steps):
        questions = [f"Compute {a}+{b}. Answer:" for a, b in rng.integers(0, 100, (prompts_per_step, 2))]
        prompt_ids = tokenize_prompts(tokenizer, questions)
        clock = {"start": time.perf_counter()}
        generations = engine.generate(prompt_ids, [rollouts_per_prompt] * prompts_per_step, decoding)
        _synchronise(target)
        clock["generated"] = time.perf_counter()
        rewards = np.array([1.0 if text[:1].isdigit() else -1.0 for text in generations.texts])
        advantages = group_advantages(
            torch.tensor(rewards, dtype=torch.float32), torch.as_tensor(generations.prompt_index)
        ).to(target)
        parts = np.array_split(np.arange(len(rewards)), ppo_mini_batches)
        rows = [([generations.prompt_token_ids[r] for r in part], [generations.completion_token_ids[r] for r in part])
                for part in parts]  # fmt: skip
        old = [actor.logprobs(*pair)[0] for pair in rows]
        _synchronise(target)
        clock["scored"] = time.perf_counter()
        for (prompts, completions), part, old_logprobs in zip(rows, parts, old, strict=True):
            actor.update(prompts, completions, advantages[part], old_logprobs)
        _synchronise(target)
        clock["updated"] = time.perf_counter()
        if zero_stage == 3:
            engine.sync_weights(gathered_parameters(actor.model))
            _synchronise(target)
            phases["sync"].append(time.perf_counter() - clock["updated"])
            clock["updated"] = time.perf_counter()
        phases["generate"].append(clock["generated"] - clock["start"])
        phases["logprobs"].append(clock["scored"] - clock["generated"])
        phases["update"].append(clock["updated"] - clock["scored"])
        phases["step"].append(clock["updated"] - clock["start"])
        tokens.append(sum(len(c) for c in generations.completion_token_ids))
    later = slice(1, None) if steps > 1 else slice(None)  # the first step pays for warm-up
    step_seconds = statistics.median(phases["step"][later])
    return {
        "device": torch.cuda.get_device_name(target) if target.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "zero_stage": zero_stage,
        "parameters": parameters,
        "rollouts_per_step": batch_size,
        "median_seconds": {name: statistics.median(values[later]) for name, values in phases.items()},
        "generated_tokens_per_second": statistics.median(tokens[later]) / step_seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated(target) / 2**30 if target.type == "cuda" else None,
        "finite_parameters": all(bool(torch.isfinite(p).all()) for p in engine.model.parameters()),
    }


def _deepspeed_actor(
    model: torch.nn.Module, config: ActorConfig, stage: int, device: torch.device, dtype: torch.dtype
) -> Actor:
    """The actor training `model` through a DeepSpeed engine at ZeRO `stage` (fp32 or bf16 as `dtype`),
    on the process group torchrun made or on a new one of this process alone. Imported here: the config
    classes bring Hydra, which the torch-only runs (and a bare GPU machine) do without."""
    from gdro.config.deepspeed import DeepSpeedConfig
    from gdro.config.trainer import TrainerConfig
    from gdro.train.parallel.backends import DeepSpeedBackend
    from gdro.train.parallel.deepspeed_zero import ds_config, initialize

    if not torch.distributed.is_initialized():  # a world of one, described as torchrun would
        with socket.socket() as probe:  # a free port for its rendezvous
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        single = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
        for key, value in {**single, "MASTER_PORT": str(port)}.items():
            os.environ.setdefault(key, value)
        if device.type == "cuda":
            torch.cuda.set_device(device.index or 0)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    precision = "bf16" if dtype == torch.bfloat16 else "fp32"
    settings = DeepSpeedConfig(name=f"zero{stage}", stage=stage, precision=precision)
    trainer = TrainerConfig(lr=1e-5, grad_clip=config.grad_clip, kl_coef=0.0)
    ds_model = initialize(model, ds_config(settings, trainer, on_gpu=device.type == "cuda"))
    world = World(size=torch.distributed.get_world_size(), rank=torch.distributed.get_rank())
    return Actor(ds_model.module, None, config, DeepSpeedBackend(ds_model, world), world)
