"""Load benchmarks as prompts with the training template, from the hub or from local copies.

A benchmark is read with `gdro.data.sources.load_split(path, config, split)`. `path` is the spec's
hub id unless overridden: `load_benchmark(spec, path=...)` takes any folder or file, and
`load_benchmarks(local_root=ROOT)` reads every benchmark from ROOT/<hub id>, a folder laid out like
the hub repository (e.g. ROOT/HuggingFaceH4/MATH-500/test.jsonl, ROOT/Idavidrein/gpqa with its
README.md `configs:` block and gpqa_diamond.csv). tests/fixtures is such a root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from gdro.data.benchmarks.registry import BENCHMARKS, BenchmarkSpec
from gdro.data.prompt_template import render_prompt
from gdro.data.sources import load_split


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: prompts[i] (templated) is graded against answers[i] by `scorer`."""

    name: str
    scorer: str
    prompts: list[str]
    answers: list[str]

    def __len__(self) -> int:
        return len(self.prompts)


def load_benchmark(
    spec: BenchmarkSpec,
    template: str = "base",
    tokenizer: PreTrainedTokenizerBase | None = None,
    path: str | None = None,
) -> Benchmark:
    """Every row of `spec`'s split through its adapter and `render_prompt(problem, template, tokenizer)`.

    `path` replaces the hub id (a local folder or file). A row the adapter rejects raises
    ValueError naming the benchmark and the row index: evaluation never drops a row silently.
    """
    rows = load_split(path or spec.path, spec.config, spec.split)
    prompts, answers = [], []
    for index, row in enumerate(rows):
        try:
            problem, answer = spec.adapter(row)
        except (KeyError, ValueError) as error:
            raise ValueError(f"{spec.name} row {index} ({path or spec.path}): {error}") from error
        prompts.append(render_prompt(problem, template, tokenizer))
        answers.append(answer)
    return Benchmark(spec.name, spec.scorer, prompts, answers)


def load_benchmarks(
    names: Sequence[str] | None = None,
    template: str = "base",
    tokenizer: PreTrainedTokenizerBase | None = None,
    local_root: str | Path | None = None,
) -> dict[str, Benchmark]:
    """The named benchmarks (default: all of `BENCHMARKS`, in its order), each from the hub or, with
    `local_root`, from local_root/<hub id>."""
    names = list(BENCHMARKS) if names is None else list(names)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; known: {list(BENCHMARKS)}")
    benchmarks = {}
    for name in names:
        spec = BENCHMARKS[name]
        path = None if local_root is None else str(Path(local_root) / spec.path)
        benchmarks[name] = load_benchmark(spec, template, tokenizer, path)
    return benchmarks
