"""Rollout throughput of the hf and vllm engines on the CPU: `make bench-engines` (runs in .venv-vllm).

The embedded task's defaults (the warm-started tiny Qwen3 from the cache, 64 prompts x 4 rollouts,
max_new_tokens 64, temperature 1): each engine generates one untimed batch, then `--repeats` timed batches
of the same plan (new seeds each time); throughput = generated tokens / seconds, median over repeats.
Then the median time of one vLLM weight sync (`sync_weights(full_state(model))`: reload + prefix-cache
reset) and its health signal, the max |log pi_vllm - log pi_actor| over the last batch's tokens.
Both engines run in the same process and thread settings (`OMP_NUM_THREADS=1`, as the Makefile sets).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gdro.config import parse_run_config, register_configs
from gdro.engines.base import Generations, full_state
from gdro.engines.hf import HFEngine
from gdro.train.actor import completion_logprobs
from gdro.train.build import build_learner

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def timed(generate, repeats: int) -> tuple[float, float, Generations]:
    """Median tokens per second and seconds per batch over `repeats` timed calls, and the last batch."""
    generate(0)
    rates, seconds = [], []
    for repeat in range(1, repeats + 1):
        began = time.perf_counter()
        generations = generate(repeat)
        elapsed = time.perf_counter() - began
        seconds.append(elapsed)
        rates.append(sum(len(tokens) for tokens in generations.completion_token_ids) / elapsed)
    return statistics.median(rates), statistics.median(seconds), generations


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the run config")
    args = parser.parse_args()
    register_configs()
    overrides = ["logger=none", "policy.engine=vllm", f"policy.vllm.kv_cache_memory_bytes={256 << 20}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        config = compose(config_name="config", overrides=[*overrides, *args.overrides])
    run = parse_run_config(OmegaConf.to_container(config, resolve=True))
    torch.manual_seed(run.seed)
    policy = build_learner(run)
    trainer = run.trainer
    prompts = policy.task.prompt_token_ids[: trainer.prompts_per_step]
    counts = [int(run.budget.nbar)] * len(prompts)
    decoding = policy.rollout_sampling
    engines = {"hf": HFEngine(policy.model, policy.tokenizer), "vllm": policy.engine}
    print(f"{len(prompts)} prompts x {counts[0]} rollouts, max_new_tokens {decoding.max_new_tokens}")
    print("| engine | generated tokens / s | s per batch |\n|---|---|---|")
    last = None
    for name, engine in engines.items():
        rate, seconds, last = timed(
            lambda repeat, engine=engine: engine.generate(
                prompts, counts, decoding, seeds=[repeat * 1000 + i for i in range(len(prompts))]
            ),
            args.repeats,
        )
        print(f"| {name} | {rate:,.0f} | {seconds:.3f} |")
    syncs = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        policy.engine.sync_weights(full_state(policy.model))
        syncs.append(time.perf_counter() - began)
    with torch.no_grad():
        actor, mask = completion_logprobs(
            policy.model, last.prompt_token_ids, last.completion_token_ids, decoding.temperature
        )
    sampler = torch.zeros_like(actor)
    for row, values in enumerate(last.sampler_logprobs):
        sampler[row, : len(values)] = torch.tensor(values)
    gap = float(((actor - sampler).abs() * mask).max())
    parameters = sum(p.numel() for p in policy.model.parameters())
    print(
        f"\nvLLM weight sync ({parameters:,} parameters): {1000 * statistics.median(syncs):.1f} ms (median)"
    )
    print(f"max |log pi_vllm - log pi_actor| over {int(mask.sum())} tokens: {gap:.2e}")
    policy.close()


if __name__ == "__main__":
    main()
