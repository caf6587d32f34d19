"""One prepared GPU check (issue "Paper scale, part 1", section 6): the GRPO step's model side in bf16 on CUDA.

    python scripts/gpu_check.py OUT.json

Runs `gdro.train.throughput.measure_grpo_steps` for the tiny model of `conf/model/tiny_ascii.yaml` and for
a wider one (hidden 1024, 8 layers), in bf16 on cuda, and writes the step times and peak memory as JSON.
"""

from __future__ import annotations

import json
import sys

import torch

from gdro.train.throughput import measure_grpo_steps

WIDE = {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 8, "num_attention_heads": 16,
        "num_key_value_heads": 8, "max_position_embeddings": 2048}  # fmt: skip


def main(out_path: str) -> None:
    """Both shapes, bf16 on cuda, 5 steps of 64 prompts x 4 rollouts of up to 256 tokens."""
    results = {
        name: measure_grpo_steps(
            "cuda",
            torch.bfloat16,
            steps=5,
            prompts_per_step=64,
            rollouts_per_prompt=4,
            max_new_tokens=256,
            architecture=shape,
        )  # fmt: skip
        for name, shape in (("tiny_ascii", None), ("wide_8x1024", WIDE))
    }
    results["versions"] = {"torch": torch.__version__, "cuda": torch.version.cuda}
    text = json.dumps(results, indent=2)
    print(text)
    with open(out_path, "w") as handle:
        handle.write(text)


if __name__ == "__main__":
    main(sys.argv[1])
