"""The transformers engine, log-probs, evaluation metrics and the cached warm start, on tiny models."""

import json
import multiprocessing
import time

import numpy as np
import pytest
import torch
from logprob_reference import sequence_logprobs

from gdro.data.synthetic import ALPHABET, SyntheticTaskConfig, build_synthetic_splits
from gdro.engines.base import Decoding, Generations
from gdro.engines.hf import HFEngine, tokenize_prompts
from gdro.models import base_model
from gdro.models.base_model import WarmStartConfig, config_hash, ensure_base_model, load_base_model
from gdro.models.char_tokenizer import build_char_tokenizer
from gdro.models.tiny import build_tiny_qwen3
from gdro.rewards import InlineReward, integer_match_reward
from gdro.train.actor import completion_logprobs
from gdro.train.evaluator import EvalSet, Evaluator

TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 128,
}
PROMPTS = ["47+3......=", "12-5+9....=", "03+1+2+3-4=", "99+1......="]


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer(ALPHABET)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=1, **TINY)


def test_tiny_model_is_seeded_and_keeps_global_rng(tokenizer):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=5, **TINY)
    assert torch.equal(torch.rand(1), expected_next)
    second = build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=5, **TINY)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.config.eos_token_id == tokenizer.eos_token_id
    assert first.config.pad_token_id == tokenizer.pad_token_id


DECODES = ("shrinking", "generate")


@pytest.mark.parametrize("decode", DECODES)
def test_generate_honours_unequal_and_zero_counts(model, tokenizer, decode):
    engine = HFEngine(model, tokenizer, batch_size=4, decode=decode)
    counts = [2, 0, 3, 1]
    params = Decoding(max_new_tokens=12)
    model.train()
    torch.manual_seed(0)
    prompt_token_ids = tokenize_prompts(tokenizer, PROMPTS)
    generations = engine.generate(prompt_token_ids, counts, params)
    assert model.training, "generate must restore train mode"

    assert generations.prompt_index.tolist() == [0, 0, 2, 2, 2, 3]
    assert generations.prompt_index.dtype == np.int64
    for i, prompt_ids in zip(generations.prompt_index, generations.prompt_token_ids, strict=True):
        assert prompt_ids == tokenizer(PROMPTS[i], add_special_tokens=False)["input_ids"]
    assert len(generations.completion_token_ids) == len(generations.texts) == sum(counts)
    assert len(generations.finish_reasons) == sum(counts)
    for completion in generations.completion_token_ids:
        assert 1 <= len(completion) <= params.max_new_tokens

    torch.manual_seed(0)
    again = engine.generate(prompt_token_ids, counts, params)
    assert again.completion_token_ids == generations.completion_token_ids

    empty = engine.generate(prompt_token_ids, [0, 0, 0, 0], params)
    assert empty.prompt_index.shape == (0,) and empty.texts == []
    assert engine.generate([], [], params).completion_token_ids == []


@pytest.mark.parametrize("decode", DECODES)
def test_a_rollout_copy_follows_the_synced_weights_and_the_actor_engine_copies_nothing(tokenizer, decode):
    """Under ZeRO-3 the engine generates on a whole copy that `sync_weights` updates (tied head included);
    on the actor itself the sync finds the actor's own tensors."""
    actor = build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=1, **TINY)
    copy = build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=2, **TINY)
    engine = HFEngine(copy, tokenizer, decode=decode)
    engine.sync_weights((name, p.detach()) for name, p in actor.named_parameters())  # tied head: one name
    for name, tensor in actor.state_dict().items():
        assert torch.equal(copy.state_dict()[name], tensor), name
    assert copy.lm_head.weight.data_ptr() == copy.model.embed_tokens.weight.data_ptr()  # still tied
    decoding = Decoding(temperature=0.0, max_new_tokens=6)
    prompts = tokenize_prompts(tokenizer, PROMPTS)
    assert (
        engine.generate(prompts, [1] * 4, decoding).completion_token_ids
        == HFEngine(actor, tokenizer, decode=decode).generate(prompts, [1] * 4, decoding).completion_token_ids
    )
    before = {name: tensor.clone() for name, tensor in actor.state_dict().items()}
    HFEngine(actor, tokenizer).sync_weights(actor.state_dict().items())  # its own tensors: no copy
    assert all(torch.equal(actor.state_dict()[name], tensor) for name, tensor in before.items())
    with pytest.raises(KeyError, match="no tensor 'head.bias'"):
        engine.sync_weights([("head.bias", torch.zeros(3))])
    with pytest.raises(ValueError, match="lm_head.weight is"):
        engine.sync_weights([("lm_head.weight", torch.zeros(1))])  # copy_ would broadcast it silently


@pytest.mark.parametrize("decode", DECODES)
def test_completions_stop_at_eos_without_padding(model, tokenizer, decode):
    engine = HFEngine(model, tokenizer, batch_size=16, decode=decode)
    params = Decoding(temperature=1.0, max_new_tokens=40)
    torch.manual_seed(0)
    generations = engine.generate(tokenize_prompts(tokenizer, PROMPTS), [10, 10, 10, 10], params)
    eos = tokenizer.eos_token_id
    ended = [c for c in generations.completion_token_ids if eos in c]
    assert ended and len(ended) < 40, "the seed should give both finished and unfinished rollouts"
    for completion, text, reason in zip(
        generations.completion_token_ids, generations.texts, generations.finish_reasons, strict=True
    ):
        if eos in completion:
            assert completion.index(eos) == len(completion) - 1 and reason == "stop"
        else:
            # generate pads only after <eos>, so a full-length completion holds no padding
            assert len(completion) == params.max_new_tokens and reason == "length"
        assert text == tokenizer.decode(completion, skip_special_tokens=True)
    assert generations.truncation_rate == (40 - len(ended)) / 40


@pytest.mark.parametrize("decode", DECODES)
def test_extra_stop_token_ids_end_completions(model, tokenizer, decode):
    """A stop id besides eos (Qwen3 base: <|im_end|>) ends a completion there, kept as its last token."""
    engine = HFEngine(model, tokenizer, batch_size=16, decode=decode)
    prompt_ids = tokenize_prompts(tokenizer, PROMPTS)
    torch.manual_seed(0)
    free = engine.generate(prompt_ids, [10] * 4, Decoding(max_new_tokens=40))
    stop = max({t for c in free.completion_token_ids for t in c[:-1]}, key=lambda t: sum(
        t in c[:-1] for c in free.completion_token_ids))  # fmt: skip
    torch.manual_seed(0)
    stopped = engine.generate(prompt_ids, [10] * 4, Decoding(max_new_tokens=40, stop_token_ids=(stop,)))
    hits = [c for c in stopped.completion_token_ids if stop in c]
    assert hits
    for completion, reason in zip(stopped.completion_token_ids, stopped.finish_reasons, strict=True):
        if stop in completion:
            assert completion.index(stop) == len(completion) - 1 and reason == "stop"


def test_sequence_logprobs_match_unpadded_forward(model, tokenizer):
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    completions = [[5, 6, 7], [8], [9, 10, 11, 12, 2], []]
    logprobs, mask = sequence_logprobs(model, prompts, completions)
    assert logprobs.shape == mask.shape == (4, 5)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]
    assert torch.isfinite(logprobs).all()
    assert (logprobs[mask == 0] == 0).all()

    with torch.no_grad():
        for row in range(3):
            sequence = torch.tensor([prompts[row] + completions[row]])
            all_logprobs = torch.log_softmax(model(sequence).logits[0].float(), dim=-1)
            start = len(prompts[row]) - 1
            positions = torch.arange(start, start + len(completions[row]))
            expected = all_logprobs[positions, torch.tensor(completions[row])]
            torch.testing.assert_close(logprobs[row, : len(completions[row])].detach(), expected)

    model.zero_grad()
    (logprobs.sum() / mask.sum()).backward()
    assert model.model.embed_tokens.weight.grad is not None
    assert torch.isfinite(model.model.embed_tokens.weight.grad).all()


class _ScriptedEngine:
    """Answers prompt i correctly on its first correct_counts[i] samples."""

    def __init__(self, answers, correct_counts):
        self.answers, self.correct_counts = answers, correct_counts

    def generate(self, prompt_token_ids, counts, decoding):
        prompt_index = np.repeat(np.arange(len(prompt_token_ids)), counts)
        texts = []
        for i in range(len(prompt_token_ids)):
            for j in range(counts[i]):
                wrong = (int(self.answers[i]) + 1) % 100
                texts.append(f"\\boxed{{{self.answers[i] if j < self.correct_counts[i] else wrong}}}")
        empty = [[] for _ in texts]
        return Generations(prompt_index, empty, empty, texts, ["stop"] * len(texts))


def test_evaluator_level_metrics():
    _, evaluation = build_synthetic_splits(
        SyntheticTaskConfig(num_train=10, num_eval_per_level=2, level_steps=(1, 2))
    )
    engine = _ScriptedEngine(evaluation["answer"], correct_counts=[4, 0, 1, 0])
    eval_set = EvalSet(
        "synthetic",
        [[1]] * 4,
        list(evaluation["answer"]),
        InlineReward(integer_match_reward),
        levels=np.asarray(evaluation["level"]),
    )
    samplings = [("eval", Decoding()), ("eval_rollout", Decoding(temperature=0.5))]
    metrics = Evaluator(engine, [eval_set], samples=4, samplings=samplings).evaluate()
    expected = {
        "eval/mean@4": 5 / 16,
        "eval/pass@4": 0.5,
        "eval/mean@4/level_0": 0.5,
        "eval/pass@4/level_0": 0.5,
        "eval/mean@4/level_1": 0.125,
        "eval/pass@4/level_1": 0.5,
    }
    assert metrics == pytest.approx(
        expected | {key.replace("eval/", "eval_rollout/"): value for key, value in expected.items()}
    )


def test_evaluator_benchmark_metrics():
    """Two benchmark sets: per-benchmark keys and the pooled pass@k over all their prompts."""
    reward = InlineReward(integer_match_reward)
    sets = [EvalSet("a", [[1], [1]], ["1", "2"], reward), EvalSet("b", [[1]], ["3"], reward)]
    engine_a = _ScriptedEngine(["1", "2"], correct_counts=[2, 0])
    engine_b = _ScriptedEngine(["3"], correct_counts=[1])

    class Routed:
        def generate(self, prompt_token_ids, counts, decoding):
            return (engine_a if len(prompt_token_ids) == 2 else engine_b).generate(
                prompt_token_ids, counts, decoding
            )

    metrics = Evaluator(Routed(), sets, samples=2, samplings=[("eval", Decoding())]).evaluate()
    assert metrics["eval/a/mean@2"] == 0.5 and metrics["eval/a/pass@2"] == 0.5
    assert metrics["eval/b/mean@2"] == 0.5 and metrics["eval/b/pass@2"] == 1.0
    assert metrics["eval/pass@2"] == pytest.approx(2 / 3)  # pooled over the 3 prompts


def test_base_model_hash_ignores_what_the_warm_start_does_not_read():
    task, warm = SyntheticTaskConfig(), WarmStartConfig()
    same = config_hash(task, TINY, warm)
    assert config_hash(SyntheticTaskConfig(num_train=77, level_mix_power=0.3), TINY, warm) == same
    for other_task in (
        SyntheticTaskConfig(seed=1),
        SyntheticTaskConfig(num_eval_per_level=5),
        SyntheticTaskConfig(level_steps=(1, 2, 3)),
    ):
        assert config_hash(other_task, TINY, warm) != same
    assert config_hash(task, {**TINY, "hidden_size": 64}, warm) != same
    assert config_hash(task, TINY, WarmStartConfig(steps=451)) != same
    assert config_hash(task, TINY, WarmStartConfig(carry_slip_rate=0.0)) != same


def test_ensure_base_model_trains_once_then_reuses(tmp_path, monkeypatch):
    task = SyntheticTaskConfig(num_train=16, num_eval_per_level=2)
    warm_start = WarmStartConfig(steps=5, batch_size=8, warmup_steps=1)
    path = ensure_base_model(tmp_path, task, TINY, warm_start, device="cpu")
    record = json.loads((path / "warm_start.json").read_text())
    assert record["history"][-1]["step"] == 5
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [path.name], (
        "no staging directory may remain"
    )

    def refuse_to_train(*args, **kwargs):
        raise AssertionError("a cached base model must not be retrained")

    monkeypatch.setattr(base_model, "train_warm_start", refuse_to_train)
    assert ensure_base_model(tmp_path, task, TINY, warm_start) == path

    model, tokenizer = load_base_model(path)
    assert not model.training
    assert model.config.hidden_size == TINY["hidden_size"]
    assert tokenizer.padding_side == "left"
    assert tokenizer("47+3=")["input_ids"] == build_char_tokenizer(ALPHABET)("47+3=")["input_ids"]
    generations = HFEngine(model, tokenizer).generate(
        tokenize_prompts(tokenizer, ["47+3="]), [2], Decoding(max_new_tokens=4)
    )
    assert len(generations.texts) == 2

    with pytest.raises(AssertionError, match="must not be retrained"):
        ensure_base_model(tmp_path, task, TINY, WarmStartConfig(steps=6, batch_size=8, warmup_steps=1))


def _ensure_after_barrier(cache_dir, barrier, trained_log) -> str:
    """In a spawned process: wait for the others, then ask for the base model; a training appends a line."""
    real = base_model.train_warm_start

    def logged(*args, **kwargs):
        with open(trained_log, "a") as log:
            log.write("trained\n")
        time.sleep(1.0)  # long enough for the other process to reach the lock
        return real(*args, **kwargs)

    base_model.train_warm_start = logged
    barrier.wait()
    task = SyntheticTaskConfig(num_train=16, num_eval_per_level=2)
    return str(ensure_base_model(cache_dir, task, TINY, WarmStartConfig(steps=3, batch_size=8), device="cpu"))


def test_processes_asking_at_once_train_the_base_model_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier, trained_log = context.Manager().Barrier(2), tmp_path / "trained.log"
    with context.Pool(2) as pool:
        paths = pool.starmap(_ensure_after_barrier, [(tmp_path / "cache", barrier, trained_log)] * 2)
    assert paths[0] == paths[1]
    assert trained_log.read_text() == "trained\n"  # the second waited on the lock and reused the model


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_agree_with_left_padded_generation(model, tokenizer, temperature):
    """On-policy PPO needs ratio 1: the right-padded scoring pass (the naive reference and the actor's
    chunked one) must match the distribution generate sampled from (its processed scores: the logits
    divided by the temperature)."""
    prompts = ["47+3=", "12-5+9+1+2+3=", "3="]
    batch = tokenizer(prompts, padding=True, return_tensors="pt")
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.eval().generate(
            **batch,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            max_new_tokens=6,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=-1,
        )
    completions = out.sequences[:, batch["input_ids"].shape[1] :]
    expected = torch.stack(out.scores, 1).log_softmax(-1).gather(-1, completions[..., None]).squeeze(-1)
    prompt_ids = [tokenizer(p)["input_ids"] for p in prompts]
    with torch.no_grad():
        logprobs, _ = sequence_logprobs(model, prompt_ids, completions.tolist(), temperature)
        untempered, _ = sequence_logprobs(model, prompt_ids, completions.tolist())
        chunked, _ = completion_logprobs(model, prompt_ids, completions.tolist(), temperature, chunk_tokens=4)
    torch.testing.assert_close(logprobs, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunked, expected, atol=1e-5, rtol=1e-5)  # what the actor trains with
    if temperature != 1.0:
        assert not torch.allclose(untempered, expected, atol=1e-3), "the temperature must matter"


def test_sequence_logprobs_refuse_temperature_zero(model, tokenizer):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sequence_logprobs(model, [[5]], [[6]], temperature=0.0)
