"""Results across runs: statistics over seeds, tables and figures, and the simulator sweep.

`stats` (means, Student-t intervals, gains paired by seed), `methods` (the methods compared),
`runs` (run folders as results), `table` (summaries and Markdown tables), `figures`, `report`
(RESULTS.md), `sweep` (methods x seeds on the learning simulator, resumable).
"""
