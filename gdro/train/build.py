"""Build a run's parts from its validated `RunConfig`: the curriculum and the learner."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gdro.config import (
    HFPolicyConfig,
    PretrainedModelConfig,
    Qwen3ShapeConfig,
    RandomModelConfig,
    RunConfig,
    TinyModelConfig,
)
from gdro.core.curriculum import Curriculum
from gdro.core.difficulty import DifficultyClassifier
from gdro.core.registry import build_allocator, build_filter, build_sampler
from gdro.sim.simulator import SimulatorConfig
from gdro.train.learner import Learner
from gdro.train.parallel.world import World
from gdro.train.rounds import StepRounds
from gdro.train.sim_learner import SimLearner

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from gdro.engines.base import RolloutEngine

log = logging.getLogger(__name__)


def build_curriculum(run: RunConfig, num_prompts: int) -> Curriculum:
    """Classifier, sampler and allocator as configured, seeded by `run.seed`."""
    classifier = DifficultyClassifier(num_prompts, run.classifier)
    groups = classifier.num_groups
    return Curriculum(
        classifier,
        build_sampler(run.sampler_schema, run.sampler_config, num_prompts, groups, seed=run.seed),
        build_allocator(run.allocator_schema, run.allocator_config, groups, run.budget, seed=run.seed),
    )


def build_rounds(run: RunConfig) -> StepRounds:
    """The step's generation rounds with the configured filter (`filter=none`: one round, all trained)."""
    group_filter = build_filter(run.filter_schema, run.filter_config)
    return StepRounds(group_filter, run.rounds, run.trainer.prompts_per_step, run.filter_schema)


def build_learner(run: RunConfig, world: World | None = None) -> Learner:
    """The simulator, or the warm-started tiny Qwen3 (trained into the cache the first time) on the task.

    With several ranks: rank 0 builds the cached base model first (the others wait, then load it),
    and `trainer.backend=deepspeed` wraps the actor with DeepSpeed ZeRO (`conf/deepspeed/`). Under ZeRO-3 the
    actor loads partitioned and the engine (hf or vLLM, one per rank) generates on whole weights of its own
    that follow it."""
    world = world if world is not None else World()
    if world.distributed and (
        not isinstance(run.policy, HFPolicyConfig) or run.trainer.backend != "deepspeed"
    ):
        raise ValueError(
            f"{world.size} ranks need policy=hf with trainer.backend=deepspeed (the simulator and the torch "
            "backend run in one process): add trainer.backend=deepspeed or launch without torchrun"
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
        return SimLearner(config, eval_samples=run.trainer.eval_samples, step_seconds=p.step_seconds)
    # transformers, datasets and the model code load only for a model-backed policy
    from gdro.train.hf_learner import HFLearner
    from gdro.train.task import build_task

    if world.distributed and not world.is_main:
        world.barrier()  # rank 0 builds (or finds) the cached base model first
    load_model = _model_loader(run)
    if world.distributed and world.is_main:
        world.barrier()
    deepspeed_config = None
    if run.trainer.backend == "deepspeed":
        from gdro.train.parallel.deepspeed_zero import ds_config, partitioned_loading

        deepspeed_config = ds_config(run.deepspeed, run.trainer, on_gpu=_on_gpu(run))
        with partitioned_loading(deepspeed_config):  # ZeRO-3: each rank loads its shards only
            model, tokenizer = load_model()
    else:
        model, tokenizer = load_model()
    # ZeRO-3 shards the actor: the engine gets whole weights of its own (HFLearner syncs them at the start);
    # transformers generate on shards would gather every layer at every decoded token
    partitioned = run.trainer.backend == "deepspeed" and run.deepspeed.stage == 3
    reference = None
    if run.trainer.kl_coef > 0 and partitioned:  # sharded like the actor: no rank holds a whole copy
        from gdro.train.parallel.deepspeed_zero import frozen_partitioned

        with partitioned_loading(deepspeed_config):
            reference = frozen_partitioned(load_model()[0], deepspeed_config)
    elif run.trainer.kl_coef > 0:  # with coefficient 0 the reference is never loaded
        reference = load_model()[0].eval().requires_grad_(False)
    stops: tuple[int, ...] = ()
    if isinstance(run.model, PretrainedModelConfig | Qwen3ShapeConfig):
        from gdro.models.pretrained import stop_token_ids

        stops = stop_token_ids(tokenizer, run.model.stop_tokens)
    engine: RolloutEngine
    if run.policy.engine == "vllm":  # vLLM is imported only here; one engine per rank
        from gdro.engines.vllm import VLLMEngine

        source = load_model()[0] if partitioned else model
        engine = VLLMEngine.from_actor(source, tokenizer, run.policy.vllm, seed=run.seed)
        del source
    else:  # on the actor, or on a whole copy (ZeRO-3) that sync_weights updates
        from gdro.engines.hf import HFEngine

        rollout_model = load_model()[0].eval().requires_grad_(False) if partitioned else model
        engine = HFEngine(rollout_model, tokenizer, run.policy.generation_batch_size, run.policy.decode)
    backend = None
    if deepspeed_config is not None:
        from gdro.train.parallel.backends import DeepSpeedBackend
        from gdro.train.parallel.deepspeed_zero import initialize

        ds_model = initialize(model, deepspeed_config)
        backend = DeepSpeedBackend(ds_model, world)
        model = ds_model.module
    return HFLearner(
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


def _on_gpu(run: RunConfig) -> bool:
    """Whether the actor trains on a GPU (the tiny model always runs on the CPU)."""
    if isinstance(run.model, TinyModelConfig):
        return False
    from gdro.models.pretrained import resolve_device

    return resolve_device(run.model.device).type == "cuda"


def _model_loader(run: RunConfig) -> Callable[[], tuple[PreTrainedModel, PreTrainedTokenizerBase]]:
    """A loader of the run's initial weights and tokenizer: the actor, the reference and any rollout copy
    each call it. For the tiny model the cached base model is built here the first time."""
    if isinstance(run.model, TinyModelConfig):
        from gdro.models.base_model import ensure_base_model, load_base_model

        task = run.dataset.task()
        base = ensure_base_model(
            Path(run.cache_dir), task, run.model.architecture(), run.model.warm_start, device="cpu"
        )
        log.info("base model: %s", base)
        return lambda: load_base_model(base)
    from gdro.models.pretrained import build_random_ascii, load_pretrained

    if isinstance(run.model, RandomModelConfig):
        return lambda: build_random_ascii(run.model)
    if isinstance(run.model, Qwen3ShapeConfig):
        from gdro.models.qwen3_shape import build_qwen3_shape

        return lambda: build_qwen3_shape(run.model)
    return lambda: load_pretrained(run.model)
