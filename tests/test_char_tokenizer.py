"""The locally built character tokenizer."""

from transformers import PreTrainedTokenizerFast

from gdro.data.synthetic import ALPHABET, ChainProblem
from gdro.models.char_tokenizer import SPECIAL_TOKENS, build_char_tokenizer


def test_one_token_per_character_and_round_trip():
    tokenizer = build_char_tokenizer(ALPHABET)
    assert len(tokenizer) == len(ALPHABET) + len(SPECIAL_TOKENS)
    problem = ChainProblem(47, (3, -9, 5, 8), slots=6)
    for text in (problem.prompt, problem.completion, ALPHABET):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text)
        assert tokenizer.decode(ids) == text
    assert (
        tokenizer(problem.prompt)["input_ids"]
        == tokenizer(problem.prompt, add_special_tokens=False)["input_ids"]
    )


def test_special_tokens_padding_and_skipping():
    tokenizer = build_char_tokenizer(ALPHABET)
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.padding_side == "left"
    ids = tokenizer("12", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "12"
    batch = tokenizer(["1+2=", "34-5="], padding=True)
    assert batch["input_ids"][0][0] == tokenizer.pad_token_id
    assert batch["attention_mask"][0] == [0, 1, 1, 1, 1]


def test_save_and_reload(tmp_path):
    tokenizer = build_char_tokenizer(ALPHABET)
    tokenizer.save_pretrained(tmp_path)
    reloaded = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    text = ChainProblem(5, (1, -2), slots=2).completion
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.padding_side == "left"
    assert reloaded.eos_token_id == tokenizer.eos_token_id
