"""Build a run's parts from its validated `RunConfig`: the curriculum and the policy."""

from __future__ import annotations

import logging
from pathlib import Path

from gdro.config import HFPolicyConfig, RunConfig
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.presets import build_allocator, build_sampler
from gdro.sim.simulator import SimulatorConfig
from gdro.train.policy import Policy
from gdro.train.sim_policy import SimPolicy

log = logging.getLogger(__name__)


def build_curriculum(run: RunConfig, num_prompts: int) -> Curriculum:
    """Classifier, sampler and allocator as configured, seeded by `run.seed`."""
    classifier = DifficultyClassifier(num_prompts, run.classifier)
    groups = classifier.num_groups
    return Curriculum(
        classifier,
        build_sampler(run.sampler, num_prompts, groups, seed=run.seed, **run.sampler_options),
        build_allocator(run.allocator, groups, run.budget, **run.allocator_options),
    )


def build_policy(run: RunConfig) -> Policy:
    """The simulator, or the warm-started tiny Qwen3 (trained into the cache the first time) on the task."""
    if not isinstance(run.policy, HFPolicyConfig):
        p = run.policy
        config = SimulatorConfig(
            p.num_prompts, p.num_levels, p.lr, p.initial_skill, p.level_jitter, p.spread, run.seed
        )
        return SimPolicy(config, eval_samples=run.trainer.eval_samples)
    # transformers, datasets and the model code load only for a model-backed policy
    from gdro.data.synthetic import build_synthetic_splits
    from gdro.models.base_model import ensure_base_model, load_base_model
    from gdro.rewards.boxed import integer_match_reward
    from gdro.train.hf_policy import HFPolicy, TaskData

    task = run.dataset.task()
    train_split, eval_split = build_synthetic_splits(task)
    base = ensure_base_model(
        Path(run.cache_dir), task, run.model.architecture(), run.model.warm_start, device="cpu"
    )
    log.info("base model: %s", base)
    model, tokenizer = load_base_model(base)
    reference = None
    if run.trainer.kl_coef > 0:  # with coefficient 0 the reference is never loaded
        reference, _ = load_base_model(base)
        reference.requires_grad_(False)
    return HFPolicy(
        model,
        tokenizer,
        TaskData(train_split["prompt"], train_split["answer"], eval_split, integer_match_reward),
        run.trainer,
        reference=reference,
        generation_batch_size=run.policy.generation_batch_size,
    )
