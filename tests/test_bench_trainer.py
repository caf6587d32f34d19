"""`make bench-trainer` at toy size: our trainer and TRL's `GRPOTrainer` run the same work and the report holds it.

One benchmark (4 prompts x 4 completions per step, 1 warm-up + 2 timed steps per run, one run of each trainer at
one thread, a base model warm-started for 40 steps into a temporary cache) runs once for the module. No timing is asserted: the
checks are on what each trainer did, counted outside it (torch's global optimizer-step hook, TRL's reward
function), so a wrong mapping of TRL's batch settings fails here: gradient_accumulation_steps 2 (8 rows)
in place of steps_per_generation 2 (measured: 6 generation batches of 8 completions, not 3 of 16)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gdro.analysis.bench.phase_timer import PHASES
from gdro.analysis.bench.trainer_report import build_report, markdown, write_report
from gdro.analysis.bench.trainer_summary import summarise
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
    runs, configs, results = run_benchmark(
        [*TOY, f"cache_dir={cache}"], steps=STEPS, warmup=WARMUP, threads=(1,), repeats=1
    )
    return runs, configs, {result.trainer: result for result in results}, results


@pytest.mark.parametrize("name", ["ours", "trl"])
def test_each_trainer_runs_the_asked_steps_updates_and_completions(benchmark: tuple, name: str) -> None:
    """Warm-up + timed generation batches of M x G completions each, 2 optimizer updates per batch (counted by
    torch's hook, not by the trainer), the weights moved (updates that never reached the model the benchmark
    reads, e.g. on a copy, leave the base model as it was), torch threads as configured."""
    _, _, results, _ = benchmark
    result: TrainerThroughput = results[name]
    assert (result.warmup_steps, result.timed_steps) == (WARMUP, STEPS)
    assert result.completions == [PROMPTS * COMPLETIONS] * (WARMUP + STEPS)
    assert result.optimizer_updates == MINI_BATCHES * (WARMUP + STEPS)
    assert result.max_parameter_change > 0
    assert result.torch_threads == 1
    assert len(result.step_seconds) == STEPS and min(result.step_seconds) > 0
    assert result.steps_per_second == pytest.approx(STEPS / sum(result.step_seconds))


@pytest.mark.parametrize("name", ["ours", "trl"])
def test_every_phase_is_timed_inside_the_steps(benchmark: tuple, name: str) -> None:
    """Generation, old log-probs (the second mini-batch's in ours, the whole batch's in TRL), reference
    log-probs (kl_coef > 0) and the updates each took time inside the timed steps, and together no more than
    the steps: a wrapper on a method the trainer no longer calls (a TRL rename) would leave its phase at 0."""
    _, _, results, _ = benchmark
    result: TrainerThroughput = results[name]
    for phase in PHASES:
        assert result.phase_seconds[phase] > 0, phase
    # The window ends at the last optimizer step, while the update call that made it returns a little
    # later (its statistics): a call is counted whole by its start, so the sum may pass the window by that tail.
    assert sum(result.phase_seconds[phase] for phase in PHASES) < 1.05 * result.seconds


@pytest.mark.parametrize("name", ["ours", "trl"])
def test_token_counts_are_consistent_with_the_completions(benchmark: tuple, name: str) -> None:
    """Every completion holds 1 to max_new_tokens tokens (eos included), so a step's tokens lie in
    [completions, completions x max_new_tokens]; tokens/s is the timed steps' tokens over the seconds. (TRL's
    reward-side count is also checked inside `run_trl` against TRL's own logged mean completion length.)"""
    _, _, results, _ = benchmark
    result: TrainerThroughput = results[name]
    for completions, tokens in zip(result.completions, result.generated_tokens, strict=True):
        assert completions <= tokens <= completions * MAX_TOKENS
    timed = sum(result.generated_tokens[WARMUP:])
    assert result.tokens_per_second == pytest.approx(timed / result.seconds)


def test_report_holds_settings_versions_results_and_ratios(benchmark: tuple, tmp_path: Path) -> None:
    """The JSON round-trips with every field the README reads, the TRL mapping of 2 updates per generation
    batch of M G completions, and the ratios ours / TRL; the page has the table."""
    runs, configs, results, ordered = benchmark
    assert [result.trainer for result in ordered] == ["ours", "trl"]
    report = build_report(runs, configs, ordered, "python scripts/bench_trainer.py", Path.cwd())
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
    ratio = loaded["summary"]["1"]["ratio"]
    assert ratio["steps_per_second"] == pytest.approx(ours.steps_per_second / theirs.steps_per_second)
    assert ratio["tokens_per_second"] == pytest.approx(ours.tokens_per_second / theirs.tokens_per_second)
    assert ratio["rounds_range"] == pytest.approx([ratio["tokens_per_second"]] * 2)
    split = loaded["summary"]["1"]["ours"]["phase_seconds_per_step"]
    assert sum(split.values()) == pytest.approx(ours.seconds / ours.timed_steps)
    assert [r["trainer"] for r in loaded["results"]] == ["ours", "trl"] and loaded["not_matched"]
    assert page.read_text() == markdown(report) and "| **ratio ours / TRL** |" in page.read_text()


def _run(trainer: str, repeat: int, threads: int, seconds: float, tokens: int) -> TrainerThroughput:
    return TrainerThroughput(
        trainer=trainer,
        repeat=repeat,
        warmup_steps=1,
        timed_steps=2,
        step_seconds=[seconds / 2] * 2,
        optimizer_updates=6,
        completions=[16] * 3,
        generated_tokens=[999, tokens // 2, tokens // 2],
        reward_mean=[0.0] * 3,
        max_parameter_change=1.0,
        torch_threads=threads,
        load_average=(1.0, 1.0),
        phase_seconds={"generate": seconds / 2},
    )


def test_summary_pools_runs_and_pairs_rounds_per_thread_count() -> None:
    """Pooled tokens/s over a trainer's runs (warm-up tokens left out), the rounds' ratios (run r against run
    r), per thread count; the phase split adds up to the step."""
    results = [
        _run("ours", 0, 1, 2.0, 2000),
        _run("trl", 0, 1, 2.0, 1000),
        _run("ours", 1, 1, 1.0, 2000),
        _run("trl", 1, 1, 4.0, 2000),
        _run("ours", 0, 2, 1.0, 1000),
        _run("trl", 0, 2, 1.0, 1000),
    ]
    summary = summarise(results)
    assert sorted(summary) == [1, 2]
    one = summary[1]
    assert one["ours"]["tokens_per_second"] == pytest.approx(4000 / 3.0)
    assert one["trl"]["tokens_per_second"] == pytest.approx(3000 / 6.0)
    assert one["ratio"]["tokens_per_second"] == pytest.approx((4000 / 3.0) / (3000 / 6.0))
    assert one["ratio"]["rounds"] == pytest.approx([2.0, 4.0])
    assert one["ratio"]["rounds_range"] == pytest.approx([2.0, 4.0])
    phases = one["ours"]["phase_seconds_per_step"]
    assert phases["generate"] == pytest.approx(1.5 / 4) and sum(phases.values()) == pytest.approx(3.0 / 4)
    assert summary[2]["ratio"]["rounds"] == pytest.approx([1.0])


def test_settings_trl_cannot_match_are_refused() -> None:
    """Per-prompt rollout counts (Rollout-GDRO) and mini-batches of unequal size have no TRL counterpart."""
    with pytest.raises(ValueError, match="allocator=fixed"):
        benchmark_config(["allocator=rollout_gdro"], steps=1, warmup=1)
    with pytest.raises(ValueError, match="multiple of trainer.ppo_mini_batches"):
        benchmark_config(["trainer.prompts_per_step=5"], steps=1, warmup=1)


def test_phase_timer_counts_nested_calls_once_and_restores_methods() -> None:
    """A phase called inside another counts in its own phase only; the two own times add up to the outer
    call's wall time; a patched class method is the class's own again afterwards, an instance's goes."""
    from gdro.analysis.bench.phase_timer import PhaseTimer

    class Work:
        def inner(self) -> int:
            return sum(range(20000))

        def outer(self) -> int:
            return self.inner() + 1

    timer, work, original = PhaseTimer(), Work(), Work.__dict__["inner"]
    with timer.patched(Work, "inner", lambda *_: "generate"), timer.patched(work, "outer", lambda: "update"):
        start = time.perf_counter()
        work.outer()
        wall = time.perf_counter() - start
    assert [phase for phase, _, _ in timer.calls] == ["generate", "update"]
    split = timer.seconds_between(0.0, float("inf"))
    assert split["generate"] > 0 and split["update"] > 0
    assert split["generate"] + split["update"] <= wall
    assert Work.__dict__["inner"] is original and "outer" not in vars(work)
