"""Group filters, selected by `conf/filter/<name>.yaml`: `none` (train every generated group: GRPO) and
`accuracy_band` (keep a group when its accuracy lies in a band: PRIME's filter, and DAPO's dynamic
sampling as the band (0, 1) exclusive). Each registers itself in `gdro.core.registry.FILTERS`; importing
this package registers them all. `RoundSelection` is the generation-round logic every filter shares."""

from gdro.core.filters.accuracy_band import AccuracyBand, AccuracyBandConfig
from gdro.core.filters.base import FilterExhaustedError, GroupFilter, RoundsConfig, RoundSelection
from gdro.core.filters.none import KeepAll

__all__ = [
    "AccuracyBand",
    "AccuracyBandConfig",
    "FilterExhaustedError",
    "GroupFilter",
    "KeepAll",
    "RoundSelection",
    "RoundsConfig",
]
