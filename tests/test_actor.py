"""The actor: chunked log-probs against the naive full-vocabulary computation, micro-batch invariance of
the PPO gradient, token-budget cuts, and the memory bound that the naive computation breaks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from logprob_reference import sequence_logprobs
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from gdro.core.grpo import (
    LOSS_AGGREGATIONS,
    aggregate_loss,
    aggregate_loss_share,
    clipped_surrogate_loss,
    kl_k3,
    sequence_mean,
)
from gdro.models.tiny import build_tiny_qwen3
from gdro.train.actor import Actor, ActorConfig, completion_logprobs
from gdro.train.microbatch import token_budget_microbatches

VOCAB = 97
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 128,
}
TEMPERATURE = 0.7
NORM_LENGTH = 32
# Seven rows, ragged prompts and completions, two empty completions (a cut by length puts them in one
# micro-batch, so a budget of 1 token gives six).
PROMPT_LENGTHS = [3, 7, 1, 5, 9, 2, 4]
COMPLETION_LENGTHS = [10, 0, 4, 25, 1, 0, 13]


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """One torch thread: these models are tiny, and two threads on busy cores spin-wait (100x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_rows(lengths: list[int], seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (n,), generator=generator).tolist() for n in lengths]


PROMPTS = random_rows(PROMPT_LENGTHS, seed=1)
COMPLETIONS = random_rows(COMPLETION_LENGTHS, seed=2)


def tiny_model() -> torch.nn.Module:
    return build_tiny_qwen3(VOCAB, seed=3, **TINY)


def gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


def assert_gradients_close(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    """Max abs difference <= 1e-6 x the largest expected gradient entry (float32 rounding)."""
    scale = max(float(g.abs().max()) for g in expected)
    assert scale > 0
    worst = max(float((a - e).abs().max()) for a, e in zip(actual, expected, strict=True))
    assert worst <= 1e-6 * scale, (worst, scale)


@pytest.mark.parametrize("chunk_tokens", [1, 3, 16, 10_000])
def test_chunked_logprobs_and_gradients_match_naive(chunk_tokens: int) -> None:
    model = tiny_model()
    weights = torch.linspace(-1.0, 1.0, len(PROMPTS) * max(COMPLETION_LENGTHS)).reshape(len(PROMPTS), -1)

    def backward(logprobs: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        (logprobs * weights).sum().backward()
        return gradients(model)

    naive, naive_mask = sequence_logprobs(model, PROMPTS, COMPLETIONS, TEMPERATURE)
    chunked, mask = completion_logprobs(model, PROMPTS, COMPLETIONS, TEMPERATURE, chunk_tokens)
    assert chunked.dtype == torch.float32 and chunked.shape == naive.shape
    assert torch.equal(mask, naive_mask)
    torch.testing.assert_close(chunked, naive, atol=1e-6, rtol=0)
    assert_gradients_close(backward(chunked), backward(naive))
    with torch.no_grad():
        torch.testing.assert_close(
            completion_logprobs(model, PROMPTS, COMPLETIONS, TEMPERATURE, chunk_tokens)[0],
            naive,
            atol=1e-6,
            rtol=0,
        )


def test_chunked_logprobs_edge_cases() -> None:
    model = tiny_model()
    logprobs, mask = completion_logprobs(model, [[1], [2, 3]], [[], []], TEMPERATURE)
    assert logprobs.shape == mask.shape == (2, 0)
    with pytest.raises(ValueError, match="non-empty prompt"):
        completion_logprobs(model, [[]], [[5]], TEMPERATURE)
    with pytest.raises(ValueError, match="temperature"):
        completion_logprobs(model, [[1]], [[5]], 0.0)


def actor_config(loss_agg: str, kl_coef: float, budget: int, checkpointing: bool = False) -> ActorConfig:
    return ActorConfig(
        clip_low=0.2,
        clip_high=0.28,
        clip_ratio_c=3.0,
        kl_coef=kl_coef,
        loss_agg=loss_agg,
        norm_length=NORM_LENGTH,
        grad_clip=1e9,  # the tests compare raw gradients: no clipping
        temperature=TEMPERATURE,
        surrogate_signal_kl=kl_coef > 0,
        max_tokens_per_microbatch=budget,
        logprob_chunk_tokens=5,
        gradient_checkpointing=checkpointing,
    )


def frozen_actor(config: ActorConfig) -> Actor:
    """An actor whose optimizer step leaves the weights alone (SGD, lr 0), so gradients can be compared."""
    model = tiny_model()
    return Actor(model, torch.optim.SGD(model.parameters(), lr=0.0), config)


def ppo_inputs(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Old and reference log-probs perturbed by up to +-2 nats, so that clipping and dual clipping act."""
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        current, mask = sequence_logprobs(model, PROMPTS, COMPLETIONS, TEMPERATURE)

    def perturbed() -> torch.Tensor:
        return (current + 4.0 * torch.rand(current.shape, generator=generator) - 2.0) * mask

    return {
        "advantages": 4.0 * torch.rand(len(PROMPTS), generator=generator) - 2.0,
        "old_logprobs": perturbed(),
        "ref_logprobs": perturbed(),
        "signal_advantages": torch.rand(len(PROMPTS), generator=generator) - 0.5,
    }


def budget_for(cuts: int) -> int:
    """The smallest token budget that cuts the rows into `cuts` micro-batches."""
    actor = frozen_actor(actor_config("token-mean", 0.0, 1))
    for budget in range(1, 10_000):
        actor.config.max_tokens_per_microbatch = budget
        if len(actor.microbatches(PROMPTS, COMPLETIONS)) == cuts:
            return budget
    raise AssertionError(f"no budget gives {cuts} micro-batches")


@pytest.mark.parametrize("kl_coef", [0.0, 0.5])
@pytest.mark.parametrize("loss_agg", LOSS_AGGREGATIONS)
def test_update_gradient_is_independent_of_the_microbatch_cut(loss_agg: str, kl_coef: float) -> None:
    # Reference: today's whole-mini-batch computation (naive log-probs, `aggregate_loss`).
    model = tiny_model()
    inputs = ppo_inputs(model)
    logprobs, mask = sequence_logprobs(model, PROMPTS, COMPLETIONS, TEMPERATURE)
    surrogate = clipped_surrogate_loss(logprobs, inputs["old_logprobs"], inputs["advantages"])
    policy = aggregate_loss(surrogate.loss_tok, mask, loss_agg, NORM_LENGTH)
    kl_tokens = kl_k3(logprobs, inputs["ref_logprobs"])
    kl = aggregate_loss(kl_tokens, mask, loss_agg, NORM_LENGTH)
    (policy + kl_coef * kl).backward()
    expected = gradients(model)
    signal_tokens = clipped_surrogate_loss(
        logprobs.detach(), inputs["old_logprobs"], inputs["signal_advantages"], clip_ratio_c=None
    ).loss_tok
    expected_signal = sequence_mean(signal_tokens + kl_coef * kl_tokens.detach(), mask).double().numpy()
    assert float((surrogate.clipped * mask).sum()) > 0 and float((surrogate.dual_clipped * mask).sum()) > 0

    for cuts in (1, 2, 6):  # 6: every row with tokens alone (the two empty ones share a cut)
        actor = frozen_actor(actor_config(loss_agg, kl_coef, budget_for(cuts)))
        ref_logprobs = inputs["ref_logprobs"] if kl_coef > 0 else None
        stats = actor.update(PROMPTS, COMPLETIONS, **inputs | {"ref_logprobs": ref_logprobs})
        assert stats.microbatches == cuts
        assert_gradients_close(gradients(actor.model), expected)
        assert stats.policy_loss == pytest.approx(float(policy.detach()), rel=1e-5, abs=1e-7)
        assert stats.kl_loss == pytest.approx(float(kl.detach()) if kl_coef > 0 else 0.0, rel=1e-5, abs=1e-7)
        assert stats.clip_fraction == pytest.approx(float((surrogate.clipped * mask).sum() / mask.sum()))
        assert stats.surrogate_per_row == pytest.approx(expected_signal, rel=1e-5, abs=1e-6)


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning")
def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    results, attention_calls = [], []
    for checkpointing in (False, True):
        actor = frozen_actor(actor_config("seq-mean-token-mean", 0.5, budget_for(2), checkpointing))
        inputs = ppo_inputs(actor.model)
        calls = [0]
        actor.model.model.layers[0].self_attn.register_forward_hook(
            lambda *_, calls=calls: calls.__setitem__(0, calls[0] + 1)
        )
        stats = actor.update(PROMPTS, COMPLETIONS, **inputs)
        results.append((gradients(actor.model), stats.grad_norm))
        attention_calls.append(calls[0])
    # Checkpointing is on: the backward of each of the 2 micro-batches runs the layer again.
    assert attention_calls == [2, 4]
    assert_gradients_close(results[1][0], results[0][0])
    assert results[1][1] == pytest.approx(results[0][1], rel=1e-6)


def test_actor_logprobs_are_microbatched_and_match_naive() -> None:
    actor = frozen_actor(actor_config("token-mean", 0.0, budget_for(6)))
    logprobs, mask = actor.logprobs(PROMPTS, COMPLETIONS)
    naive, naive_mask = sequence_logprobs(actor.model, PROMPTS, COMPLETIONS, TEMPERATURE)
    assert torch.equal(mask, naive_mask)
    torch.testing.assert_close(logprobs, naive.detach(), atol=1e-6, rtol=0)


def test_eager_forward_compiles_nothing_and_a_compiled_body_is_kept_per_model() -> None:
    """The default runs each model's own decoder body; compile_forward wraps each model's once (lazily:
    nothing compiles before the first call), the actor's and the reference's apart."""
    eager_config, compiled_config = (actor_config("token-mean", 0.5, budget_for(1)) for _ in range(2))
    compiled_config.compile_forward = True
    eager, compiled, reference = frozen_actor(eager_config), frozen_actor(compiled_config), tiny_model()
    assert eager._body(eager.model) is None and eager._body(reference) is None
    body = compiled._body(compiled.model)
    assert body is not None and compiled._body(compiled.model) is body
    assert compiled._body(reference) not in (None, body)


def test_compiled_forward_matches_eager_logprobs_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """compile_forward (torch.compile of the decoder body, dynamic shapes) gives the eager log-probs and
    gradients up to the last bits. The graph is captured by dynamo as in a run, then run by the
    `aot_eager` backend: inductor's code generation costs about 50 CPU-seconds and a C++ compiler, and its
    numerics are checked by the learning test run with compile_forward=true (README, Performance)."""
    eager_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda *args, **kwargs: eager_compile(*args, **kwargs, backend="aot_eager")
    )
    eager_config, compiled_config = (actor_config("token-mean", 0.5, budget_for(1)) for _ in range(2))
    compiled_config.compile_forward = True
    eager, compiled = frozen_actor(eager_config), frozen_actor(compiled_config)
    logprobs, mask = compiled.logprobs(PROMPTS, COMPLETIONS)
    naive, naive_mask = sequence_logprobs(compiled.model, PROMPTS, COMPLETIONS, TEMPERATURE)
    assert torch.equal(mask, naive_mask)
    torch.testing.assert_close(logprobs, naive.detach(), atol=1e-5, rtol=0)
    for actor in (eager, compiled):
        actor.update(PROMPTS, COMPLETIONS, **ppo_inputs(actor.model))
    expected, actual = gradients(eager.model), gradients(compiled.model)
    scale = max(float(g.abs().max()) for g in expected)
    assert max(float((a - e).abs().max()) for a, e in zip(actual, expected, strict=True)) <= 1e-5 * scale
    assert compiled._compiled  # the compiled body ran (one entry per model)


def test_update_with_only_empty_completions_changes_nothing() -> None:
    actor = frozen_actor(actor_config("token-mean", 0.5, 64))
    empty = torch.zeros(2, 0)
    stats = actor.update([[1, 2], [3]], [[], []], torch.ones(2), empty, empty, torch.ones(2))
    assert stats.loss == 0.0 and stats.grad_norm == 0.0
    assert all(p.grad is None for p in actor.model.parameters())


@pytest.mark.parametrize("mode", LOSS_AGGREGATIONS)
def test_loss_shares_sum_to_the_minibatch_aggregate(mode: str) -> None:
    generator = torch.Generator().manual_seed(5)
    token_loss = torch.randn(9, 6, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([6, 0, 2, 5, 1, 0, 3, 6, 4])
    mask = (torch.arange(6) < lengths[:, None]).double()
    whole = aggregate_loss(token_loss, mask, mode, norm_length=8)
    tokens, rows = int(mask.sum()), int((lengths > 0).sum())
    for bounds in ([0, 9], [0, 4, 9], [0, 1, 2, 5, 6, 9]):
        parts = list(zip(bounds[:-1], bounds[1:], strict=True))
        shares = sum(
            aggregate_loss_share(token_loss[a:b], mask[a:b], mode, tokens, rows, norm_length=8)
            for a, b in parts
        )
        assert float(shares) == pytest.approx(float(whole), rel=1e-12, abs=1e-15)
        # Broken variant: the mean of per-micro-batch aggregates weighs small micro-batches too much.
        averaged = sum(aggregate_loss(token_loss[a:b], mask[a:b], mode, 8) for a, b in parts) / len(parts)
        if len(parts) > 1:
            assert abs(float(averaged) - float(whole)) > 1e-3


def test_token_budget_microbatches_hand_example() -> None:
    # by (tokens, index): rows 4 5 6 2 0 1 3 of widths 0 1 1 2 3 4 9; budget 8
    assert token_budget_microbatches([3, 4, 2, 9, 0, 1, 1], 8) == [
        [4, 5, 6, 2],  # 4 rows x 2 = 8; row 0 would make 5 x 3
        [0, 1],  # 2 x 4 = 8
        [3],  # 9 > 8: alone
    ]
    assert token_budget_microbatches([5, 5, 5], 10) == [[0, 1], [2]]  # equal widths keep their order
    assert token_budget_microbatches([], 8) == []
    with pytest.raises(ValueError):
        token_budget_microbatches([1], 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=30), st.integers(1, 100))
def test_token_budget_microbatches_respect_budget_and_cover_rows_by_length(
    lengths: list[int], budget: int
) -> None:
    cuts = token_budget_microbatches(lengths, budget)
    order = [row for cut in cuts for row in cut]
    assert order == sorted(range(len(lengths)), key=lambda row: (lengths[row], row))
    for cut in cuts:
        assert len(cut) >= 1
        padded = len(cut) * max(lengths[row] for row in cut)
        assert padded <= budget or len(cut) == 1
    for cut, following in zip(cuts[:-1], cuts[1:], strict=True):  # greedy: the next row did not fit
        assert (len(cut) + 1) * lengths[following[0]] > budget


def peak_cpu_bytes(run: Callable[[], None]) -> int:
    """Peak of the bytes held by torch's CPU allocator during `run`, above what was held before it.

    Read from the profiler's allocation events (`profile_memory`), which record every CPU tensor
    allocation and free in order, autograd's saved tensors and backward buffers included.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = [
        event
        for event in prof.profiler.kineto_results.events()
        if event.name() == "[memory]" and event.device_type() == DeviceType.CPU
    ]
    held = peak = 0
    for event in sorted(events, key=lambda event: event.start_ns()):
        held += event.nbytes()
        peak = max(peak, held)
    return peak


def test_chunked_logprobs_memory_stays_far_below_one_logits_tensor() -> None:
    """Forward + backward of one 1,024-token completion with Qwen3's vocabulary size (152,000 here).

    One [T, V] float32 logits tensor is 1024 x 152,000 x 4 B = 623 MB. Measured peaks (torch 2.13,
    CPU): chunked with 32-token chunks about 0.11 of it (a few [32, V] chunk tensors plus the 9.7 MB
    embedding and its gradient); the naive `sequence_logprobs` about 3.0 of it (logits, their
    gather, the tempered copy and the log softmax, live together). Bound: chunked < 0.25; the
    control asserts naive > 1.0, so the bound rejects the naive computation.
    """
    vocab, completion_tokens = 152_000, 1024
    model = build_tiny_qwen3(
        vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
    )
    generator = torch.Generator().manual_seed(6)
    prompts = [torch.randint(0, vocab, (16,), generator=generator).tolist()]
    completions = [torch.randint(0, vocab, (completion_tokens,), generator=generator).tolist()]
    logits_bytes = completion_tokens * vocab * 4

    def forward_backward(logprob_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
        def run() -> None:
            model.zero_grad(set_to_none=True)
            logprob_fn()[0].sum().backward()

        return run

    chunked = peak_cpu_bytes(
        forward_backward(lambda: completion_logprobs(model, prompts, completions, 1.0, chunk_tokens=32))
    )
    naive = peak_cpu_bytes(forward_backward(lambda: sequence_logprobs(model, prompts, completions, 1.0)))
    assert chunked < 0.25 * logits_bytes, chunked / logits_bytes
    assert naive > 1.0 * logits_bytes, naive / logits_bytes
