"""The GPU check's measurement runs the real step path on the CPU at toy size."""

from __future__ import annotations

from gdro.train.throughput import measure_grpo_steps


def test_measure_grpo_steps_reports_every_phase_and_trains() -> None:
    result = measure_grpo_steps(steps=2, prompts_per_step=2, rollouts_per_prompt=4, max_new_tokens=8)
    assert result["rollouts_per_step"] == 8 and result["finite_parameters"]
    assert set(result["median_seconds"]) == {"generate", "logprobs", "update", "step"}
    assert all(seconds > 0 for seconds in result["median_seconds"].values())
    assert result["generated_tokens_per_second"] > 0 and result["peak_memory_gib"] is None
