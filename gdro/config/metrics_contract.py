"""The `metrics.jsonl` contract as docs/reference.md prints it: each key (or key pattern) a record may hold,
which record holds it, and what it means. `<k>` is `trainer.eval_samples`, `<pass_k>` the classifier's k
(`pass/at_<pass_k>`), `<l>` a held-out level, `<bench>` a benchmark of `eval.benchmarks`. A test runs the
loop and checks that every key it writes matches a pattern here, and that every per-bin series and
curriculum measure has its line.
"""

from __future__ import annotations

STEP = "step"
MODEL = "step (model policies)"
FILTERED = "step (filter != none)"
EVAL = "eval"

METRICS: tuple[tuple[str, str, str], ...] = (
    ("step", "all", "t: 0 for the evaluation before the first update, else the training step (1-based)"),
    ("rollouts/total", STEP, "sum_i n_i, the rollouts generated this step (exactly nbar * M)"),
    ("rollouts/prompts", STEP, "M, the prompts of the batch"),
    ("tokens/generated", STEP, "completion tokens generated this step (0 for the simulator)"),
    (
        "compute/rollouts_generated",
        STEP,
        "every rollout generated this step, trained or discarded by a filter (rollouts/total without one)",
    ),
    (
        "compute/tokens_generated",
        STEP,
        "every completion token generated this step, trained or discarded (null for the simulator)",
    ),
    (
        "compute/rollouts_generated_total",
        STEP,
        "compute/rollouts_generated summed since the run began (kept in checkpoints)",
    ),
    (
        "compute/tokens_generated_total",
        STEP,
        "compute/tokens_generated summed since the run began (null for the simulator)",
    ),
    (
        "compute/budget_fraction",
        EVAL,
        "with a compute budget: the fraction of it this evaluation stands for (k * trainer.eval_every_budget"
        " at the k-th crossing, 1.0 at the budget, generated / budget at a last step set by trainer.steps)",
    ),
    ("compute/gen_batches", STEP, "generation rounds of the step (1 without a filter)"),
    (
        "filter/kept_groups",
        FILTERED,
        "groups of the step's rounds that passed the filter, before the cut to M (gdro.core.filters)",
    ),
    (
        "filter/exhausted",
        FILTERED,
        "1 when the step hit filter.max_gen_batches with fewer than M kept and trained on them, else 0",
    ),
    (
        "rollouts/informative_fraction",
        STEP,
        "share of the trained rollouts whose group has 0 < c_i < n_i (rewards not all equal: a non-zero GRPO advantage)",
    ),
    (
        "rollouts/zero_variance_groups",
        STEP,
        "groups of the batch whose rewards are all equal (c_i = 0 or c_i = n_i)",
    ),
    ("reward/mean", STEP, "mean +-1 reward over the step's rollouts, 2 * pass/rollout_rate - 1"),
    ("pass/rollout_rate", STEP, "fraction of the step's rollouts that are correct"),
    ("pass/any_correct", STEP, "fraction of the batch's prompts with at least one correct rollout"),
    (
        "pass/at_<pass_k>",
        STEP,
        "unbiased pass@k over the prompts with at least k rollouts (k = `classifier.k`); null when none has",
    ),
    ("advantage/weight_max", STEP, "the largest advantage multiplier w_i of the batch (1 for GRPO)"),
    ("alloc/mu", STEP, "the allocator's shadow price mu after the step; null without one"),
    ("loss/total", STEP, "PPO loss of the step, mean over its updates (null for the simulator)"),
    ("loss/policy", STEP, "the clipped policy-gradient part of loss/total (null for the simulator)"),
    ("loss/kl", STEP, "the k3 KL part of loss/total, kl_coef times the KL (null for the simulator)"),
    ("loss/clip_fraction", MODEL, "fraction of completion tokens whose ratio was clipped"),
    ("loss/dual_clip_fraction", MODEL, "fraction of completion tokens capped by the dual clip (A < 0)"),
    ("loss/grad_norm", MODEL, "gradient norm before clipping, mean over the step's updates"),
    ("loss/microbatches", MODEL, "micro-batches per update on each rank (trainer.max_tokens_per_microbatch)"),
    ("reward/timeouts", MODEL, "rollouts whose reward hit its deadline (scored -1), summed over ranks"),
    (
        "signal/surrogate_abs_mean",
        MODEL,
        "mean_i of the per-prompt surrogate signal |l(x_i)| (paper presets' score)",
    ),
    ("rollout/truncation_rate", MODEL, "fraction of rollouts cut at trainer.max_new_tokens"),
    ("optim/lr", MODEL, "the learning rate of the step's updates (after warm-up)"),
    (
        "optim/nonfinite_skips",
        MODEL,
        "updates of the step skipped because their loss or gradient norm was not finite",
    ),
    ("optim/nonfinite_skips_total", MODEL, "skipped updates since the run began (kept in checkpoints)"),
    (
        "rollout/logprob_diff",
        MODEL,
        "mean |log pi_rollout - log pi_old| per token (engines with log-probs: vLLM)",
    ),
    ("rollout_is/mean", MODEL, "mean truncated-IS weight before the cap (trainer.rollout_is != none, vLLM)"),
    ("rollout_is/max", MODEL, "largest IS weight before the cap (trainer.rollout_is != none, vLLM)"),
    ("rollout_is/capped", MODEL, "fraction of tokens or sequences whose IS weight was capped"),
    ("time/step_seconds", STEP, "wall-clock seconds of the step (plan, generate, update, observe), in s"),
    ("bins/share", STEP, "per group: qhat(b) = |bin b in batch| / M, the batch's data share"),
    ("bins/weight", STEP, "per group: q(b), the data adversary's weight (GRPO: the batch share)"),
    (
        "bins/score",
        STEP,
        "per group: the sampler's score S(b) after the update (null: never scored, or GRPO)",
    ),
    ("bins/rollouts_per_prompt", STEP, "per group: mean n_i over the bin's prompts"),
    ("bins/reward_mean", STEP, "per group: mean +-1 reward of the bin's rollouts"),
    ("bins/success_rate", STEP, "per group: fraction of the bin's rollouts that are correct"),
    (
        "bins/tokens",
        STEP,
        "per group: completion tokens generated for the bin's prompts (null for the simulator)",
    ),
    (
        "bins/informative_fraction",
        STEP,
        "per group: rollouts/informative_fraction over the bin's rollouts (null where it has none)",
    ),
    ("bins/lead_lag_gap", STEP, "per group: q(b) - qhat(b), both normalised to sum 1"),
    (
        "curriculum/mean_bin_share",
        STEP,
        "m(qhat) = sum_b b qhat(b) over the B bins, in bins (docs/algorithm.md §8)",
    ),
    ("curriculum/mean_bin_weight", STEP, "m(q), the adversary weight's mean bin index, in bins"),
    ("curriculum/mean_bin_gap", STEP, "m(q) - m(qhat), in bins (< 0: weight on harder bins than the data)"),
    ("curriculum/lead_lag_gap_l1", STEP, "sum_b |q(b) - qhat(b)| over all groups, in [0, 2]"),
    ("curriculum/weight_entropy", STEP, "H(q) over the B bins, in nats"),
    ("curriculum/effective_bins", STEP, "exp(H(q)), in bins, in [1, B]"),
    ("curriculum/wse", STEP, "weighted standard error sum_b q(b) sigma_b / sqrt(n_b), in reward units"),
    ("curriculum/wse_uniform", STEP, "the same with nbar rollouts for every prompt, in reward units"),
    ("curriculum/wse_reduction", STEP, "1 - wse / wse_uniform (> 0: the allocation lowers the error)"),
    ("eval/mean@<k>", EVAL, "mean over held-out prompts of the fraction of k samples correct"),
    ("eval/pass@<k>", EVAL, "fraction of held-out prompts with a correct sample among k"),
    (
        "eval/mean@<k>/level_<l>",
        EVAL,
        "eval/mean@k over the held-out prompts of level l (synthetic task, simulator)",
    ),
    (
        "eval/pass@<k>/level_<l>",
        EVAL,
        "eval/pass@k over the held-out prompts of level l (synthetic task, simulator)",
    ),
    ("eval/<bench>/mean@<k>", EVAL, "eval/mean@k on one benchmark (`eval=math_benchmarks`)"),
    ("eval/<bench>/pass@<k>", EVAL, "eval/pass@k on one benchmark; also each k of `eval.pass_ks`, unbiased"),
    ("eval/aime/<metric>", EVAL, "the mean of aime24's and aime25's value of the metric"),
    (
        "eval/pass@<pass_ks>",
        EVAL,
        "pooled unbiased pass@k over every benchmark prompt, each k of `eval.pass_ks`",
    ),
    (
        "eval_rollout/<any eval key>",
        EVAL,
        "the same evaluation sampled like rollouts (trainer.temperature), with trainer.eval_at_rollout_temperature",
    ),
)
