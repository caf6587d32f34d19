"""A character-level tokenizer built locally with the `tokenizers` library (no hub download).

Every character of the alphabet is one token; special tokens come first:
<pad> = 0, <bos> = 1, <eos> = 2, <unk> = 3. Nothing is added around an encoded text, so a prompt
of c characters is exactly c tokens. Padding is on the left, as generation needs.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")


def build_char_tokenizer(alphabet: str) -> PreTrainedTokenizerFast:
    """A fast tokenizer with one token per character of `alphabet` plus `SPECIAL_TOKENS`.

    Vocabulary size is len(SPECIAL_TOKENS) + len(alphabet). Decoding concatenates the characters,
    so decode(encode(text)) == text for any text over the alphabet.
    """
    if len(set(alphabet)) != len(alphabet):
        raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
    if any(char.isspace() for char in alphabet):
        raise ValueError("alphabet must not contain whitespace")
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({char: len(SPECIAL_TOKENS) + index for index, char in enumerate(alphabet)})

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
    )
