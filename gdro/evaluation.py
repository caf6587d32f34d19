"""Validation by difficulty level (spec section 6): mean@k and pass@k, pooled and per level."""

from __future__ import annotations

from collections.abc import Callable

import datasets
import numpy as np

from gdro.engines.hf import HFEngine, SamplingParams

VALIDATION_SAMPLING = SamplingParams(temperature=0.6, top_p=0.8, top_k=20, max_new_tokens=64)


def evaluate_by_level(
    engine: HFEngine,
    eval_dataset: datasets.Dataset,
    reward_fn: Callable[[str, str], float],
    samples: int = 8,
    params: SamplingParams = VALIDATION_SAMPLING,
    prefix: str = "eval",
) -> dict[str, float]:
    """`samples` completions per prompt; a sample is correct when reward_fn(text, answer) > 0.

    With k = samples: mean@k = mean over prompts of the fraction of correct samples; pass@k = the
    fraction of prompts with at least one correct sample. Keys: <prefix>/mean@k, <prefix>/pass@k
    (pooled over all prompts) and <prefix>/mean@k/level_<l>, <prefix>/pass@k/level_<l> for each
    level present.
    """
    prompts, answers = eval_dataset["prompt"], eval_dataset["answer"]
    levels = np.asarray(eval_dataset["level"])
    generations = engine.generate(prompts, [samples] * len(prompts), params)
    correct = np.array(
        [
            reward_fn(text, answers[i]) > 0
            for text, i in zip(generations.texts, generations.prompt_index, strict=True)
        ]
    )
    correct_per_prompt = np.bincount(generations.prompt_index, weights=correct, minlength=len(prompts))
    mean_at_k = correct_per_prompt / samples
    pass_at_k = (correct_per_prompt > 0).astype(np.float64)

    metrics = {
        f"{prefix}/mean@{samples}": float(mean_at_k.mean()),
        f"{prefix}/pass@{samples}": float(pass_at_k.mean()),
    }
    for level in np.unique(levels):
        in_level = levels == level
        metrics[f"{prefix}/mean@{samples}/level_{level}"] = float(mean_at_k[in_level].mean())
        metrics[f"{prefix}/pass@{samples}/level_{level}"] = float(pass_at_k[in_level].mean())
    return metrics
