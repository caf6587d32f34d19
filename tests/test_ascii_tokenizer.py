"""The locally built byte-level tokenizer with Qwen's special tokens, and a random Qwen3 on it."""

import string

import torch
from transformers import PreTrainedTokenizerFast

from gdro.models.ascii_tokenizer import CHAT_TEMPLATE, build_ascii_tokenizer
from gdro.models.tiny import build_tiny_qwen3


def test_round_trip_one_token_per_ascii_character():
    tokenizer = build_ascii_tokenizer()
    text = string.printable
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == list(text.encode("ascii"))  # id = byte value
    assert tokenizer.decode(ids) == text
    assert tokenizer(text)["input_ids"] == ids  # nothing added around a text
    unicode_text = "x = 90°, π ≈ 3.14159\n  二"
    unicode_ids = tokenizer(unicode_text, add_special_tokens=False)["input_ids"]
    assert len(unicode_ids) == len(unicode_text.encode("utf-8"))
    assert tokenizer.decode(unicode_ids) == unicode_text


def test_special_tokens_like_qwen3_base():
    tokenizer = build_ascii_tokenizer()
    assert len(tokenizer) == 259
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [256, 257, 258]
    assert (tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token) == (256, 256, None)
    ids = tokenizer("a<|im_end|>b", add_special_tokens=False)["input_ids"]
    assert ids == [97, 258, 98]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ab"
    batch = tokenizer(["1+1=", "22+22="], padding=True)
    assert batch["input_ids"][0][:2] == [256, 256] and batch["attention_mask"][0][:2] == [0, 0]


def test_chat_template_renders_chatml(tmp_path):
    tokenizer = build_ascii_tokenizer()
    messages = [{"role": "user", "content": "What is 1+1?"}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"
    no_prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert no_prompt == "<|im_start|>user\nWhat is 1+1?<|im_end|>\n"
    tokenizer.save_pretrained(tmp_path)
    reloaded = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert reloaded.chat_template == CHAT_TEMPLATE
    assert reloaded(rendered)["input_ids"] == tokenizer(rendered)["input_ids"]


def test_random_qwen3_generates_on_it():
    tokenizer = build_ascii_tokenizer()
    model = build_tiny_qwen3(
        len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
        tokenizer=tokenizer,
    )
    assert (model.config.vocab_size, model.config.eos_token_id, model.config.pad_token_id) == (259, 256, 256)
    batch = tokenizer(["What is 1+1?", "Hi"], return_tensors="pt", padding=True)
    with torch.no_grad():
        output = model.generate(**batch, max_new_tokens=6, do_sample=False)
    prompt_length = batch["input_ids"].shape[1]
    assert prompt_length < output.shape[1] <= prompt_length + 6
    assert torch.equal(output[:, :prompt_length], batch["input_ids"])
    assert int(output.max()) < len(tokenizer)
    assert isinstance(tokenizer.decode(output[0, prompt_length:]), str)
