"""A tiny byte-level tokenizer shaped like Qwen3's, built locally with the `tokenizers` library.

Qwen3's tokenizer is a byte-level BPE with 151k merges; this one is the same model with no merges:
one token per byte (ids 0-255, so any UTF-8 text encodes, printable ASCII one token per character),
then the Qwen special tokens `<|endoftext|>` = 256 (eos and pad, as in Qwen3-Base),
`<|im_start|>` = 257 and `<|im_end|>` = 258. No bos token, nothing added around an encoded text,
left padding for generation, and a minimal ChatML chat template (what Qwen3's renders for plain
user/assistant turns without thinking). It stands in for the real tokenizer in tests of the
DAPO-Math and benchmark pipelines, where no hub download is possible.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
NUM_BYTE_TOKENS = 256

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML: `<|im_start|>{role}\\n{content}<|im_end|>\\n` per message, then `<|im_start|>assistant\\n`
when a generation prompt is asked for."""


def build_ascii_tokenizer() -> PreTrainedTokenizerFast:
    """The byte-level tokenizer described in the module docstring; vocabulary size 259.

    decode(encode(text)) == text for any text (special-token strings in the text are parsed as the
    special tokens, as in Qwen's tokenizer).
    """
    vocab = {char: byte for byte, char in enumerate(_byte_stand_ins())}
    if set(vocab) != set(pre_tokenizers.ByteLevel.alphabet()):
        raise RuntimeError("the byte stand-ins disagree with the ByteLevel pre-tokenizer's alphabet")

    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=ENDOFTEXT,
        pad_token=ENDOFTEXT,
        additional_special_tokens=[IM_START, IM_END],
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE,
    )


def _byte_stand_ins() -> list[str]:
    """The character ByteLevel writes for each byte 0..255 (GPT-2's `bytes_to_unicode`).

    Printable Latin-1 bytes stand for themselves; the other 68 map to chr(256), chr(257), ... in
    byte order.
    """
    printable = {*range(33, 127), *range(161, 173), *range(174, 256)}
    stand_ins, shifted = [], 0
    for byte in range(NUM_BYTE_TOKENS):
        if byte in printable:
            stand_ins.append(chr(byte))
        else:
            stand_ins.append(chr(NUM_BYTE_TOKENS + shifted))
            shifted += 1
    return stand_ins
