"""The prepared GPU check (docs/scaling.md, "GPU"): the GRPO step `train.py` runs, in bf16 on CUDA.

    python scripts/gpu_check.py OUT.json [--deepspeed-only] [--steps N] [OVERRIDE ...]

Runs `gdro.analysis.bench.grpo_step_throughput.measure_grpo_steps` (the learner built as `train.py` builds
it, `HFLearner.train_step` timed phase by phase: generate, old/ref log-probs, update, weight sync) for the
random tiny Qwen3 of `conf/model/tiny_ascii.yaml` and a wider one (hidden 1024, 8 layers) with torch
AdamW, then for a random Qwen3 of about 300M parameters (hidden 1024, 24 layers) trained through
DeepSpeed ZeRO-2 and ZeRO-3 on a process group of one; OVERRIDEs (Hydra, as for train.py) apply to every
run. OUT.json is rewritten after each, so a run cut short keeps what it measured. The DeepSpeed runs need
DeepSpeed installed (`DS_BUILD_OPS=0`, its wheel carried to a machine without internet).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gdro.analysis.bench.grpo_step_throughput import measure_grpo_steps

GPU = ["model=tiny_ascii", "model.device=cuda", "model.dtype=bfloat16", "deepspeed.precision=bf16"]
STEP = [
    "trainer.prompts_per_step=64",
    "allocator.nbar=4",
    "trainer.max_new_tokens=256",
    "trainer.kl_coef=0",
    "trainer.warmup_steps=0",
    "trainer.lr=1e-5",
    "policy.generation_batch_size=256",
]
WIDE = ["model.hidden_size=1024", "model.intermediate_size=3072", "model.num_hidden_layers=8",
        "model.num_attention_heads=16", "model.num_key_value_heads=8", "model.max_position_embeddings=2048"]  # fmt: skip
DEEP = [*WIDE, "model.num_hidden_layers=24"]  # about 300M parameters


def planned_runs(deepspeed_only: bool, overrides: list[str]) -> list[tuple[str, list[str]]]:
    """(name, the run's overrides) of every run the check makes, in order."""
    shapes = [] if deepspeed_only else [("tiny_ascii", []), ("wide_8x1024", WIDE)]
    shapes += [
        (f"deep_24x1024_zero{stage}", [*DEEP, "trainer.backend=deepspeed", f"deepspeed=zero{stage}"])
        for stage in (2, 3)
    ]
    return [(name, [*GPU, *STEP, *shape, *overrides]) for name, shape in shapes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--deepspeed-only", action="store_true", help="skip the torch AdamW runs")
    parser.add_argument("--steps", type=int, default=5, help="steps per run (the first is warm-up)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run")
    args = parser.parse_args(argv)
    results: dict[str, object] = {"versions": {"torch": torch.__version__, "cuda": torch.version.cuda}}
    for name, overrides in planned_runs(args.deepspeed_only, args.overrides):
        results[name] = measure_grpo_steps(overrides, steps=args.steps)
        text = json.dumps(results, indent=2)
        print(text, flush=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
