"""The shrinking sampling loop (`gdro.engines.shrinking_decode`) against transformers `generate`: the same
tokens where the two must draw alike, a batch that loses each row at its stop token, prompts encoded once."""

import pytest
import torch
from test_hf_engine import TINY

from gdro.data.synthetic import ALPHABET
from gdro.engines.base import Decoding
from gdro.engines.hf import HFEngine, tokenize_prompts
from gdro.models.char_tokenizer import build_char_tokenizer
from gdro.models.tiny import build_tiny_qwen3

PROMPTS = ["47+3......=", "12-5+9....=", "03+1+2+3-4=", "99+1=", "7="]
DECODINGS = [
    Decoding(temperature=1.0, max_new_tokens=30),
    Decoding(temperature=0.7, top_k=5, top_p=0.8, max_new_tokens=30),
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_char_tokenizer(ALPHABET)


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_tiny_qwen3(len(tokenizer), tokenizer=tokenizer, seed=3, **TINY)


def sample(engine: HFEngine, prompts: list[list[int]], counts: list[int], decoding: Decoding, seed: int):
    torch.manual_seed(seed)
    return engine.generate(prompts, counts, decoding)


@pytest.mark.parametrize("decoding", DECODINGS)
def test_one_row_draws_the_tokens_generate_draws(model, tokenizer, decoding):
    """With one row nothing leaves the batch early: the loop consumes torch's RNG as `generate` does, through
    the same processors, and so samples the very same completion."""
    shrinking, generate = (HFEngine(model, tokenizer, decode=d) for d in ("shrinking", "generate"))
    lengths = set()
    for seed, prompt in enumerate(tokenize_prompts(tokenizer, PROMPTS)):
        ours = sample(shrinking, [prompt], [1], decoding, seed)
        theirs = sample(generate, [prompt], [1], decoding, seed)
        assert ours.completion_token_ids == theirs.completion_token_ids
        assert ours.finish_reasons == theirs.finish_reasons
        lengths.add(len(ours.completion_token_ids[0]))
    assert len(lengths) > 1  # the prompts end at different steps


def test_greedy_batches_agree_with_generate(model, tokenizer):
    prompts = tokenize_prompts(tokenizer, PROMPTS)
    decoding = Decoding(temperature=0.0, max_new_tokens=30)
    counts = [2, 0, 3, 1, 2]
    ours = HFEngine(model, tokenizer, batch_size=3).generate(prompts, counts, decoding)
    theirs = HFEngine(model, tokenizer, batch_size=3, decode="generate").generate(prompts, counts, decoding)
    assert ours.completion_token_ids == theirs.completion_token_ids
    assert ours.finish_reasons == theirs.finish_reasons
    assert ours.prompt_index.tolist() == [0, 0, 2, 2, 2, 3, 4, 4]


def test_rows_leave_the_batch_at_their_stop_and_prompts_are_encoded_once(model, tokenizer):
    """Every forward after the first runs on the rows still going: a completion of c tokens takes part in
    c - 1 of them (its last token ends it or reaches the cap). The first encodes each prompt once."""
    batches: list[tuple[int, int]] = []
    hook = model.model.register_forward_pre_hook(
        lambda _, args, kwargs: batches.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        prompts = tokenize_prompts(tokenizer, PROMPTS)
        generations = sample(HFEngine(model, tokenizer), prompts, [4, 4, 0, 4, 4], DECODINGS[0], 0)
    finally:
        hook.remove()
    lengths = [len(c) for c in generations.completion_token_ids]
    assert batches[0] == (4, max(len(prompts[i]) for i in (0, 1, 3, 4)))  # the four prompts, left-padded
    decode_rows = [rows for rows, width in batches[1:]]
    assert all(width == 1 for _, width in batches[1:])
    assert decode_rows == sorted(decode_rows, reverse=True) and decode_rows[0] <= 16
    assert sum(decode_rows) == sum(length - 1 for length in lengths)
    assert len(set(lengths)) > 1  # some rows did leave early
    assert len(decode_rows) == max(lengths) - 1


def test_a_prompt_whose_rows_exceed_the_batch_is_split(model, tokenizer):
    prompts = tokenize_prompts(tokenizer, PROMPTS[:2])
    decoding = Decoding(temperature=0.0, max_new_tokens=8)
    split = HFEngine(model, tokenizer, batch_size=3).generate(prompts, [5, 2], decoding)
    whole = HFEngine(model, tokenizer, batch_size=64).generate(prompts, [5, 2], decoding)
    assert split.prompt_index.tolist() == whole.prompt_index.tolist() == [0] * 5 + [1] * 2
    assert split.completion_token_ids == whole.completion_token_ids  # greedy: the same in any batch


def test_unknown_decode_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match="'shrinking' or 'generate'"):
        HFEngine(model, tokenizer, decode="beam")
