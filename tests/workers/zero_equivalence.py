"""Run under `torchrun --nproc_per_node=2`: the DeepSpeed actor on two ranks with uneven rows against a
single-process actor on the union of the rows. Rank 0 writes a JSON report to argv[2].

    python -m torch.distributed.run --standalone --nproc_per_node=2 zero_equivalence.py OUT_DIR

For ZeRO-2, then ZeRO-3 (one launch: the start-up is paid once), rank 0 writes OUT_DIR/zero{2,3}.json.
For every loss_agg mode: 3 PPO updates (rank 0 holds rows 0-2, rank 1 rows 3-9, cut into micro-batches
of different counts per rank), then the pre-clip gradient norms of each update and the gathered
parameters are compared with the reference; under ZeRO-3 the local shards' sizes show partitioning.
Then a resume: 2 updates, the backend's save, a fresh actor, its load, 1 update, against 3 straight.
Under ZeRO-3 also `partitioned_loading`: `from_pretrained` of a saved model leaves each rank only its
shards, which gather back to the saved weights.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import deepspeed.comm.comm
import torch
from transformers import AutoModelForCausalLM

from gdro.config.deepspeed import DeepSpeedConfig
from gdro.config.trainer import TrainerConfig
from gdro.core.grpo import LOSS_AGGREGATIONS
from gdro.models.tiny import build_tiny_qwen3
from gdro.train.actor import Actor, ActorConfig
from gdro.train.parallel.backends import DeepSpeedBackend
from gdro.train.parallel.deepspeed_zero import (
    ds_config,
    frozen_partitioned,
    gathered_parameters,
    initialize,
    partitioned_loading,
)
from gdro.train.parallel.world import World

VOCAB = 61
SHAPE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 64,
}
PROMPT_LENGTHS = [3, 7, 1, 5, 9, 2, 4, 6, 3, 8]
COMPLETION_LENGTHS = [10, 0, 4, 25, 1, 7, 13, 2, 9, 5]
SHARDS = (range(0, 3), range(3, 10))  # deliberately uneven: 3 rows against 7
STEPS = 3
SETTINGS = TrainerConfig(lr=0.01, grad_clip=1.0, kl_coef=0.0, max_new_tokens=32, temperature=0.8)


def rows(lengths: list[int], seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(1, VOCAB, (n,), generator=generator).tolist() for n in lengths]


PROMPTS, COMPLETIONS = rows(PROMPT_LENGTHS, 1), rows(COMPLETION_LENGTHS, 2)


def actor_config(loss_agg: str, budget: int) -> ActorConfig:
    config = ActorConfig.from_trainer(SETTINGS, max_tokens_per_microbatch=budget, logprob_chunk_tokens=8)
    config.loss_agg = loss_agg
    return config


def ppo_inputs() -> dict[str, torch.Tensor]:
    """Advantages and old log-probs (the initial model's, perturbed so that clipping acts)."""
    generator = torch.Generator().manual_seed(3)
    model = build_tiny_qwen3(VOCAB, **SHAPE, seed=0)
    old, _ = Actor(
        model, torch.optim.SGD(model.parameters(), lr=0.0), actor_config("token-mean", 64)
    ).logprobs(PROMPTS, COMPLETIONS)
    return {
        "advantages": torch.randn(len(PROMPTS), generator=generator),
        "old_logprobs": old + 0.3 * torch.randn(old.shape, generator=generator),
    }


def run_reference(
    loss_agg: str, inputs: dict[str, torch.Tensor]
) -> tuple[list[float], dict[str, torch.Tensor]]:
    """One process, all ten rows, torch AdamW: the pre-clip norms and final parameters."""
    model = build_tiny_qwen3(VOCAB, **SHAPE, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=SETTINGS.lr, weight_decay=SETTINGS.weight_decay)
    actor = Actor(model, optimizer, actor_config(loss_agg, 48))
    norms = [actor.update(PROMPTS, COMPLETIONS, **inputs).grad_norm for _ in range(STEPS)]
    return norms, {name: p.detach().clone() for name, p in every_name(model)}


def deepspeed_actor(
    stage: int, loss_agg: str, world: World, ranks: int | None = None
) -> tuple[Actor, object]:
    """`ranks`: what the backend tells the actor to scale losses by (default: the world's size)."""
    ds = DeepSpeedConfig(name=f"zero{stage}", stage=stage, param_persistence_threshold=0)
    ds_model = initialize(build_tiny_qwen3(VOCAB, **SHAPE, seed=0), ds_config(ds, SETTINGS, on_gpu=False))
    budget = 24 if world.rank == 0 else 40  # different micro-batch counts per rank
    backend = DeepSpeedBackend(ds_model, world)
    if ranks is not None:
        backend.ranks = ranks
    actor = Actor(ds_model.module, None, actor_config(loss_agg, budget), backend, world)
    return actor, ds_model


def local_update(actor: Actor, inputs: dict[str, torch.Tensor], world: World) -> float:
    mine = SHARDS[world.rank]
    part = slice(mine.start, mine.stop)
    return actor.update(
        PROMPTS[part],
        COMPLETIONS[part],
        advantages=inputs["advantages"][part],
        old_logprobs=inputs["old_logprobs"][part],
    ).grad_norm


def every_name(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters under every name, the tied head's included (as `gathered_parameters` yields them)."""
    return list(model.named_parameters(remove_duplicate=False))


def max_difference(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> float:
    assert left.keys() == right.keys(), (sorted(left), sorted(right))
    return max(float((left[name] - right[name]).detach().abs().max()) for name in left)


def digest(parameters: dict[str, torch.Tensor]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(parameters):
        hasher.update(name.encode() + parameters[name].numpy().tobytes())
    return hasher.hexdigest()


def partitioned_load(stage: int, world: World, folder: Path) -> dict[str, object]:
    """A saved tiny model loaded inside `partitioned_loading`: elements held here, and the gathered digest
    against the saved weights'."""
    saved = build_tiny_qwen3(VOCAB, **SHAPE, seed=0)
    if world.is_main:
        saved.save_pretrained(folder)
    world.barrier()
    ds = DeepSpeedConfig(name=f"zero{stage}", stage=stage, param_persistence_threshold=0)
    config = ds_config(ds, SETTINGS, on_gpu=False)
    with partitioned_loading(config):
        loaded = AutoModelForCausalLM.from_pretrained(folder)
        reference = frozen_partitioned(AutoModelForCausalLM.from_pretrained(folder), config)
    after = AutoModelForCausalLM.from_pretrained(folder)  # after the context: whole again
    # the frozen partitioned reference scores this rank's rows (uneven micro-batch counts) as a whole copy
    actor, _ = deepspeed_actor(stage, "token-mean", world)
    mine = SHARDS[world.rank]
    rows = (PROMPTS[mine.start : mine.stop], COMPLETIONS[mine.start : mine.stop])
    sharded, whole = actor.logprobs(*rows, model=reference)[0], actor.logprobs(*rows, model=after)[0]
    return {
        "local_elements": sum(p.numel() for p in loaded.parameters()),
        "full_elements": sum(p.numel() for p in saved.parameters()),
        "digest": digest(dict(gathered_parameters(loaded))),
        "saved_digest": digest({name: p.detach() for name, p in every_name(saved)}),
        "elements_after": sum(p.numel() for p in after.parameters()),
        "reference_local_elements": world.sum([sum(p.numel() for p in reference.parameters())])[0],
        "reference_logprob_difference": max(world.gather(float((sharded - whole).abs().max()))),
    }


def main(out_dir: Path) -> None:
    world = World.from_env()
    torch.set_num_threads(1)
    for stage in (2, 3):
        report = stage_report(stage, world, out_dir / f"zero{stage}-checkpoints")
        if stage == 3:
            report["partitioned_loading"] = partitioned_load(stage, world, out_dir / "saved-model")
        if world.is_main:
            (out_dir / f"zero{stage}.json").write_text(json.dumps(report, indent=1))


def stage_report(stage: int, world: World, checkpoints: Path) -> dict[str, object]:
    """Equivalence, the unscaled control and resume at one ZeRO stage."""
    torch.manual_seed(0)
    inputs = ppo_inputs()
    report: dict[str, object] = {"stage": stage, "world": world.size, "modes": {}}
    for loss_agg in LOSS_AGGREGATIONS:
        reference_norms, reference = run_reference(loss_agg, inputs)
        actor, ds_model = deepspeed_actor(stage, loss_agg, world)
        local = sum(p.numel() for p in ds_model.module.parameters())
        norms = [local_update(actor, inputs, world) for _ in range(STEPS)]
        full = dict(gathered_parameters(ds_model.module))
        report["modes"][loss_agg] = {
            "norms": norms,
            "reference_norms": reference_norms,
            "max_parameter_difference": max_difference(full, reference),
            "moved": max_difference(full, dict(every_name(build_tiny_qwen3(VOCAB, **SHAPE, seed=0)))),
            "local_elements": local,
            "full_elements": sum(t.numel() for t in {id(t): t for t in full.values()}.values()),  # tied once
            "digests": world.gather(digest(full)),
        }
    # control: a loss not multiplied by the rank count (a 2x normalisation error) shows in the norms
    actor, ds_model = deepspeed_actor(stage, "token-mean", world, ranks=1)
    report["unscaled_norms"] = [local_update(actor, inputs, world) for _ in range(STEPS)]
    # resume: 2 updates, save, a fresh actor, load, 1 update == 3 straight (token-mean)
    actor, ds_model = deepspeed_actor(stage, "token-mean", world)
    straight = [local_update(actor, inputs, world) for _ in range(STEPS)]
    straight_parameters = dict(gathered_parameters(ds_model.module))
    actor, ds_model = deepspeed_actor(stage, "token-mean", world)
    resumed = [local_update(actor, inputs, world) for _ in range(STEPS - 1)]
    if world.is_main:
        checkpoints.mkdir(parents=True, exist_ok=True)
    world.barrier()
    actor.backend.save(checkpoints, {"step": 2})  # as a checkpoint saves: every rank its shards
    actor, ds_model = deepspeed_actor(stage, "token-mean", world)
    assert actor.backend.load(checkpoints) == {"step": 2}
    resumed.append(local_update(actor, inputs, world))
    report["shm_op_built"] = deepspeed.comm.comm.cdb.shm_comm_op is not None  # g++, on a first run
    report["resume"] = {
        "straight_norms": straight,
        "resumed_norms": resumed,
        "max_parameter_difference": max_difference(
            dict(gathered_parameters(ds_model.module)), straight_parameters
        ),
    }
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]))
