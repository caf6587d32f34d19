"""The vLLM engine: one in-process `vllm.LLM` per rank that samples rollouts and follows the actor's weights.

generate: one `LLM.generate` call with one `SamplingParams` per prompt (n = n_i, explicit max_tokens, a
seed per prompt, the stop ids, `logprobs=0` under `logprobs_mode="processed_logprobs"`, so each
sampled token comes with log pi_sampler(y_t) at the sampling temperature), token-id prompts in, token
ids out, decoded with our tokenizer (vLLM's tokenizer is never loaded). Prompts with n_i = 0 are not
sent; outputs come back in prompt order, child j of prompt i with seed s_i + j.

sync_weights: the actor's full state (the tied `lm_head.weight` included: without it the head stays the
old one) is streamed through the workers' `reload_weights`, then the prefix cache is reset (otherwise
prompts that share a cached prefix reuse KV computed with the old weights).

Sleep mode (GPU only; vLLM refuses it on CPU): `sleep` after generation frees the KV cache (and, at
level 1, offloads the weights; at level 2 drops them); the next `sync_weights` wakes the weights, loads
the new ones, resets the prefix cache and only then wakes the KV cache. `generate` refuses to run asleep.

On CPU the engine needs `VLLM_ENABLE_V1_MULTIPROCESSING=0` (in-process engine core: tensors can be passed
to the sync; set here unless already set) and `OMP_NUM_THREADS=1` before torch is imported (the
Makefile sets it for the vLLM tests). Building it replaces `torch.set_num_threads` with a no-op.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import save_model

from gdro.engines.base import Decoding, Generations, full_state

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from gdro.config.runtime import VLLMConfig

INSTALL_HINT = (
    "policy.engine=vllm needs vLLM: on CPU install requirements-vllm.txt (`make venv-vllm` builds "
    ".venv-vllm with it), on GPU requirements-gpu.txt"
)
FINISH_REASONS = {"stop": "stop", "length": "length"}


def import_vllm() -> Any:
    """The `vllm` module, imported with the in-process engine core; a clear error when it is missing."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        import vllm
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return vllm


class VLLMEngine:
    """Rollouts from an in-process `vllm.LLM` built from a model folder (or hub id); see the module docstring."""

    def __init__(
        self,
        model_source: str,
        tokenizer: PreTrainedTokenizerBase,
        config: VLLMConfig,
        dtype: str,
        seed: int = 0,
    ) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer needs an eos token")
        vllm = import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.tokenizer = tokenizer
        self.config = config
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        several = distributed and torch.distributed.get_world_size() > 1
        options: dict[str, Any] = {
            "dtype": dtype,
            "seed": seed,
            "skip_tokenizer_init": True,
            "logprobs_mode": "processed_logprobs",
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "enable_sleep_mode": config.enable_sleep_mode,
            "enforce_eager": (
                not torch.cuda.is_available() if config.enforce_eager is None else config.enforce_eager
            ),
        }
        if not torch.cuda.is_available():
            # vLLM 0.32 CPU rewinds a seeded request's generator after a partial prefill chunk, which CPU
            # generators refuse ("CPU Generator does not use offset"): prefill whole prompts.
            options["enable_chunked_prefill"] = False
        if several:  # every rank builds its engine together, inside the existing process group
            options["distributed_executor_backend"] = "external_launcher"
        if config.max_model_len is not None:
            options["max_model_len"] = config.max_model_len
        if config.kv_cache_memory_bytes is not None:
            options["kv_cache_memory_bytes"] = config.kv_cache_memory_bytes
        self.llm = vllm.LLM(model=model_source, **options)
        self.asleep = False

    @classmethod
    def from_actor(
        cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: VLLMConfig, seed: int = 0
    ) -> VLLMEngine:
        """An engine with the actor's architecture and current weights (dtype: `config.dtype` or the
        actor's). It loads from the actor's folder or hub id, or from a temporary copy (config.json and
        model.safetensors) of a model built in memory, then syncs the actor's weights (which may differ from
        the files). Each rank writes its own copy: `save_pretrained` writes on rank 0 only once
        torch.distributed is up, which left the other ranks' engines an empty folder."""
        dtype = config.dtype or str(model.dtype).removeprefix("torch.")
        source = str(model.name_or_path or "")  # a folder with config.json, or a hub id (no such path)
        if source and ((Path(source) / "config.json").is_file() or not Path(source).exists()):
            engine = cls(source, tokenizer, config, dtype, seed)
        else:
            with tempfile.TemporaryDirectory(prefix="gdro-vllm-") as folder:
                model.config.architectures = [
                    type(model).__name__
                ]  # as save_pretrained sets it: vLLM's model class
                model.config.save_pretrained(folder)
                save_model(model, str(Path(folder) / "model.safetensors"))  # one copy of a tied head
                engine = cls(folder, tokenizer, config, dtype, seed)
        engine.sync_weights(full_state(model))
        return engine

    def generate(
        self,
        prompt_token_ids: Sequence[Sequence[int]],
        counts: Sequence[int],
        decoding: Decoding,
        seeds: Sequence[int] | None = None,
    ) -> Generations:
        """counts[i] rollouts of prompt_token_ids[i] (a count may be 0), seeded by seeds[i] (default: drawn
        from torch's global RNG, which the caller seeds and checkpoints)."""
        if self.asleep:
            raise RuntimeError("the vLLM engine is asleep: sync_weights (or wake) before generating")
        if len(prompt_token_ids) != len(counts):
            raise ValueError(f"{len(prompt_token_ids)} prompts but {len(counts)} counts")
        counts_array = np.asarray(counts, dtype=np.int64)
        if (counts_array < 0).any():
            raise ValueError("counts must be non-negative")
        if seeds is None:
            seeds = torch.randint(0, 2**62, (len(counts_array),)).tolist()
        elif len(seeds) != len(counts_array):
            raise ValueError(f"{len(counts_array)} prompts but {len(seeds)} seeds")
        prompt_index = np.repeat(np.arange(len(counts_array), dtype=np.int64), counts_array)
        sent = np.flatnonzero(counts_array > 0)
        stops = [self.tokenizer.eos_token_id, *decoding.stop_token_ids]
        params = [
            self._sampling_params(
                n=int(counts_array[i]),
                temperature=decoding.temperature,
                top_p=decoding.top_p,
                top_k=decoding.top_k if decoding.top_k > 0 else -1,
                max_tokens=decoding.max_new_tokens,
                seed=int(seeds[i]),
                stop_token_ids=stops,
                logprobs=0,
                detokenize=False,
            )
            for i in sent
        ]
        requests = [{"prompt_token_ids": list(prompt_token_ids[i])} for i in sent]
        outputs = self.llm.generate(requests, params, use_tqdm=False) if requests else []
        completions: list[list[int]] = []
        logprobs: list[list[float]] = []
        reasons: list[str] = []
        for i, output in zip(sent, outputs, strict=True):
            if len(output.outputs) != counts_array[i]:
                raise RuntimeError(
                    f"prompt {i}: asked for {counts_array[i]} samples, got {len(output.outputs)}"
                )
            for sample in output.outputs:
                tokens = list(sample.token_ids)
                completions.append(tokens)
                logprobs.append(
                    [step[token].logprob for step, token in zip(sample.logprobs, tokens, strict=True)]
                )
                reasons.append(FINISH_REASONS[sample.finish_reason])
        texts = self.tokenizer.batch_decode(completions, skip_special_tokens=True) if completions else []
        rollout_prompts = [list(prompt_token_ids[i]) for i in prompt_index]
        return Generations(prompt_index, rollout_prompts, completions, texts, reasons, logprobs)

    def sync_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load the actor's weights (HF names, all of them: see `full_state`) and reset the prefix cache;
        asleep, wake the weights first and the KV cache after."""
        if self.asleep:
            self.llm.wake_up(tags=["weights"])
        weights = [(name, tensor.detach()) for name, tensor in named_tensors]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()
        if self.asleep:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False

    def sleep(self) -> None:
        """Release the KV cache (and weights) between generation and training; a no-op without sleep mode."""
        if self.config.enable_sleep_mode and not self.asleep:
            self.llm.sleep(level=self.config.sleep_level)
            self.asleep = True

    def wake(self) -> None:
        """Wake without new weights: only after a level-1 sleep (a level-2 sleep dropped them: sync)."""
        if not self.asleep:
            return
        if self.config.sleep_level == 2:
            raise RuntimeError("after a level-2 sleep the weights are gone: call sync_weights, not wake")
        self.llm.wake_up()
        self.asleep = False
