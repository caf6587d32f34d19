"""The report of `gdro.analysis.bench.trainer_throughput`: a JSON record and a generated Markdown page.

The record holds where the numbers came from (command, commit, date, machine, package versions), the exact
settings of both trainers (our resolved run config and TRL's `GRPOConfig` arguments), every run's
measurements, per torch thread count the figures of `gdro.analysis.bench.trainer_summary` (tokens/s, the phase
split, the ratio ours / TRL with its interval over the rounds), and what is matched between the trainers and what
cannot be (`MATCHED`, `NOT_MATCHED`).
"""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gdro.analysis.bench.phase_timer import PHASES
from gdro.analysis.bench.trainer_summary import summarise
from gdro.analysis.bench.trainer_throughput import TrainerThroughput, trl_settings, updates_per_step
from gdro.analysis.results.report import provenance
from gdro.config import RunConfig

PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "numpy")
LABELS = {"ours": "ours (`train.py`)", "trl": "TRL `GRPOTrainer`"}

MEASUREMENT = (
    "A step is one generation batch: M prompts x G completions and its ppo_epochs x ppo_mini_batches optimizer "
    "updates, in both trainers (TRL's global_step counts updates and is divided back). Each run is warm-up steps, "
    "then the timed steps; at each torch thread count the runs alternate in one process (ours, TRL, ours, TRL, "
    "...), a round being one run of each, so the machine's load falls on both alike. One clock for both, torch's "
    "global "
    "optimizer-step hook: the timed seconds run from the last update of the last warm-up step to the last "
    "update of the last timed step, so they hold generation, reward, old and reference log-probs, the updates "
    "and each trainer's per-step bookkeeping, and no evaluation or checkpoint. steps/s = timed steps / "
    "seconds; generated tokens/s = completion tokens of the timed steps (eos included, padding not) / seconds "
    "(ours: metrics.jsonl tokens/generated; TRL: counted in its reward function from every completion's token "
    "ids, and checked against TRL's logged mean completion length), pooled over a trainer's runs; ratio = ours / "
    "TRL, with the median and range of the rounds' own ratios as its interval. Phase split (seconds per timed "
    "step, `gdro.analysis.bench.phase_timer`): the methods that run each phase are wrapped and each call's own "
    "time is summed: generate (ours HFEngine.generate; TRL _generate), old and ref (ours Actor.logprobs of the "
    "policy and of the reference; TRL the gradient-free _get_per_token_logps_and_entropies of the model and of "
    "ref_model), update (ours Actor.update; TRL training_step without its batch preparation, plus the "
    "optimizer step), other = the step less those (rewards, advantages, padding, weight sync, bookkeeping)."
)

MATCHED = (
    (
        "base model",
        "the warm-started tiny Qwen3 (model=tiny) from the same cache folder, a fresh copy per trainer, fp32",
    ),
    (
        "tokenizer, prompts",
        "the same character tokenizer (adds no special tokens: same prompt ids), the synthetic task's train split "
        "as plain text, no chat template; both draw prompts in shuffled epoch order, without replacement",
    ),
    (
        "reward",
        "gdro.rewards by the config's name (integer_match: +1/-1 on the last \\boxed{}), on the same decoded text",
    ),
    (
        "completions per step",
        "M prompts x G completions: ours allocator=fixed with nbar = G; TRL num_generations = G and "
        "generation_batch_size = M G",
    ),
    (
        "generation",
        "on the policy's own weights with transformers' sampling processors, the same temperature, top-p, "
        "top-k and maximum completion length, stop at eos; TRL: `generate` on the whole batch in one call; "
        "ours: policy.decode in batches of up to policy.generation_batch_size (256: one at the defaults), "
        "by default `shrinking` (each prompt encoded once, a row leaves the batch at its eos; `generate` "
        "keeps every row until the last stops)",
    ),
    (
        "updates per step",
        "ppo_epochs x ppo_mini_batches AdamW updates per generation batch: TRL per_device_train_batch_size = "
        "M G / ppo_mini_batches rows, gradient_accumulation_steps 1, steps_per_generation = ppo_mini_batches, "
        "num_iterations = ppo_epochs, max_steps = steps x updates per step",
    ),
    (
        "old and reference log-probs",
        "once per generation batch, before its updates, in both (TRL does so because steps_per_generation > "
        "gradient_accumulation_steps); the reference is a frozen copy of the base model, KL coefficient = beta",
    ),
    (
        "loss and optimizer",
        "ratio clip [1 - clip_low, 1 + clip_high] (epsilon, epsilon_high), k3 KL, token mean over each update's "
        "rows (TRL loss_type bnpo), group advantages with Bessel-corrected std, gradient-norm clip, torch AdamW "
        "(not fused), learning rate, weight decay",
    ),
    (
        "threads, precision",
        "torch.set_num_threads(trainer.torch_threads) before each, fp32, no gradient checkpointing (TRL's "
        "defaults bf16 and activation checkpointing switched off)",
    ),
)

NOT_MATCHED = (
    (
        "per-prompt rollout counts",
        "TRL gives every prompt num_generations completions: the benchmark refuses any allocator but fixed and "
        "any sampler but uniform, so our curriculum runs as plain GRPO",
    ),
    (
        "which prompts",
        "same pool and level mix, different shuffles: the completions (and their lengths) differ per step, so "
        "generated tokens/s is the rate to compare like for like; steps/s is the one a user waits for",
    ),
    (
        "update batches",
        "ours takes whole prompt groups per mini-batch, orders its rows by length and cuts them into "
        "micro-batches of at most trainer.max_tokens_per_microbatch padded tokens (2048: 3 to 4 forward/backward "
        "passes per update here); TRL shuffles the generation batch's completions and runs "
        "per_device_train_batch_size rows in one forward/backward per update",
    ),
    (
        "loss details",
        "ours adds verl's dual clip (trainer.clip_ratio_c) and clips advantages at trainer.adv_clip; TRL divides "
        "by std + 1e-4, its training forward also computes every token's entropy (for its logs), and with "
        "weight_decay > 0 it leaves biases and norm weights undecayed (ours decays all; the default is 0)",
    ),
    (
        "learning-rate warm-up",
        "ours per step (every update of step t uses lr (t + 1) / warmup_steps); TRL constant_with_warmup per "
        "update, over warmup_steps x updates per step updates, starting at 0",
    ),
    (
        "bookkeeping",
        "ours runs the curriculum (classifier, sampler, allocator) and appends a metrics.jsonl line per step; TRL "
        "logs every update into its log_history (its stdout printer removed); both inside the clock",
    ),
)


def machine() -> dict[str, Any]:
    """CPU count, CPU model (Linux) and platform."""
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in cpuinfo.read_text().splitlines()
        if line.startswith("model name")
    ]
    return {
        "cpus": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "platform": platform.platform(),
    }


def build_report(
    runs: dict[int, RunConfig],
    configs: dict[int, dict[str, Any]],
    results: list[TrainerThroughput],
    command: str,
    repo: Path,
) -> dict[str, Any]:
    """The JSON record (module docstring) of `run_benchmark`'s output."""
    threads = sorted(runs)
    run = runs[threads[0]]
    t = run.trainer
    first = results[0]
    settings = {
        "prompts_per_step": t.prompts_per_step,
        "completions_per_prompt": int(run.budget.nbar),
        "max_completion_tokens": t.max_new_tokens,
        "temperature": t.temperature,
        "top_p": t.top_p,
        "top_k": t.top_k,
        "lr": t.lr,
        "kl_coef": t.kl_coef,
        "clip_low": t.clip_low,
        "clip_high": t.clip_high,
        "grad_clip": t.grad_clip,
        "ppo_mini_batches": t.ppo_mini_batches,
        "ppo_epochs": t.ppo_epochs,
        "updates_per_step": updates_per_step(run),
        "torch_threads": threads,
        "repeats": max(result.repeat for result in results) + 1,
        "seed": run.seed,
        "warmup_steps": first.warmup_steps,
        "timed_steps": first.timed_steps,
        "model": run.model.architecture(),
        "train_prompts": run.dataset.num_train,
    }
    origin = provenance(command, repo)
    return {
        "provenance": {"command": origin.command, "commit": origin.commit, "date": origin.date},
        "machine": machine(),
        "versions": {"python": platform.python_version(), **{name: version(name) for name in PACKAGES}},
        "measurement": MEASUREMENT,
        "settings": settings,
        "our_config": configs[threads[0]],
        "trl_config": trl_settings(run, first.warmup_steps + first.timed_steps),
        "summary": {str(count): figures for count, figures in summarise(results).items()},
        "results": [result.as_json() for result in results],
        "matched": [list(row) for row in MATCHED],
        "not_matched": [list(row) for row in NOT_MATCHED],
    }


def markdown(report: dict[str, Any]) -> str:
    """The Markdown page of a report: provenance, the tables, settings, what is matched and what is not."""
    origin, versions, settings = (report[k] for k in ("provenance", "versions", "settings"))
    lines = [
        "# Throughput against TRL (`make bench-trainer`)",
        "",
        f"Generated by `{origin['command']}` at commit {origin['commit']} on {origin['date']}; regenerate, do not "
        "edit. The record with every setting and run: `trainer_throughput.json`.",
        "",
        f"Machine: {report['machine']['cpus']} CPUs ({report['machine']['cpu']}), {report['machine']['platform']}. "
        + ", ".join(f"{name} {value}" for name, value in versions.items())
        + ".",
        "",
        f"{settings['prompts_per_step']} prompts x {settings['completions_per_prompt']} completions of at most "
        f"{settings['max_completion_tokens']} tokens per step, {settings['updates_per_step']} optimizer updates per "
        f"step; per torch thread count {settings['repeats']} runs of each trainer, interleaved, each "
        f"{settings['warmup_steps']} warm-up steps, then {settings['timed_steps']} timed steps.",
        "",
    ]
    for threads, summary in report["summary"].items():
        ratio = summary["ratio"]
        low, high = ratio["rounds_range"]
        lines += [
            f"## {threads} torch thread{'s' if threads != '1' else ''}",
            "",
            "| trainer | generated tokens/s | steps/s | median s per step | "
            + " | ".join(f"{phase} s" for phase in (*PHASES, "other"))
            + " | tokens per step | mean reward | updates per run | load average |",
            "|---|---|---|---|" + "---|" * (len(PHASES) + 1) + "---|---|---|---|",
        ]
        for name in ("ours", "trl"):
            figures = summary[name]
            phases = figures["phase_seconds_per_step"]
            lines.append(
                f"| {LABELS[name]} | {figures['tokens_per_second']:,.0f} | {figures['steps_per_second']:.3f} | "
                f"{figures['median_step_seconds']:.3f} | "
                + " | ".join(f"{phases[phase]:.3f}" for phase in (*PHASES, "other"))
                + f" | {figures['tokens_per_step']:,.0f} | {figures['reward_mean']:+.3f} | "
                f"{', '.join(str(n) for n in sorted(set(figures['optimizer_updates_per_run'])))} | "
                f"{figures['load_average_range'][0]:.1f}-{figures['load_average_range'][1]:.1f} |"
            )
        lines += [
            f"| **ratio ours / TRL** | **{ratio['tokens_per_second']:.2f}** (rounds: median "
            f"{ratio['rounds_median']:.2f}, {low:.2f}-{high:.2f}) | **{ratio['steps_per_second']:.2f}** | | "
            + "| " * (len(PHASES) + 1)
            + "| | | |",
            "",
        ]
    lines += [
        "Phase columns: seconds per timed step; tokens per step and mean reward (+1 correct, -1 not) over the "
        "timed steps; updates per run include the warm-up steps'. The load average is the machine's over the "
        "last minute, before and after each run: above the CPU count, other processes shared the cores, "
        "torch's threads waited on descheduled peers, and the rates can move by large factors; the rounds' "
        "ratios, each from two runs back to back, move less. Compare runs on an idle machine.",
        "",
        "## What is measured",
        "",
        report["measurement"],
        "",
        "## Matched",
        "",
        "| what | how |",
        "|---|---|",
        *(f"| {what} | {how} |" for what, how in report["matched"]),
        "",
        "## Not matched",
        "",
        "| what | how it differs |",
        "|---|---|",
        *(f"| {what} | {how} |" for what, how in report["not_matched"]),
        "",
        "## TRL's `GRPOConfig` (besides output_dir)",
        "",
        "```json",
        json.dumps(report["trl_config"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """`out_dir/trainer_throughput.json` and `out_dir/README.md`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record, page = out_dir / "trainer_throughput.json", out_dir / "README.md"
    record.write_text(json.dumps(report, indent=2) + "\n")
    page.write_text(markdown(report))
    return record, page
