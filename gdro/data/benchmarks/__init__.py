"""The evaluation benchmarks of docs/algorithm.md §6: registry (`registry`), loading with the training
template (`load`), and the reported metrics (`metrics`)."""

from gdro.data.benchmarks.load import Benchmark, load_benchmark, load_benchmarks
from gdro.data.benchmarks.metrics import DERIVED_BENCHMARKS, benchmark_metrics
from gdro.data.benchmarks.registry import BENCHMARKS, BenchmarkSpec, gpqa_option_order

__all__ = [
    "BENCHMARKS",
    "DERIVED_BENCHMARKS",
    "Benchmark",
    "BenchmarkSpec",
    "benchmark_metrics",
    "gpqa_option_order",
    "load_benchmark",
    "load_benchmarks",
]
