"""Build a run's parts from its validated `RunConfig`: the curriculum and the policy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gdro.config import HFPolicyConfig, PretrainedModelConfig, RandomModelConfig, RunConfig, TinyModelConfig
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.presets import make_allocator, make_sampler
from gdro.sim.simulator import SimulatorConfig
from gdro.train.distributed import World
from gdro.train.policy import Policy
from gdro.train.sim_policy import SimPolicy

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def build_curriculum(run: RunConfig, num_prompts: int) -> Curriculum:
    """Classifier, sampler and allocator as configured, seeded by `run.seed`."""
    classifier = DifficultyClassifier(num_prompts, run.classifier)
    groups = classifier.num_groups
    return Curriculum(
        classifier,
        make_sampler(run.sampler_config, num_prompts, groups, seed=run.seed),
        make_allocator(run.allocator_config, groups, run.budget, seed=run.seed),
    )


def build_policy(run: RunConfig, world: World | None = None) -> Policy:
    """The simulator, or the warm-started tiny Qwen3 (trained into the cache the first time) on the task.

    With several ranks: rank 0 builds the cached base model first (the others wait, then load it),
    and `trainer.backend=deepspeed` wraps the actor in a ZeRO engine (`conf/deepspeed/`)."""
    world = world if world is not None else World()
    if world.distributed and (
        not isinstance(run.policy, HFPolicyConfig) or run.trainer.backend != "deepspeed"
    ):
        raise ValueError(
            f"{world.size} ranks need policy=hf with trainer.backend=deepspeed (the simulator and the torch "
            "backend run in one process): add trainer.backend=deepspeed or launch without torchrun"
        )
    if world.distributed and run.policy.engine == "vllm":
        raise ValueError(
            "policy.engine=vllm runs in one process for now (one engine per rank is not tested): "
            "launch without torchrun, or use policy.engine=hf with trainer.backend=deepspeed"
        )
    if not isinstance(run.policy, HFPolicyConfig):
        p = run.policy
        config = SimulatorConfig(
            p.num_prompts,
            p.num_levels,
            p.lr,
            p.initial_skill,
            p.level_jitter,
            p.spread,
            run.seed,
            eval_prompts_per_level=p.eval_prompts_per_level,
        )
        return SimPolicy(config, eval_samples=run.trainer.eval_samples, step_seconds=p.step_seconds)
    # transformers, datasets and the model code load only for a model-backed policy
    from gdro.train.hf_policy import HFPolicy
    from gdro.train.task import build_task

    if world.distributed and not world.is_main:
        world.barrier()  # rank 0 builds (or finds) the cached base model first
    model, tokenizer, load_model = _policy_model(run)
    if world.distributed and world.is_main:
        world.barrier()
    reference = None
    if run.trainer.kl_coef > 0:  # with coefficient 0 the reference is never loaded
        reference = load_model().eval().requires_grad_(False)
    stops: tuple[int, ...] = ()
    if isinstance(run.model, PretrainedModelConfig):
        from gdro.models.pretrained import stop_token_ids

        stops = stop_token_ids(tokenizer, run.model.stop_tokens)
    engine = None  # HFPolicy's default: transformers generate on the actor
    if run.policy.engine == "vllm":  # vLLM is imported only here
        from gdro.engines.vllm import VLLMEngine

        engine = VLLMEngine.from_actor(model, tokenizer, run.policy.vllm, seed=run.seed)
    backend = None
    if run.trainer.backend == "deepspeed":
        from gdro.train.backends import DeepSpeedBackend
        from gdro.train.deepspeed_engine import engine_config, initialize

        on_gpu = model.device.type == "cuda"
        deepspeed_engine = initialize(model, engine_config(run.deepspeed, run.trainer, on_gpu))
        backend = DeepSpeedBackend(deepspeed_engine, world.size)
        model = deepspeed_engine.module
    return HFPolicy(
        model,
        tokenizer,
        build_task(run, tokenizer),
        run.trainer,
        reference=reference,
        generation_batch_size=run.policy.generation_batch_size,
        stop_token_ids=stops,
        engine=engine,
        seed=run.seed,
        backend=backend,
        world=world,
    )


def _policy_model(
    run: RunConfig,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Callable[[], PreTrainedModel]]:
    """The trainable model, its tokenizer, and a loader of another copy of the initial weights (the reference)."""
    if isinstance(run.model, TinyModelConfig):
        from gdro.models.base_model import ensure_base_model, load_base_model

        task = run.dataset.task()
        base = ensure_base_model(
            Path(run.cache_dir), task, run.model.architecture(), run.model.warm_start, device="cpu"
        )
        log.info("base model: %s", base)
        model, tokenizer = load_base_model(base)
        return model, tokenizer, lambda: load_base_model(base)[0]
    from gdro.models.pretrained import build_random_ascii, load_pretrained

    if isinstance(run.model, RandomModelConfig):
        model, tokenizer = build_random_ascii(run.model)
        return model, tokenizer, lambda: build_random_ascii(run.model)[0]
    model, tokenizer = load_pretrained(run.model)
    return model, tokenizer, lambda: load_pretrained(run.model)[0]
