"""The prepared GPU check (docs/scaling.md, "GPU"): the GRPO step's model
side in bf16 on CUDA.

    python scripts/gpu_check.py OUT.json [--deepspeed-only]

Runs `gdro.analysis.bench.grpo_step_throughput.measure_grpo_steps` for the tiny model of `conf/model/tiny_ascii.yaml` and for
a wider one (hidden 1024, 8 layers) with torch AdamW, then for a random Qwen3 of about 300M parameters
(hidden 1024, 24 layers) trained through DeepSpeed ZeRO-2 and ZeRO-3 on a process group of one, in bf16 on
cuda; OUT.json is rewritten after each, so a run cut short keeps what it measured. The DeepSpeed runs need
DeepSpeed installed (`DS_BUILD_OPS=0`, its wheel carried to a machine without internet).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gdro.analysis.bench.grpo_step_throughput import measure_grpo_steps

WIDE = {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 8, "num_attention_heads": 16,
        "num_key_value_heads": 8, "max_position_embeddings": 2048}  # fmt: skip
DEEP = {**WIDE, "num_hidden_layers": 24}  # about 300M parameters
STEP = {"steps": 5, "prompts_per_step": 64, "rollouts_per_prompt": 4, "max_new_tokens": 256}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--deepspeed-only", action="store_true", help="skip the torch AdamW runs")
    args = parser.parse_args(argv)
    runs = [] if args.deepspeed_only else [("tiny_ascii", None, None), ("wide_8x1024", WIDE, None)]
    runs += [(f"deep_24x1024_zero{stage}", DEEP, stage) for stage in (2, 3)]
    results: dict[str, object] = {"versions": {"torch": torch.__version__, "cuda": torch.version.cuda}}
    for name, shape, stage in runs:
        results[name] = measure_grpo_steps(
            "cuda", torch.bfloat16, architecture=shape, zero_stage=stage, **STEP
        )
        text = json.dumps(results, indent=2)
        print(text, flush=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
