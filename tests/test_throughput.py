"""The GPU check's measurement runs the real step path on the CPU at toy size."""

from __future__ import annotations

import json
import subprocess
import sys

from gdro.analysis.bench.grpo_step_throughput import measure_grpo_steps


def test_measure_grpo_steps_reports_every_phase_and_trains() -> None:
    result = measure_grpo_steps(steps=2, prompts_per_step=2, rollouts_per_prompt=4, max_new_tokens=8)
    assert result["rollouts_per_step"] == 8 and result["finite_parameters"]
    assert set(result["median_seconds"]) == {"generate", "logprobs", "update", "step"}
    assert all(seconds > 0 for seconds in result["median_seconds"].values())
    assert result["generated_tokens_per_second"] > 0 and result["peak_memory_gib"] is None


def test_the_deepspeed_actor_steps_at_zero_2_and_3_and_zero_3_times_its_copy_sync() -> None:
    """In a process of its own (DeepSpeed's process group of one stays for the process's life)."""
    script = (
        "import json; from gdro.analysis.bench.grpo_step_throughput import measure_grpo_steps\n"
        "print(json.dumps([measure_grpo_steps(steps=2, prompts_per_step=2, rollouts_per_prompt=4,"
        " max_new_tokens=8, zero_stage=stage) for stage in (2, 3)]))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    zero2, zero3 = json.loads(result.stdout.strip().splitlines()[-1])
    for report, stage in ((zero2, 2), (zero3, 3)):
        assert report["zero_stage"] == stage and report["finite_parameters"]
        assert report["parameters"] == zero2["parameters"] > 0  # counted before ZeRO-3 partitions them
        assert report["generated_tokens_per_second"] > 0
    assert "sync" not in zero2["median_seconds"]  # ZeRO-2 generates on the actor itself
    assert zero3["median_seconds"]["sync"] > 0  # ZeRO-3's whole copy is refreshed after every step
