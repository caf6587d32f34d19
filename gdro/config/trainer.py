"""`conf/trainer/grpo.yaml`: the GRPO / PPO hyper-parameters (docs/algorithm.md §1 and §7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gdro.config.checking import ConfigError
from gdro.core.grpo import ADVANTAGE_STD_MODES, LOSS_AGGREGATIONS
from gdro.core.rollout_correction import ROLLOUT_IS_MODES
from gdro.engines.base import Decoding


@dataclass
class TrainerConfig:
    """GRPO hyper-parameters (`conf/trainer/grpo.yaml`)."""

    steps: int = 300
    """T, the training steps of the run."""
    prompts_per_step: int = 64
    """M, prompts per step (paper: 256)."""
    ppo_mini_batches: int = 2
    """PPO updates per step, each on M / ppo_mini_batches prompts (paper: 2, 128 of 256)."""
    ppo_epochs: int = 1
    """Passes over the step's rollouts (each pass does ppo_mini_batches updates)."""
    max_tokens_per_microbatch: int = 2048
    """Padded tokens per micro-batch; a PPO mini-batch is cut into micro-batches of at most this many, rows
    by length (2048: the fastest on the CPU for the tiny model; experiment=paper's GPUs take 16384)."""
    logprob_chunk_tokens: int = 1024
    """Completion tokens per lm-head call: no [tokens, vocab] fp32 tensor for the whole batch."""
    compile_forward: bool = False
    """torch.compile the decoder body of the log-prob and update forwards (changes the last bits; compiles at step 1)."""
    lr: float = 2e-4
    """AdamW learning rate after warm-up (paper: 1e-6 on Qwen3)."""
    warmup_steps: int = 20
    """Steps of linear learning-rate warm-up from 0, then constant."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip of each update."""
    max_nonfinite_skips: int = 3
    """Updates skipped in a row (loss or gradient norm not finite) at which the run stops with an error."""
    clip_low: float = 0.2
    """PPO ratio clipped below at 1 - clip_low."""
    clip_high: float = 0.28
    """PPO ratio clipped above at 1 + clip_high (clip-higher)."""
    clip_ratio_c: float | None = 3.0
    """Dual clip: the loss of tokens with A < 0 capped at -A * c (verl's default); null turns it off."""
    kl_coef: float = 0.001
    """Weight of the k3 KL to the frozen initial policy; 0 skips loading the reference model."""
    adv_clip: float = 5.0
    """Group-normalised advantages clipped to [-adv_clip, adv_clip]."""
    adv_std: Literal["unbiased", "population", "none"] = "unbiased"
    """Advantage scale: unbiased group std (verl), population std (the paper's text) or none (Dr.GRPO)."""
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = "token-mean"
    """How token losses become the batch loss (seq-mean-token-sum-norm: Dr.GRPO)."""
    surrogate_signal_kl: bool = False
    """Add the KL term to the per-prompt surrogate signal the controllers score (paper: yes, its code: no)."""
    temperature: float = 1.0
    """Sampling temperature of training rollouts (PPO's log-probs are taken at the same temperature)."""
    top_p: float = 1.0
    """Nucleus mass of training rollouts; must stay 1.0 (PPO scores the whole distribution)."""
    top_k: int = 0
    """Top-k of training rollouts; must stay 0 (off)."""
    max_new_tokens: int = 64
    """Completion length limit in tokens, for rollouts and evaluation."""
    eval_every: int = 50
    """Steps between evaluations (also at step 0 and the last step)."""
    budget_rollouts: int | None = None
    """Stop once this many rollouts were generated (compute/rollouts_generated_total); null: off, trainer.steps ends the run."""
    budget_tokens: int | None = None
    """Stop once this many completion tokens were generated (model policies); null: off."""
    eval_every_budget: float | None = None
    """Evaluate when the generated total first reaches each multiple of this fraction of the budget (e.g. 0.1667), instead of every eval_every steps; null: the step schedule."""
    save_every: int = 50
    """Steps between checkpoints (also at the last step)."""
    keep_checkpoints: int = 3
    """The newest checkpoints kept in checkpoints/ (older ones are deleted after a save)."""
    run_lock: bool = True
    """Hold a flock on run_dir/.lock for the run: one writer per run folder (false: file systems without locks)."""
    lock_wait_s: float = 120.0
    """Seconds a requeued SLURM job (SLURM_RESTART_COUNT > 0) waits for the run folder's lock; others fail at once."""
    plot_every: int = 100
    """Steps between W&B heatmap images of the per-bin series (and at the end)."""
    eval_samples: int = 8
    """k, samples per held-out prompt: eval/mean@k and eval/pass@k."""
    eval_temperature: float = 0.6
    """Sampling temperature of the evaluation."""
    eval_top_p: float = 0.8
    """Nucleus mass of the evaluation's sampling."""
    eval_top_k: int = 20
    """Top-k of the evaluation's sampling (0: off)."""
    eval_at_rollout_temperature: bool = True
    """Also sample the held-out sets like rollouts (temperature, top_p, top_k): the eval_rollout/ metrics."""
    torch_threads: int = 2
    """Intra-op CPU threads of each process (conf/trainer/grpo.yaml reads GDRO_TORCH_THREADS, default 2)."""
    backend: Literal["torch", "deepspeed"] = "torch"
    """torch: one process, torch AdamW; deepspeed: ZeRO data parallel over the torchrun ranks (conf/deepspeed/)."""
    rollout_is: Literal["none", "token", "sequence"] = "token"
    """Truncated importance sampling of the rollout engine's samples back to pi_old (verl), per token or
    sequence; only engines that report log-probs (vllm)."""
    rollout_is_cap: float = 2.0
    """Cap on the rollout importance weights."""

    def _validate_budget(self) -> None:
        """At most one compute budget, positive; eval_every_budget a fraction in (0, 1] of a budget."""
        for name in ("budget_rollouts", "budget_tokens"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be >= 1, or null (off)")
        if self.budget_rollouts is not None and self.budget_tokens is not None:
            raise ConfigError(
                f"trainer.budget_rollouts={self.budget_rollouts} and trainer.budget_tokens="
                f"{self.budget_tokens}: set one budget, the other null"
            )
        if self.eval_every_budget is not None:
            if self.budget_rollouts is None and self.budget_tokens is None:
                raise ConfigError(
                    f"trainer.eval_every_budget={self.eval_every_budget} needs a budget: set "
                    "trainer.budget_rollouts or trainer.budget_tokens, or eval_every_budget=null"
                )
            if not 0 < self.eval_every_budget <= 1:
                raise ConfigError(
                    f"trainer.eval_every_budget={self.eval_every_budget}: a fraction of the budget in (0, 1]"
                )

    def rollout_sampling(self, stop_token_ids: tuple[int, ...] = ()) -> Decoding:
        """Training rollouts: temperature, top_p, top_k and max_new_tokens; stop at eos and `stop_token_ids`."""
        return Decoding(self.temperature, self.top_p, self.top_k, self.max_new_tokens, stop_token_ids)

    def eval_sampling(self, stop_token_ids: tuple[int, ...] = ()) -> Decoding:
        """Validation (docs/algorithm.md §6): eval_temperature, eval_top_p, eval_top_k, max_new_tokens."""
        return Decoding(
            self.eval_temperature, self.eval_top_p, self.eval_top_k, self.max_new_tokens, stop_token_ids
        )

    def validate(self) -> None:
        """Ranges and accepted values."""
        positive = (
            "steps",
            "prompts_per_step",
            "ppo_mini_batches",
            "ppo_epochs",
            "eval_every",
            "save_every",
            "plot_every",
        )
        extra = (
            "eval_samples",
            "max_new_tokens",
            "torch_threads",
            "keep_checkpoints",
            "max_tokens_per_microbatch",
            "logprob_chunk_tokens",
            "max_nonfinite_skips",
        )
        for name in (*positive, *extra):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be >= 1")
        self._validate_budget()
        if self.ppo_mini_batches > self.prompts_per_step:
            raise ConfigError(
                f"trainer.ppo_mini_batches={self.ppo_mini_batches} exceeds trainer.prompts_per_step="
                f"{self.prompts_per_step}: use at most one mini-batch per prompt"
            )
        if self.adv_std not in ADVANTAGE_STD_MODES:
            raise ConfigError(f"trainer.adv_std={self.adv_std!r}: use one of {ADVANTAGE_STD_MODES}")
        if self.loss_agg not in LOSS_AGGREGATIONS:
            raise ConfigError(f"trainer.loss_agg={self.loss_agg!r}: use one of {LOSS_AGGREGATIONS}")
        for name in ("lr", "clip_low", "clip_high", "adv_clip", "grad_clip"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be > 0")
        if self.lock_wait_s < 0:
            raise ConfigError(f"trainer.lock_wait_s={self.lock_wait_s}: must be >= 0")
        if self.clip_ratio_c is not None and self.clip_ratio_c <= 1.0:
            raise ConfigError(
                f"trainer.clip_ratio_c={self.clip_ratio_c}: the dual-clip constant must be > 1 (verl: 3.0), "
                "or null to turn dual clip off"
            )
        for name in ("kl_coef", "weight_decay", "warmup_steps", "top_k", "eval_top_k"):
            if getattr(self, name) < 0:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be >= 0")
        for name in ("temperature", "eval_temperature"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must be > 0 (sampling)")
        for name in ("top_p", "eval_top_p"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"trainer.{name}={getattr(self, name)}: must lie in (0, 1]")
        if self.backend not in ("torch", "deepspeed"):
            raise ConfigError(f"trainer.backend={self.backend!r}: use 'torch' or 'deepspeed'")
        if self.compile_forward and self.backend != "torch":
            raise ConfigError(
                "trainer.compile_forward=true runs with trainer.backend=torch only (tried on it alone)"
            )
        if self.rollout_is not in ROLLOUT_IS_MODES:
            raise ConfigError(f"trainer.rollout_is={self.rollout_is!r}: use one of {ROLLOUT_IS_MODES}")
        if self.rollout_is_cap <= 0:
            raise ConfigError(f"trainer.rollout_is_cap={self.rollout_is_cap}: must be > 0 (verl: 2.0)")
        if self.top_p != 1.0 or self.top_k != 0:
            raise ConfigError(
                f"trainer.top_p={self.top_p}, trainer.top_k={self.top_k}: PPO scores rollouts under the"
                " whole tempered distribution, so rollouts must sample all of it (trainer.top_p=1.0,"
                " trainer.top_k=0)"
            )
