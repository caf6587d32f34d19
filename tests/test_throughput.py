"""The GPU check's measurement times the GRPO step `train.py` runs, built as the loop builds it, on the CPU
at toy size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gdro.analysis.bench import grpo_step_throughput
from gdro.analysis.bench.grpo_step_throughput import PHASES, measure_grpo_steps

TOY = [
    "model=tiny_ascii",
    "model.hidden_size=32",
    "model.intermediate_size=64",
    "model.num_attention_heads=2",
    "model.num_key_value_heads=1",
    "dataset.num_train=64",
    "trainer.prompts_per_step=2",
    "trainer.max_new_tokens=8",
    "trainer.torch_threads=1",
    "allocator.nbar=4",
]


def test_the_real_step_is_timed_phase_by_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every phase of `grpo_step` is timed, through the learner `build_learner` makes (a step that never
    reached `HFLearner.train_step` would leave generate, logprobs and update at zero)."""
    steps = []
    build = grpo_step_throughput.build_learner

    def recording(*args, **kwargs):
        learner = build(*args, **kwargs)
        step = learner.train_step
        learner.train_step = lambda plan: steps.append(plan) or step(plan)
        return learner

    monkeypatch.setattr(grpo_step_throughput, "build_learner", recording)
    result = measure_grpo_steps(TOY, steps=2)
    assert len(steps) == 2 and result["rollouts_per_step"] == 8 and result["finite_parameters"]
    seconds = result["median_seconds"]
    assert set(seconds) == set(PHASES)
    assert all(seconds[phase] > 0 for phase in ("generate", "logprobs", "update", "step"))
    assert seconds["step"] >= seconds["generate"] + seconds["logprobs"] + seconds["update"]
    assert result["update_tokens"] > 0 and result["update_tflops"] > 0
    assert result["generated_tokens_per_second"] > 0 and result["peak_memory_gib"] is None
    assert result["zero_stage"] is None and result["dtype"] == "float32"


def test_the_deepspeed_step_at_zero_2_and_3_and_zero_3_times_its_copy_sync() -> None:
    """In a process of its own (DeepSpeed's process group of one stays for the process's life)."""
    script = (
        "import json, sys; from gdro.analysis.bench.grpo_step_throughput import measure_grpo_steps\n"
        "toy = json.loads(sys.argv[1])\n"
        "print(json.dumps([measure_grpo_steps([*toy, 'trainer.backend=deepspeed', f'deepspeed=zero{stage}'],"
        " steps=2) for stage in (2, 3)]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(TOY)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    zero2, zero3 = json.loads(result.stdout.strip().splitlines()[-1])
    for report, stage in ((zero2, 2), (zero3, 3)):
        assert report["zero_stage"] == stage and report["finite_parameters"]
        assert report["parameters"] == zero2["parameters"] > 0  # ZeRO-3: its engine's whole copy
        assert report["generated_tokens_per_second"] > 0 and report["update_tflops"] > 0
    assert zero3["median_seconds"]["sync"] > zero2["median_seconds"]["sync"]  # the copy is refreshed


def test_every_run_of_the_gpu_check_is_a_valid_config_on_cuda_in_bf16() -> None:
    from conf_helpers import load_script

    from gdro.analysis.results.sweep import compose_run_config
    from gdro.config import parse_run_config

    runs = load_script("gpu_check").planned_runs(False, ["trainer.steps=7"])
    assert [name for name, _ in runs] == [
        "tiny_ascii",
        "wide_8x1024",
        "deep_24x1024_zero2",
        "deep_24x1024_zero3",
    ]
    for name, overrides in runs:
        run = parse_run_config(compose_run_config(overrides))
        assert (run.model.device, run.model.dtype, run.trainer.steps) == ("cuda", "bfloat16", 7), name
        assert run.trainer.backend == ("deepspeed" if "zero" in name else "torch"), name
