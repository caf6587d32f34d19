"""The report of `gdro.analysis.bench.trainer_throughput`: a JSON record and a generated Markdown page.

The record holds where the numbers came from (command, commit, date, machine, package versions), the exact
settings of both trainers (our resolved run config and TRL's `GRPOConfig` arguments), each trainer's
measurements, the ratios ours / TRL, and what is matched between the trainers and what cannot be
(`MATCHED`, `NOT_MATCHED`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from importlib.metadata import version
from pathlib import Path
from typing import Any

from gdro.analysis.bench.trainer_throughput import TrainerThroughput, trl_settings, updates_per_step
from gdro.analysis.results.report import provenance
from gdro.config import RunConfig

PACKAGES = ("torch", "transformers", "trl", "accelerate", "datasets", "tokenizers", "numpy")
LABELS = {"ours": "ours (`train.py`)", "trl": "TRL `GRPOTrainer`"}

MEASUREMENT = (
    "A step is one generation batch: M prompts x G completions and its ppo_epochs x ppo_mini_batches optimizer "
    "updates, in both trainers (TRL's global_step counts updates and is divided back). Both run warm-up steps, "
    "then the timed steps, one after the other in one process. One clock for both, torch's global "
    "optimizer-step hook: the timed seconds run from the last update of the last warm-up step to the last "
    "update of the last timed step, so they hold generation, reward, old and reference log-probs, the updates "
    "and each trainer's per-step bookkeeping, and no evaluation or checkpoint. steps/s = timed steps / "
    "seconds; generated tokens/s = completion tokens of the timed steps (eos included, padding not) / seconds "
    "(ours: metrics.jsonl tokens/generated; TRL: counted in its reward function from every completion's token "
    "ids, and checked against TRL's logged mean completion length); ratio = ours / TRL."
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
        "transformers `generate` on the policy's own weights, the same temperature, top-p, top-k and maximum "
        "completion length, stop at eos; TRL generates the whole batch in one call, ours in calls of up to "
        "policy.generation_batch_size (256: one call at the defaults)",
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
        "ours takes whole prompt groups per mini-batch and cuts it into micro-batches by a padded-token budget "
        "(trainer.max_tokens_per_microbatch); TRL shuffles the generation batch's completions and takes "
        "per_device_train_batch_size rows per forward; at the defaults both run one forward/backward per update",
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
    run: RunConfig, config: dict[str, Any], results: dict[str, TrainerThroughput], command: str, repo: Path
) -> dict[str, Any]:
    """The JSON record (module docstring)."""
    t = run.trainer
    ours, trl = results["ours"], results["trl"]
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
        "torch_threads": t.torch_threads,
        "seed": run.seed,
        "warmup_steps": ours.warmup_steps,
        "timed_steps": ours.timed_steps,
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
        "our_config": config,
        "trl_config": trl_settings(run, ours.warmup_steps + ours.timed_steps),
        "results": {name: result.as_json() for name, result in results.items()},
        "ratios": {
            "steps_per_second": ours.steps_per_second / trl.steps_per_second,
            "tokens_per_second": ours.tokens_per_second / trl.tokens_per_second,
        },
        "matched": [list(row) for row in MATCHED],
        "not_matched": [list(row) for row in NOT_MATCHED],
    }


def markdown(report: dict[str, Any]) -> str:
    """The Markdown page of a report: provenance, the table, settings, what is matched and what is not."""
    origin, versions, settings, results = (
        report[k] for k in ("provenance", "versions", "settings", "results")
    )
    lines = [
        "# Throughput against TRL (`make bench-trainer`)",
        "",
        f"Generated by `{origin['command']}` at commit {origin['commit']} on {origin['date']}; regenerate, do not "
        "edit. The record with every setting: `trainer_throughput.json`.",
        "",
        f"Machine: {report['machine']['cpus']} CPUs ({report['machine']['cpu']}), {report['machine']['platform']}. "
        + ", ".join(f"{name} {value}" for name, value in versions.items())
        + ".",
        "",
        f"{settings['prompts_per_step']} prompts x {settings['completions_per_prompt']} completions of at most "
        f"{settings['max_completion_tokens']} tokens per step, {settings['updates_per_step']} optimizer updates per "
        f"step, {settings['torch_threads']} torch threads; {settings['warmup_steps']} warm-up steps, then "
        f"{settings['timed_steps']} timed steps per trainer.",
        "",
        "| trainer | steps/s | generated tokens/s | s per step: mean, median, max | tokens per step | mean reward "
        "| optimizer updates | load average before, after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        warmup = result["warmup_steps"]
        tokens, rewards = result["generated_tokens"][warmup:], result["reward_mean"][warmup:]
        seconds = result["step_seconds"]
        lines.append(
            f"| {LABELS[name]} | {result['steps_per_second']:.3f} | {result['tokens_per_second']:,.0f} | "
            f"{result['seconds'] / len(seconds):.2f}, {statistics.median(seconds):.2f}, {max(seconds):.2f} | "
            f"{sum(tokens) / len(tokens):,.0f} | "
            f"{sum(rewards) / len(rewards):+.3f} | {result['optimizer_updates']} | "
            f"{result['load_average'][0]:.1f}, {result['load_average'][1]:.1f} |"
        )
    ratios = report["ratios"]
    lines += [
        f"| **ratio ours / TRL** | **{ratios['steps_per_second']:.2f}** | **{ratios['tokens_per_second']:.2f}** "
        "| | | | | |",
        "",
        "Per timed step: tokens and mean reward (+1 correct, -1 not) of its completions; optimizer updates "
        "include the warm-up steps'. The load average is the machine's over the last minute, before and after "
        "each trainer's run: above the CPU count, other processes shared the cores, torch's threads waited on "
        "descheduled peers, and the rates, even their ratio, can move by large factors from run to run; "
        "compare runs on an idle machine, or with trainer.torch_threads=1.",
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
