"""`make bench-trainer` at toy size: our trainer and TRL's `GRPOTrainer` run the same work and the report holds it.

One benchmark (4 prompts x 4 completions per step, 1 warm-up + 2 timed steps per trainer, a base model
warm-started for 40 steps into a temporary cache) runs once for the module. No timing is asserted: the
checks are on what each trainer did, counted outside it (torch's global optimizer-step hook, TRL's reward
function), so a wrong mapping of TRL's batch settings fails here: gradient_accumulation_steps 2 (8 rows)
in place of steps_per_generation 2 (measured: 6 generation batches of 8 completions, not 3 of 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gdro.analysis.bench.trainer_report import build_report, markdown, write_report
from gdro.analysis.bench.trainer_throughput import TrainerThroughput, benchmark_config, run_benchmark

PROMPTS, COMPLETIONS, MAX_TOKENS, WARMUP, STEPS, MINI_BATCHES = 4, 4, 32, 1, 2, 2
TOY = [
    "dataset.num_train=256",
    "dataset.num_eval_per_level=2",
    "model.warm_start.steps=40",
    "model.warm_start.batch_size=32",
    f"trainer.prompts_per_step={PROMPTS}",
    f"trainer.max_new_tokens={MAX_TOKENS}",
    f"trainer.ppo_mini_batches={MINI_BATCHES}",
    # At this size nearly every reward is -1, so most advantages and gradients are 0; decoupled weight decay
    # at a constant rate moves the weights at every update, so a change shows the updates reached the model.
    "trainer.weight_decay=0.1",
    "trainer.warmup_steps=0",
    "trainer.torch_threads=1",  # two threads on two cores shared with other tests crawl (OpenMP spin-waits)
]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    cache = tmp_path_factory.mktemp("base-model-cache")
    return run_benchmark([*TOY, f"cache_dir={cache}"], steps=STEPS, warmup=WARMUP)


@pytest.mark.parametrize("name", ["ours", "trl"])
def test_each_trainer_runs_the_asked_steps_updates_and_completions(benchmark: tuple, name: str) -> None:
    """Warm-up + timed generation batches of M x G completions each, 2 optimizer updates per batch (counted by
    torch's hook, not by the trainer), the weights moved (updates that never reached the model the benchmark
    reads, e.g. on a copy, leave the base model as it was), torch threads as configured."""
    _, _, results = benchmark
    result: TrainerThroughput = results[name]
    assert (result.warmup_steps, result.timed_steps) == (WARMUP, STEPS)
    assert result.completions == [PROMPTS * COMPLETIONS] * (WARMUP + STEPS)
    assert result.optimizer_updates == MINI_BATCHES * (WARMUP + STEPS)
    assert result.max_parameter_change > 0
    assert result.torch_threads == 1
    assert len(result.step_seconds) == STEPS and min(result.step_seconds) > 0
    assert result.steps_per_second == pytest.approx(STEPS / sum(result.step_seconds))


@pytest.mark.parametrize("name", ["ours", "trl"])
def test_token_counts_are_consistent_with_the_completions(benchmark: tuple, name: str) -> None:
    """Every completion holds 1 to max_new_tokens tokens (eos included), so a step's tokens lie in
    [completions, completions x max_new_tokens]; tokens/s is the timed steps' tokens over the seconds. (TRL's
    reward-side count is also checked inside `run_trl` against TRL's own logged mean completion length.)"""
    _, _, results = benchmark
    result: TrainerThroughput = results[name]
    for completions, tokens in zip(result.completions, result.generated_tokens, strict=True):
        assert completions <= tokens <= completions * MAX_TOKENS
    timed = sum(result.generated_tokens[WARMUP:])
    assert result.tokens_per_second == pytest.approx(timed / result.seconds)


def test_report_holds_settings_versions_results_and_ratios(benchmark: tuple, tmp_path: Path) -> None:
    """The JSON round-trips with every field the README reads, the TRL mapping of 2 updates per generation
    batch of M G completions, and the ratios ours / TRL; the page has the table."""
    run, config, results = benchmark
    report = build_report(run, config, results, "python scripts/bench_trainer.py", Path.cwd())
    record, page = write_report(report, tmp_path)
    loaded = json.loads(record.read_text())
    for key in ("provenance", "machine", "versions", "measurement", "settings", "our_config", "trl_config"):
        assert loaded[key], key
    assert set(loaded["versions"]) >= {"python", "torch", "transformers", "trl", "accelerate"}
    trl = loaded["trl_config"]
    assert trl["num_generations"] == COMPLETIONS and trl["gradient_accumulation_steps"] == 1
    assert trl["per_device_train_batch_size"] * trl["steps_per_generation"] == PROMPTS * COMPLETIONS
    assert trl["max_steps"] == MINI_BATCHES * (WARMUP + STEPS) and trl["max_completion_length"] == MAX_TOKENS
    ours, theirs = results["ours"], results["trl"]
    assert loaded["ratios"]["steps_per_second"] == pytest.approx(
        ours.steps_per_second / theirs.steps_per_second
    )
    assert loaded["ratios"]["tokens_per_second"] == pytest.approx(
        ours.tokens_per_second / theirs.tokens_per_second
    )
    assert set(loaded["results"]) == {"ours", "trl"} and loaded["not_matched"]
    assert page.read_text() == markdown(report) and "| **ratio ours / TRL** |" in page.read_text()


def test_settings_trl_cannot_match_are_refused() -> None:
    """Per-prompt rollout counts (Rollout-GDRO) and mini-batches of unequal size have no TRL counterpart."""
    with pytest.raises(ValueError, match="allocator=fixed"):
        benchmark_config(["allocator=rollout_gdro"], steps=1, warmup=1)
    with pytest.raises(ValueError, match="multiple of trainer.ppo_mini_batches"):
        benchmark_config(["trainer.prompts_per_step=5"], steps=1, warmup=1)
