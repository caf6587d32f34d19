"""The task a run trains on: training prompts as token ids with their answers, the reward that grades
them, and the held-out sets the evaluator runs. Built once at start, from the dataset, reward and eval
groups of the config, with the policy's tokenizer.

- dataset=synthetic: the embedded chain task; eval=synthetic: its held-out levels.
- dataset=dapo_math: DAPO-Math prompts (gdro.data.dapo_math; the fingerprint goes into checkpoints and
  `check_fingerprint` compares it on resume);
  eval=math_benchmarks: the configured benchmarks, math ones graded by math-verify in a worker pool,
  GPQA by its letter.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from transformers import PreTrainedTokenizerBase

from gdro.config import RunConfig, SyntheticDatasetConfig
from gdro.data.benchmarks import load_benchmarks
from gdro.data.dapo_math import load_dapo_math
from gdro.data.synthetic import build_synthetic_splits
from gdro.engines.hf import tokenize_prompts
from gdro.rewards import Reward, build_reward
from gdro.train.evaluator import EvalSet

log = logging.getLogger(__name__)


@dataclass
class TaskData:
    """Training prompts (token ids) and answers indexed by prompt id, the reward, the held-out sets.

    fingerprint: a hash of the prepared prompts (None for the generated synthetic task, whose prompts
    are fixed by its config), stored in every checkpoint and checked on resume.
    """

    prompt_token_ids: list[list[int]]
    answers: list[str]
    reward: Reward
    eval_sets: list[EvalSet]
    fingerprint: str | None = None

    @property
    def num_prompts(self) -> int:
        """N."""
        return len(self.prompt_token_ids)

    def close(self) -> None:
        """Stop every reward's worker processes."""
        for reward in {id(r): r for r in [self.reward, *(s.reward for s in self.eval_sets)]}.values():
            reward.close()


def check_fingerprint(saved: str | None, current: str | None) -> None:
    """Raise if a checkpoint's prompt-set fingerprint differs from the prompts prepared now (None: a
    generated task, whose prompts its config fixes)."""
    if saved != current:
        raise ValueError(
            f"training prompt set changed: the checkpoint was trained on fingerprint {saved}, the "
            f"data prepared now gives {current}. Prompt ids are row indices after filtering, so a "
            "changed dataset, template, length filter or bad-row policy renumbers or alters the "
            "prompts and would misalign the classifier's per-prompt history. Resume with the "
            "original data settings, or start a new run."
        )


def build_task(run: RunConfig, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    """The configured task; see the module docstring."""
    reward = build_reward(run.reward.name, **run.reward.options())
    if isinstance(run.dataset, SyntheticDatasetConfig):
        train, held_out = build_synthetic_splits(run.dataset.task())
        eval_set = EvalSet(
            "synthetic",
            tokenize_prompts(tokenizer, held_out["prompt"]),
            list(held_out["answer"]),
            reward,
            levels=np.asarray(held_out["level"]),
        )
        return TaskData(
            tokenize_prompts(tokenizer, train["prompt"]), list(train["answer"]), reward, [eval_set]
        )
    prompt_set = load_dapo_math(run.dataset.loader_config(), tokenizer)
    if len(prompt_set) < run.trainer.prompts_per_step:
        raise ValueError(
            f"dataset {run.dataset.path}: {len(prompt_set)} prompts left after filtering (too long: "
            f"{prompt_set.too_long}, bad rows: {prompt_set.bad_rows}), fewer than trainer.prompts_per_step="
            f"{run.trainer.prompts_per_step}; raise dataset.max_prompt_tokens or lower prompts_per_step"
        )
    graders = {
        "math": build_reward("math_verify", workers=run.eval.workers, deadline_s=run.eval.deadline_s),
        "gpqa": build_reward("gpqa"),
    }
    benchmarks = load_benchmarks(run.eval.benchmarks, run.dataset.template, tokenizer, run.eval.local_root)
    eval_sets = [
        EvalSet(name, tokenize_prompts(tokenizer, b.prompts), b.answers, graders[b.scorer])
        for name, b in benchmarks.items()
    ]
    log.info("benchmarks: %s", ", ".join(f"{name} ({len(b)})" for name, b in benchmarks.items()))
    return TaskData(
        tokenize_prompts(tokenizer, prompt_set.prompts),
        prompt_set.answers,
        reward,
        eval_sets,
        fingerprint=prompt_set.fingerprint,
    )
