"""The supervised warm start that turns a random tiny Qwen3 into the embedded "base model".

The model is trained from scratch on worked solutions of the chain task (loss on completion tokens
only, <eos> included). The solutions come from a careless demonstrator that forgets 60% of carries
(`gdro.data.synthetic.careless_values`), so the base model imitates that flaw: it has the whole
procedure, but on a carrying addition it more often writes the wrong tens digit than the right one.
Every forgotten carry costs -10 and nothing cancels it, so long chains fail more often, and RL with
the verifier's reward has a flaw to unlearn and a frontier to move. The level mix favours short
chains, yet every level appears. The result is cached under cache_dir/<hash of every config>/.

Measured with the defaults (2 CPU threads, about 3 minutes; final loss 0.034): held-out mean@8 by
level 0..5 at the validation sampling (T=0.6, top-p 0.8, top-k 20) is 0.86, 0.76, 0.55, 0.33, 0.17,
0.11 and pass@8 0.95, 0.95, 0.86, 0.72, 0.48, 0.34. The previous recipe (correct demonstrations,
450 steps, level_mix_power 1.5, level_floor 0.03) left errors that were gaps in a barely learned
procedure, and 300 GRPO steps lowered validation mean@8 instead of raising it (CHANGELOG.md, "Measurement history").
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen3ForCausalLM,
    get_cosine_schedule_with_warmup,
)

from gdro.config.models import WarmStartConfig
from gdro.data.synthetic import (
    ALPHABET,
    ChainProblem,
    SyntheticTaskConfig,
    careless_values,
    eval_prompts,
    format_worked_solution,
    level_probabilities,
    random_problem,
)
from gdro.models.char_tokenizer import build_char_tokenizer
from gdro.models.tiny import build_tiny_qwen3

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1  # bump when the training recipe changes in a way the configs do not show
LOG_EVERY_STEPS = 50
IGNORE_INDEX = -100  # label value transformers' causal-LM loss skips


def config_hash(
    task_config: SyntheticTaskConfig, model_kwargs: dict[str, Any], warm_start: WarmStartConfig
) -> str:
    """A short, stable hash of everything that determines the base model.

    Of the task, only what the warm start reads counts: the chain lengths (and so the slots) and the
    eval split it must avoid (seed, num_eval_per_level). The RL train split's size and level mix do
    not, so runs that vary them start from the same base model.
    """
    payload = {
        "version": CACHE_FORMAT_VERSION,
        "alphabet": ALPHABET,
        "task_format": ChainProblem(47, (3, -9, 5), 4).prompt + ChainProblem(47, (3, -9, 5), 4).completion,
        "task": {
            "seed": task_config.seed,
            "num_eval_per_level": task_config.num_eval_per_level,
            "level_steps": list(task_config.level_steps),
        },
        "model": model_kwargs,
        "warm_start": asdict(warm_start),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _sft_batch(
    rng: np.random.Generator,
    tokenizer: PreTrainedTokenizerBase,
    level_steps: tuple[int, ...],
    level_probs: np.ndarray,
    excluded: set[str],
    batch_size: int,
    carry_slip_rate: float,
) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and labels (IGNORE_INDEX outside completions); the
    completions are `careless_values` at carry_slip_rate, drawn from `rng` after each problem."""
    prompts, completions = [], []
    for level in rng.choice(len(level_steps), size=batch_size, p=level_probs):
        problem = random_problem(rng, level_steps[level], max(level_steps))
        while problem.prompt in excluded:
            problem = random_problem(rng, level_steps[level], max(level_steps))
        prompts.append(problem.prompt)
        completions.append(format_worked_solution(careless_values(problem, rng, carry_slip_rate)))
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completions, add_special_tokens=False)["input_ids"]
    longest = max(len(p) + len(c) + 1 for p, c in zip(prompt_ids, completion_ids, strict=True))
    input_ids = torch.full((batch_size, longest), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((batch_size, longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros(batch_size, longest, dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        target = completion + [tokenizer.eos_token_id]
        length = len(prompt) + len(target)
        input_ids[row, :length] = torch.tensor(prompt + target)
        labels[row, len(prompt) : length] = torch.tensor(target)
        attention_mask[row, :length] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def train_warm_start(
    model: Qwen3ForCausalLM,
    tokenizer: PreTrainedTokenizerBase,
    task_config: SyntheticTaskConfig,
    config: WarmStartConfig,
) -> list[dict[str, float]]:
    """Supervised training in place; returns the logged history (step, loss, lr, seconds)."""
    rng = np.random.default_rng([config.seed, 3])
    level_probs = level_probabilities(
        len(task_config.level_steps), config.level_mix_power, config.level_floor
    )
    excluded = eval_prompts(task_config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay
    )
    schedule = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, config.steps)
    model.train()
    history: list[dict[str, float]] = []
    losses: list[float] = []
    started = time.perf_counter()
    for step in range(1, config.steps + 1):
        batch = _sft_batch(
            rng,
            tokenizer,
            task_config.level_steps,
            level_probs,
            excluded,
            config.batch_size,
            config.carry_slip_rate,
        )
        loss = model(**{k: v.to(model.device) for k, v in batch.items()}).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % LOG_EVERY_STEPS == 0 or step == config.steps:
            entry = {
                "step": step,
                "loss": float(np.mean(losses)),
                "lr": schedule.get_last_lr()[0],
                "seconds": time.perf_counter() - started,
            }
            history.append(entry)
            losses = []
            log.info(
                "warm start step %d/%d loss %.4f lr %.2e (%.0f s)",
                step,
                config.steps,
                entry["loss"],
                entry["lr"],
                entry["seconds"],
            )
    model.eval()
    return history


def ensure_base_model(
    cache_dir: str | os.PathLike,
    task_config: SyntheticTaskConfig,
    model_kwargs: dict[str, Any],
    warm_start_config: WarmStartConfig,
    device: str | None = None,
) -> Path:
    """The directory of the base model for these configs, training and saving it the first time.

    model_kwargs go to `build_tiny_qwen3` (all but vocab_size and tokenizer). The directory holds
    `save_pretrained` output of model and tokenizer plus warm_start.json (configs and loss history);
    it is written to a temporary directory and renamed, so a partial one is never reused. Processes
    asking for the same model at once (a sweep's jobs, parallel test workers) take turns on the lock
    file `.<hash>.lock` beside it: the first trains, the others wait and reuse. `device` (default: cuda
    if available) is where training runs and is not part of the hash.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / config_hash(task_config, model_kwargs, warm_start_config)
    if (target / "warm_start.json").exists():
        log.info("reusing base model %s", target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (target / "warm_start.json").exists():
            log.info("reusing base model %s, trained by another process", target)
            return target
        _train_into(target, task_config, model_kwargs, warm_start_config, device)
    return target


def _train_into(
    target: Path,
    task_config: SyntheticTaskConfig,
    model_kwargs: dict[str, Any],
    warm_start_config: WarmStartConfig,
    device: str | None,
) -> None:
    """Warm-start a base model and move it into `target` (staged beside it, then renamed)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = build_char_tokenizer(ALPHABET)
    model = build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, **model_kwargs).to(device)
    log.info("training base model into %s on %s", target, device)
    history = train_warm_start(model, tokenizer, task_config, warm_start_config)

    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    record = {
        "task": asdict(task_config),
        "model": model_kwargs,
        "warm_start": asdict(warm_start_config),
        "history": history,
    }
    (staging / "warm_start.json").write_text(json.dumps(record, indent=2))
    try:
        staging.rename(target)
    except OSError:
        # Another process finished the same configs first (a file system without flock): keep theirs.
        if not (target / "warm_start.json").exists():
            raise
        shutil.rmtree(staging)


def load_base_model(path: str | os.PathLike) -> tuple[Qwen3ForCausalLM, PreTrainedTokenizerFast]:
    """(model in eval mode, tokenizer) saved by `ensure_base_model`."""
    model = Qwen3ForCausalLM.from_pretrained(path)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path)
    return model.eval(), tokenizer
