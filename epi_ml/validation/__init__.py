"""Validation of a run's sensor streams: typed findings with severities, and per-channel statistics.

    report = validate_run(sensors, expected_channels={"Ga.T", "P.chamber"}, schedule=steps)
    report.status      # "accepted" | "accepted_with_warnings" | "quarantined"
    report.findings    # list[epi_ml.findings.Finding], most severe first
    report.stats       # polars DataFrame, one row per channel (the input to drift)
    print(report.summary())

The checks run on the canonical long table (epi_ml.channels.SENSOR_SCHEMA); file-level problems
(unparseable lines, empty files) are the readers' findings. What is expected of each channel is
declared in `limits` (epi_ml.validation.limits), overridable per tool.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation import rules
from epi_ml.validation.limits import DEFAULT_LIMITS, ChannelLimits, Limits
from epi_ml.validation.report import ValidationReport, most_severe_first
from epi_ml.validation.samples import UNPLACED, SchemaMismatch, canonical, prepare
from epi_ml.validation.schedule import Schedule, ScheduleStep, as_steps
from epi_ml.validation.stats import STATS_SCHEMA, channel_statistics, run_statistics

__all__ = [
    "DEFAULT_LIMITS",
    "STATS_SCHEMA",
    "ChannelLimits",
    "Limits",
    "ScheduleStep",
    "SchemaMismatch",
    "ValidationReport",
    "run_statistics",
    "validate_run",
]

# A unit mismatch explains these findings on the same channel; reporting them too is noise.
SUPERSEDED_BY_UNIT_MISMATCH = {"out_of_operating_range", "setpoint_deviation", "stuck_sensor"}


def validate_run(
    sensors: pl.DataFrame,
    *,
    expected_channels: Iterable[str] | None = None,
    schedule: Schedule | None = None,
    limits: Limits | None = None,
) -> ValidationReport:
    """Check one run's canonical sensor table. Never raises on bad data: every problem becomes a
    finding, and any ERROR quarantines the run. `expected_channels`: channels the run must have;
    `schedule`: recipe steps (ScheduleStep or (start, end, open sources)) to check shutters
    against (their open sources' shutters become expected channels)."""
    try:
        table = canonical(sensors)
    except SchemaMismatch as exc:
        return ValidationReport(
            findings=[
                Finding(
                    "bad_schema",
                    Severity.ERROR,
                    f"not a canonical sensor table: {exc}",
                    hint="Readers must return columns time (UTC), channel, value "
                    "(epi_ml.channels.SENSOR_SCHEMA).",
                )
            ],
            stats=pl.DataFrame(schema=STATS_SCHEMA),
            rows=sensors.height,
        )
    steps = as_steps(schedule or [])
    expected = set(expected_channels or ()) | {
        f"{source}.shutter" for step in steps for source in step.open_sources
    }
    run = prepare(table, limits or DEFAULT_LIMITS)
    checks: list[tuple[Callable[..., list[Finding]], tuple]] = [
        (rules.incomplete_rows, (table,)),
        (rules.empty_run, (run,)),
        (rules.missing_channels, (run, expected)),
        (rules.empty_channels, (run, expected)),
        (rules.unknown_tags, (run,)),
        # In the order the rows came, not sorted as in `run`.
        (rules.non_monotonic_times, (table.filter(~UNPLACED),)),
        (rules.duplicate_timestamps, (run,)),
        (rules.gaps, (run,)),
        (rules.non_finite_values, (run,)),
        (rules.impossible_values, (run,)),
        (rules.gauge_over_range, (run,)),
        (rules.out_of_operating_range, (run,)),
        (rules.spikes, (run,)),
        (rules.stuck_sensors, (run,)),
        (rules.pressure_excursions, (run,)),
        (rules.setpoint_deviations, (run,)),
        (rules.shutter_schedule_mismatches, (run, steps)),
        (rules.stuck_shutters, (run, steps)),
        (rules.unit_mismatches, (run,)),
    ]
    findings = [finding for check, args in checks for finding in _guarded(check, *args)]
    return ValidationReport(
        findings=most_severe_first(_without_superseded(findings)),
        stats=channel_statistics(run),
        rows=table.height,
        start=run.start,
        end=run.end,
    )


def _guarded(check: Callable[..., list[Finding]], *args: object) -> list[Finding]:
    """A check that fails on odd data must not take the pipeline down: it quarantines the run."""
    try:
        return check(*args)
    except Exception as exc:  # noqa: BLE001
        return [
            Finding(
                "check_failed",
                Severity.ERROR,
                f"check {check.__name__} could not run: {type(exc).__name__}: {exc}",
                hint="A bug in epi-ml's validation; report it with the run id.",
                details={"traceback": traceback.format_exc(limit=5)},
            )
        ]


def _without_superseded(findings: list[Finding]) -> list[Finding]:
    wrong_unit = {f.channel for f in findings if f.code == "unit_mismatch"}
    wrong_unit |= {c.removesuffix("_set") for c in wrong_unit}
    return [
        f
        for f in findings
        if not (f.code in SUPERSEDED_BY_UNIT_MISMATCH and f.channel in wrong_unit)
    ]
