"""The actor under DeepSpeed ZeRO: DeepSpeed's numeric config, partitioned loading, the wrapped model, and
full weights gathered. (DeepSpeed calls what `deepspeed.initialize` returns an engine; here it is the
`ds_model`: "engine" names only the rollout engines.)

`ds_config` writes every value DeepSpeed reads (no "auto": only HF Trainer and Accelerate resolve
it): one sample per micro-batch and no accumulation in DeepSpeed's own counter (the actor sets the
accumulation boundary itself, see `gdro.train.parallel.backends`), torch's AdamW with the trainer's rate and
weight decay, `gradient_clipping` = trainer.grad_clip, and the ZeRO stage of `conf/deepspeed/`.
Under ZeRO-3 `partitioned_loading` makes transformers' `from_pretrained` build the actor inside
`deepspeed.zero.Init`, so no rank ever holds the whole model in the actor's precision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from gdro.config.deepspeed import DeepSpeedConfig
from gdro.config.trainer import TrainerConfig

ADAM_BETAS = (0.9, 0.999)  # torch.optim.AdamW's defaults, as the single-process trainer uses
ADAM_EPS = 1e-8


def ds_config(ds: DeepSpeedConfig, trainer: TrainerConfig, on_gpu: bool) -> dict[str, Any]:
    """The `deepspeed.initialize` config for these settings (bf16 under `auto` only on a GPU)."""
    bf16 = ds.precision == "bf16" or (ds.precision == "auto" and on_gpu)
    zero: dict[str, Any] = {
        "stage": ds.stage,
        "contiguous_gradients": True,
        "overlap_comm": ds.overlap_comm,
        "reduce_bucket_size": ds.reduce_bucket_size,
    }
    if ds.stage == 3:
        zero["stage3_param_persistence_threshold"] = ds.param_persistence_threshold
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": trainer.grad_clip,
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": trainer.lr,
                "betas": list(ADAM_BETAS),
                "eps": ADAM_EPS,
                "weight_decay": trainer.weight_decay,
                "torch_adam": True,
            },
        },
        # skip a step whose gradient norm is not finite (DeepSpeed's default, stated: backends.py relies on it)
        "bf16": {"enabled": bf16, "check_grad_overflow": True},
        "zero_optimization": zero,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


def deepspeed_module() -> Any:
    """`import deepspeed`, or an error that says how to install it.

    On a CPU, DeepSpeed's first process group compiles its shared-memory all-reduce op with g++ (about 26 s
    on 2 cores, then cached under ~/.cache/torch_extensions), and only `inference_all_reduce` uses it, which
    training never calls. Marked incompatible here, `build_shm_op` returns None and gloo does every
    collective (GPU accelerators have no such op)."""
    try:
        import deepspeed
    except ImportError as error:
        raise ImportError(
            "trainer.backend=deepspeed needs DeepSpeed: `DS_BUILD_OPS=0 pip install deepspeed==0.19.8` "
            "(in requirements.txt; `make venv` installs it)"
        ) from error
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    return deepspeed


@contextmanager
def partitioned_loading(config: dict[str, Any]) -> Iterator[None]:
    """While open, under a ZeRO-3 `config`, `from_pretrained` loads models partitioned: transformers sees
    the config (`HfDeepSpeedConfig`, held through a weak reference) and builds the model inside
    `deepspeed.zero.Init`, every rank keeping its shard of each parameter. Every rank must load the same
    model inside it (the partitioning is collective). Models loaded after it closes (the reference, a
    rollout copy) are whole again. Other stages: nothing changes."""
    if config["zero_optimization"]["stage"] != 3:
        yield
        return
    deepspeed_module()
    from transformers.integrations import HfDeepSpeedConfig, unset_hf_deepspeed_config

    marker = HfDeepSpeedConfig(config)  # alive while the context is: transformers holds a weak reference
    try:
        with _plain_linear():
            yield
    finally:
        unset_hf_deepspeed_config()
        del marker


def initialize(model: torch.nn.Module, config: dict[str, Any]) -> Any:
    """`model` wrapped by `deepspeed.initialize` (its optimizer built from `config`): the `ds_model`."""
    deepspeed = deepspeed_module()
    with _plain_linear():  # ZeRO-3 partitions a whole model inside zero.Init
        ds_model, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
    return ds_model


def frozen_partitioned(model: torch.nn.Module, config: dict[str, Any]) -> torch.nn.Module:
    """`model` (loaded inside `partitioned_loading`) frozen and kept partitioned, as the reference under
    ZeRO-3: DeepSpeed's wrapper without an optimizer (its ZeRO-3 parameter offload) gathers each layer's
    weights around its forward, as it does for the actor, so no rank holds a whole copy (TRL's
    `prepare_deepspeed` does the same). Every rank must run the same forwards (`Actor.logprobs` pads).
    Returns the module; its hooks keep the wrapper's parameter coordinator alive."""
    model.eval().requires_grad_(False)
    frozen = {key: value for key, value in config.items() if key not in ("optimizer", "gradient_clipping")}
    deepspeed = deepspeed_module()
    with _plain_linear():
        wrapped, *_ = deepspeed.initialize(model=model, config=frozen)
    return wrapped.module


@contextmanager
def _plain_linear() -> Iterator[None]:
    """Puts `torch.nn.functional.linear` back when the block ends. `deepspeed.zero.Init` swaps it for a
    memory-saving autograd function process-wide and leaves it there ("this will persist unless manually
    reset"): every later linear ran through it, a ZeRO-3 rollout copy's generation included, and a
    2-rank CPU test run took 65 s instead of 42 s. ZeRO-3 gathers and releases the weights around each
    module's forward and backward with the plain function too (tests/test_deepspeed.py)."""
    linear = torch.nn.functional.linear
    try:
        yield
    finally:
        torch.nn.functional.linear = linear


def gathered_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor) of every parameter under every name it has (a tied output head also as
    `lm_head.weight`, one tensor for both names: vLLM keeps the old head when its name is missing), one
    parameter at a time; under ZeRO-3 each is gathered from its shards (every rank must iterate, in the
    same order: the gather is a collective) and copied out."""
    deepspeed = deepspeed_module()
    names: dict[torch.nn.Parameter, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(parameter, []).append(name)
    for parameter, aliases in names.items():
        if hasattr(parameter, "ds_id"):
            with deepspeed.zero.GatheredParameters([parameter]):
                full = parameter.detach().clone()
        else:
            full = parameter.detach().clone()
        for name in aliases:  # outside the gather: the caller may gather or communicate itself
            yield name, full
