"""Benchmarks (gdro.data.benchmarks): registry, adapters on the fixtures, GPQA shuffling, metrics."""

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gdro.data.benchmarks import (
    BENCHMARKS,
    benchmark_metrics,
    gpqa_option_order,
    load_benchmark,
    load_benchmarks,
)
from gdro.data.benchmarks.registry import number_text
from gdro.data.prompt_template import render_prompt
from gdro.models.ascii_tokenizer import build_ascii_tokenizer

FIXTURES = Path(__file__).parent / "fixtures"
GPQA_CSV = FIXTURES / "Idavidrein" / "gpqa" / "gpqa_diamond.csv"


@pytest.fixture(scope="module")
def benchmarks():
    return load_benchmarks(local_root=FIXTURES)


def test_registry_matches_scale_md():
    table = {name: (spec.path, spec.config, spec.split, spec.scorer) for name, spec in BENCHMARKS.items()}
    assert table == {
        "math500": ("HuggingFaceH4/MATH-500", None, "test", "math"),
        "aime24": ("HuggingFaceH4/aime_2024", None, "train", "math"),
        "aime25": ("MathArena/aime_2025", None, "train", "math"),
        "amc23": ("math-ai/amc23", None, "test", "math"),
        "minerva": ("math-ai/minervamath", None, "test", "math"),
        "olympiadbench": ("math-ai/olympiadbench", None, "test", "math"),
        "gpqa_diamond": ("Idavidrein/gpqa", "gpqa_diamond", "train", "gpqa"),
    }


def test_each_adapter_on_its_fixture(benchmarks):
    answers = {name: benchmark.answers for name, benchmark in benchmarks.items()}
    assert answers == {
        "math500": ["\\left( 3, \\frac{\\pi}{2} \\right)", "26000", "11\\sqrt2"],
        "aime24": ["986", "024", "9"],  # strings stay strings (leading zero kept)
        "aime25": ["56", "120", "28"],  # int -> str
        "amc23": ["27", "0.5", "8"],  # float -> str, no trailing ".0"
        "minerva": ["10", "1", "1"],
        "olympiadbench": ["2", "3", "$\\frac{5}{6}$"],  # first element of final_answer
        "gpqa_diamond": ["D", "B", "B", "B", "A"],  # fixed across processes and runs
    }
    assert benchmarks["math500"].prompts[1] == render_prompt("What is the value of $513^2 - 487^2$?", "base")
    assert benchmarks["amc23"].prompts[0] == render_prompt("Compute $3^3$.", "base")
    assert {name: b.scorer for name, b in benchmarks.items()} == {
        name: spec.scorer for name, spec in BENCHMARKS.items()
    }


def test_gpqa_letter_points_at_the_correct_option(benchmarks):
    with GPQA_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    gpqa = benchmarks["gpqa_diamond"]
    for row, prompt, letter in zip(rows, gpqa.prompts, gpqa.answers, strict=True):
        lines = dict(
            line.split(") ", 1) for line in prompt.splitlines() if line[:3] in ("A) ", "B) ", "C) ", "D) ")
        )
        assert sorted(lines) == ["A", "B", "C", "D"]
        assert lines[letter] == row["Correct Answer"].strip()
        options = [
            row[c].strip()
            for c in ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
        ]
        assert sorted(lines.values()) == sorted(options)
        assert prompt.startswith(row["Question"] + "\n\nA) ")


def test_gpqa_order_is_seeded_by_the_question_and_varies():
    """Rejects an unseeded (or fixed) shuffle: the order repeats per question and differs across them."""
    questions = [f"Question number {i}?" for i in range(40)]
    orders = [tuple(gpqa_option_order(q)) for q in questions]
    assert orders == [tuple(gpqa_option_order(q)) for q in questions]
    assert all(sorted(order) == [0, 1, 2, 3] for order in orders)
    correct_positions = {order.index(0) for order in orders}
    assert correct_positions == {0, 1, 2, 3}
    assert len(set(orders)) > 10
    # Recorded once; a process with another hash seed (every pytest run) must reproduce it.
    assert tuple(gpqa_option_order("What is the SI unit of force?")) == (3, 2, 1, 0)


def test_chat_template_and_path_override():
    tokenizer = build_ascii_tokenizer()
    path = FIXTURES / "MathArena" / "aime_2025"
    aime25 = load_benchmark(BENCHMARKS["aime25"], "chat", tokenizer, path=str(path))
    assert aime25.prompts[1] == render_prompt("Compute $\\binom{10}{3}$.", "chat", tokenizer)
    assert aime25.prompts[1].startswith("<|im_start|>user\n")


def test_a_bad_row_raises_with_its_index(tmp_path):
    table = pq.read_table(FIXTURES / "math-ai" / "minervamath" / "test-00000-of-00001.parquet").to_pylist()
    table[1]["answer"] = "  "
    bad_file = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(table), bad_file)
    with pytest.raises(ValueError, match=r"minerva row 1 .*'answer' is empty"):
        load_benchmark(BENCHMARKS["minerva"], path=str(bad_file))
    with pytest.raises(ValueError, match="unknown benchmarks"):
        load_benchmarks(["math"], local_root=FIXTURES)


def test_number_text():
    assert [number_text(v, "answer") for v in (27, 27.0, 0.5, -3.0)] == ["27", "27", "0.5", "-3"]
    for value in (True, "27", None, float("nan")):
        with pytest.raises(ValueError):
            number_text(value, "answer")


def test_metrics_by_hand():
    """Pooled metrics weigh prompts, not benchmarks: rejects the mean of the benchmark means."""
    correct = {
        "aime24": np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool),
        "aime25": np.array([[1, 1, 1, 1]], dtype=bool),
        "math500": np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=bool),
    }
    metrics = benchmark_metrics(correct, pass_ks=(1, 2, 4))
    expected = {
        # aime24: counts (1, 0); pass@2 of c = 1 out of 4: 1 - C(3,2)/C(4,2) = 1/2
        "eval/aime24/mean@4": 1 / 8,
        "eval/aime24/pass@4": 1 / 2,
        "eval/aime24/pass@1": 1 / 8,
        "eval/aime24/pass@2": 1 / 4,
        "eval/aime25/mean@4": 1.0,
        "eval/aime25/pass@4": 1.0,
        "eval/aime25/pass@1": 1.0,
        "eval/aime25/pass@2": 1.0,
        # math500: counts (2, 0, 1); pass@2 of c = 2: 1 - C(2,2)/C(4,2) = 5/6
        "eval/math500/mean@4": 3 / 12,
        "eval/math500/pass@4": 2 / 3,
        "eval/math500/pass@1": 3 / 12,
        "eval/math500/pass@2": (5 / 6 + 0 + 1 / 2) / 3,
        # AIME: mean of 2024 and 2025
        "eval/aime/mean@4": (1 / 8 + 1) / 2,
        "eval/aime/pass@4": (1 / 2 + 1) / 2,
        "eval/aime/pass@1": (1 / 8 + 1) / 2,
        "eval/aime/pass@2": (1 / 4 + 1) / 2,
        # pooled over the 6 prompts: counts (1, 0, 4, 2, 0, 1)
        "eval/mean@4": 8 / 24,
        "eval/pass@4": 4 / 6,
        "eval/pass@1": 8 / 24,
        "eval/pass@2": (1 / 2 + 0 + 1 + 5 / 6 + 0 + 1 / 2) / 6,
    }
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    assert metrics["eval/mean@4"] != pytest.approx((1 / 8 + 1 + 3 / 12) / 3)


def test_metrics_edge_cases():
    one = {"aime24": np.ones((2, 4), dtype=bool)}
    assert "eval/aime/mean@4" not in benchmark_metrics(one)  # AIME needs both years
    with pytest.raises(ValueError, match="same number of samples"):
        benchmark_metrics({"a": np.ones((2, 4), dtype=bool), "b": np.ones((2, 8), dtype=bool)})
    with pytest.raises(ValueError, match="pass_ks"):
        benchmark_metrics(one, pass_ks=(8,))
    with pytest.raises(ValueError, match="prompts >= 1"):
        benchmark_metrics({"a": np.ones((0, 4), dtype=bool)})


def test_fixtures_match_the_generator(tmp_path):
    """tests/fixtures is what scripts/make_fixtures.py writes (same files, same rows)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", Path(__file__).parent.parent / "scripts" / "make_fixtures.py"
    )
    make_fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fixtures)
    written = make_fixtures.write_fixtures(tmp_path)
    generated_roots = {path.relative_to(tmp_path).parts[0] for path in written}  # not reward_fuzz/, say
    committed = sorted(
        path
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.relative_to(FIXTURES).parts[0] in generated_roots
    )
    assert [p.relative_to(tmp_path) for p in written] == [p.relative_to(FIXTURES) for p in committed]
    for new, old in zip(written, committed, strict=True):
        if new.suffix == ".parquet":
            assert pq.read_table(new).equals(pq.read_table(old)), old
        else:
            assert new.read_bytes() == old.read_bytes(), old
    assert sum(path.stat().st_size for path in committed) < 100_000
