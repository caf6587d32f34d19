"""DAPO-Math prompts (gdro.data.dapo_math) on the local fixtures of scripts/make_fixtures.py."""

import logging
from pathlib import Path

import datasets
import pytest

from gdro.data.dapo_math import (
    DAPO_PREFIX,
    DAPO_SUFFIX,
    DapoMathConfig,
    load_dapo_math,
    prepare_prompts,
    prompt_fingerprint,
)
from gdro.data.prompt_template import BOXED_INSTRUCTION, render_prompt
from gdro.models.ascii_tokenizer import build_ascii_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"
DAPO_FOLDER = FIXTURES / "open-r1" / "DAPO-Math-17k-Processed"
DAPO_FILE = DAPO_FOLDER / "en" / "train-00000-of-00001.parquet"
EDGE_FILE = FIXTURES / "dapo_math_edge_rows.parquet"
PROBLEMS = [
    "Find the number of positive divisors of $360$.",
    "Let $x + y = 10$ and $xy = 21$. Find $x^2 + y^2$.",
    "How many ways can 5 people be seated in a row if two of them must sit together?",
    "The sum of the first $n$ odd numbers is $169$. Find $n$.",
    "Compute the remainder when $2^{100}$ is divided by $7$.",
]
ANSWERS = ["24", "58", "48", "13", "2"]
# Rows 5 and 6: 3,735 and 4,180 bytes, 830 and 3,411 Qwen3 tokens (the byte tokenizer drops both).
LONG_ROWS = 2


@pytest.fixture(scope="module")
def tokenizer():
    return build_ascii_tokenizer()


def test_hub_layout_folder_with_config_name(tokenizer):
    prompt_set = load_dapo_math(DapoMathConfig(path=str(DAPO_FOLDER), config_name="en"), tokenizer)
    assert prompt_set.prompts == [f"{problem}\n\n{BOXED_INSTRUCTION}" for problem in PROBLEMS]
    assert prompt_set.answers == ANSWERS
    assert prompt_set.source_rows == [0, 1, 2, 3, 4]
    assert (prompt_set.num_rows, prompt_set.too_long, prompt_set.bad_rows, prompt_set.unwrapped) == (
        5 + LONG_ROWS,
        LONG_ROWS,
        {},
        0,
    )
    # As on the hub, README.md's `configs:` names "all", "en" and "cn": the name picks the rows, and
    # leaving it out is an error.
    everything = load_dapo_math(DapoMathConfig(path=str(DAPO_FOLDER), config_name="all"), tokenizer)
    assert everything.num_rows == 7 + LONG_ROWS and everything.prompts[:5] == prompt_set.prompts
    with pytest.raises(ValueError, match="Config name is missing"):
        load_dapo_math(DapoMathConfig(path=str(DAPO_FOLDER), config_name=None), tokenizer)


def test_parquet_file_path_gives_the_same_prompts(tokenizer):
    from_folder = load_dapo_math(DapoMathConfig(path=str(DAPO_FOLDER)), tokenizer)
    from_file = load_dapo_math(DapoMathConfig(path=str(DAPO_FILE)), tokenizer)
    assert from_file.prompts == from_folder.prompts
    assert from_file.fingerprint == from_folder.fingerprint


def test_chat_template_wraps_the_same_text(tokenizer):
    prompt_set = load_dapo_math(DapoMathConfig(path=str(DAPO_FILE), template="chat"), tokenizer)
    expected = f"<|im_start|>user\n{PROBLEMS[0]}\n\n{BOXED_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n"
    assert prompt_set.prompts[0] == expected
    assert prompt_set.prompts[0] == render_prompt(PROBLEMS[0], "chat", tokenizer)


def test_length_filter_counts_and_renumbers(tokenizer):
    """Rejects a filter that keeps the old row numbers: the ids after filtering are 0..K-1."""
    lengths = [len(f"{problem}\n\n{BOXED_INSTRUCTION}".encode()) for problem in PROBLEMS]  # one token a byte
    longest = lengths.index(max(lengths))
    limit = sorted(lengths)[-2]
    prompt_set = load_dapo_math(DapoMathConfig(path=str(DAPO_FILE), max_prompt_tokens=limit), tokenizer)
    kept = [i for i in range(5) if i != longest]
    assert prompt_set.too_long == 1 + LONG_ROWS
    assert prompt_set.source_rows == kept
    assert prompt_set.answers == [ANSWERS[i] for i in kept]
    assert len(prompt_set) == 4
    at_limit = load_dapo_math(DapoMathConfig(path=str(DAPO_FILE), max_prompt_tokens=max(lengths)), tokenizer)
    assert at_limit.too_long == LONG_ROWS


def test_the_length_filter_counts_real_qwen3_tokens(tokenizer):
    """At the paper's 3,200 tokens, Qwen3's tokenizer keeps the 830-token prompt and drops the 3,411-token
    one; counted in bytes (the byte tokenizer) both are dropped."""
    from gdro.models.pretrained import load_tokenizer
    from gdro.models.qwen3_shape import qwen3_tokenizer_folder

    qwen3 = load_tokenizer(str(qwen3_tokenizer_folder()), "<|endoftext|>")
    config = DapoMathConfig(path=str(DAPO_FOLDER), max_prompt_tokens=3200)
    prompt_set = load_dapo_math(config, qwen3)
    assert (prompt_set.source_rows, prompt_set.too_long) == ([0, 1, 2, 3, 4, 5], 1)
    assert [len(qwen3(p)["input_ids"]) for p in prompt_set.prompts][5] == 830
    assert prompt_set.answers[5] == "101"
    assert load_dapo_math(config, tokenizer).too_long == LONG_ROWS


def test_bad_rows_are_skipped_and_counted_by_reason(tokenizer, caplog):
    """Duplicates are found after DAPO's instruction is removed (row 8 repeats row 4's problem)."""
    with caplog.at_level(logging.INFO, logger="gdro.data.dapo_math"):
        prompt_set = load_dapo_math(DapoMathConfig(path=str(EDGE_FILE)), tokenizer)
    assert prompt_set.source_rows == [0, 4, 9]
    assert prompt_set.answers == ["5", "6", "9"]
    assert prompt_set.prompts[1] == render_prompt("What is 10-4?", "base")
    assert prompt_set.unwrapped == 1
    assert prompt_set.bad_rows == {
        "empty_problem": 2,
        "missing_answer": 1,
        "duplicate_problem": 2,
        "empty_answer": 1,
        "missing_problem": 1,
    }
    assert prompt_set.num_rows == len(prompt_set) + sum(prompt_set.bad_rows.values()) + prompt_set.too_long
    (record,) = [r for r in caplog.records if r.name == "gdro.data.dapo_math"]
    assert "10 rows -> 3 prompts" in record.getMessage()
    assert "duplicate_problem=2" in record.getMessage()


def test_bad_row_error_names_the_row(tokenizer):
    with pytest.raises(ValueError, match=r"bad row 1 .*empty_problem"):
        load_dapo_math(DapoMathConfig(path=str(EDGE_FILE), on_bad_row="error"), tokenizer)


def test_non_string_values_and_missing_columns(tokenizer):
    rows = datasets.Dataset.from_dict({"prompt": ["1+1?", "2+2?"], "solution": [2, 4]})
    prompt_set = prepare_prompts(rows, DapoMathConfig(), tokenizer)
    assert (len(prompt_set), prompt_set.bad_rows) == (0, {"non_string_answer": 2})
    with pytest.raises(ValueError, match=r"bad row 0 .*non_string_answer"):
        prepare_prompts(rows, DapoMathConfig(on_bad_row="error"), tokenizer)
    with pytest.raises(ValueError, match=r"column 'answer' not in the dataset"):
        prepare_prompts(rows, DapoMathConfig(answer_column="answer"), tokenizer)


def test_dapo_instruction_is_removed_only_when_complete(tokenizer):
    wrapped = f"{DAPO_PREFIX}\n\nWhat is 1+1?\n\n{DAPO_SUFFIX}"
    half = f"{DAPO_PREFIX}\n\nWhat is 2+2?"
    rows = datasets.Dataset.from_dict({"prompt": [wrapped, half], "solution": ["2", "4"]})
    prompt_set = prepare_prompts(rows, DapoMathConfig(), tokenizer)
    assert prompt_set.prompts == [render_prompt("What is 1+1?", "base"), render_prompt(half, "base")]
    assert prompt_set.unwrapped == 1


def test_fingerprint_is_stable_and_sensitive(tokenizer):
    config = DapoMathConfig(path=str(DAPO_FILE))
    base = load_dapo_math(config, tokenizer).fingerprint
    assert base == load_dapo_math(config, tokenizer).fingerprint
    assert len(base) == 16 and int(base, 16) >= 0
    chat = load_dapo_math(DapoMathConfig(path=str(DAPO_FILE), template="chat"), tokenizer).fingerprint
    limit = max(len(prompt) for prompt in load_dapo_math(config, tokenizer).prompts) - 1  # drops one
    filtered = load_dapo_math(
        DapoMathConfig(path=str(DAPO_FILE), max_prompt_tokens=limit), tokenizer
    ).fingerprint
    assert len({base, chat, filtered}) == 3
    # Pairs are delimited: moving text between prompt and answer, or reordering, changes it.
    assert prompt_fingerprint(["ab"], ["c"]) != prompt_fingerprint(["a"], ["bc"])
    assert prompt_fingerprint(["a", "b"], ["1", "2"]) != prompt_fingerprint(["b", "a"], ["2", "1"])


def test_config_validation():
    with pytest.raises(ValueError, match="template"):
        DapoMathConfig(template="instruct")
    with pytest.raises(ValueError, match="on_bad_row"):
        DapoMathConfig(on_bad_row="drop")
    with pytest.raises(ValueError, match="max_prompt_tokens"):
        DapoMathConfig(max_prompt_tokens=0)


def test_a_rewritten_folder_is_read_afresh(tmp_path, tokenizer):
    """datasets keys its cache of a folder with a `configs:` block by the folder's name and config only: without
    `folder_cache_dir` the rewritten copy below was served the 7 rows first read from it."""
    import shutil

    copy = tmp_path / "DAPO-Math-17k-Processed"
    shutil.copytree(DAPO_FOLDER, copy)
    assert load_dapo_math(DapoMathConfig(path=str(copy)), tokenizer).num_rows == 5 + LONG_ROWS
    shutil.copyfile(EDGE_FILE, copy / "en" / "train-00000-of-00001.parquet")
    assert load_dapo_math(DapoMathConfig(path=str(copy)), tokenizer).num_rows == 10
