"""The checks, one function each, grouped by what they look at. Every check takes the prepared run
(epi_ml.validation.samples.RunSamples), flags samples or spans with vectorised polars expressions
(no per-sample Python) and returns findings: one per channel and kind, with the time span, a count
and a hint.

Severity follows one rule: ERROR when the data cannot be trusted as a record of the run (someone
must look before it is used), WARNING when the data is real but unusual, INFO when it looks odd but
is normal.
"""

from epi_ml.validation.rules.behaviour import (
    pressure_excursions,
    setpoint_deviations,
    stuck_sensors,
)
from epi_ml.validation.rules.presence import (
    empty_channels,
    empty_run,
    incomplete_rows,
    missing_channels,
    unknown_tags,
)
from epi_ml.validation.rules.recipe import shutter_schedule_mismatches, stuck_shutters
from epi_ml.validation.rules.timestamps import duplicate_timestamps, gaps, non_monotonic_times
from epi_ml.validation.rules.units import unit_mismatches
from epi_ml.validation.rules.values import (
    gauge_over_range,
    impossible_values,
    non_finite_values,
    out_of_operating_range,
    spikes,
)

__all__ = [
    "duplicate_timestamps",
    "empty_channels",
    "empty_run",
    "gaps",
    "gauge_over_range",
    "impossible_values",
    "incomplete_rows",
    "missing_channels",
    "non_finite_values",
    "non_monotonic_times",
    "out_of_operating_range",
    "pressure_excursions",
    "setpoint_deviations",
    "shutter_schedule_mismatches",
    "spikes",
    "stuck_sensors",
    "stuck_shutters",
    "unit_mismatches",
    "unknown_tags",
]
