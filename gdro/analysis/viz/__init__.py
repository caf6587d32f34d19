"""Plots of the emergent curriculum (docs/algorithm.md §8) from a run folder's `metrics.jsonl`.

`run` turns records into a `CurriculumRun` (`load_run`, `run_from_records`, `CurriculumHistory`),
`figures` draws it, `report` writes the PNGs and the text summary. The measures themselves are computed
per step in the core (`gdro.core.curriculum_metrics`) and only read here.
"""

from gdro.analysis.viz.figures import (
    eval_by_level_figure,
    eval_compare_figure,
    heatmap_figure,
    lead_lag_figure,
    snapshots_figure,
    weight_entropy_figure,
    wse_figure,
)
from gdro.analysis.viz.report import PLOT_FILES, summary_table, write_comparison_plot, write_run_plots
from gdro.analysis.viz.run import (
    CurriculumHistory,
    CurriculumRun,
    load_run,
    records_from_wandb_history,
    run_from_records,
)

__all__ = [
    "PLOT_FILES",
    "CurriculumHistory",
    "CurriculumRun",
    "eval_by_level_figure",
    "eval_compare_figure",
    "heatmap_figure",
    "lead_lag_figure",
    "load_run",
    "records_from_wandb_history",
    "run_from_records",
    "snapshots_figure",
    "summary_table",
    "weight_entropy_figure",
    "write_comparison_plot",
    "write_run_plots",
    "wse_figure",
]
