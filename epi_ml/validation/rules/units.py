"""Is each channel in its canonical unit? A unit error shifts or scales a whole channel, so it is
found by comparing the channel with something known to be right: its own setpoint, or the range
the tool operates in. (A factor of 1.33 between mbar and Torr hides inside any wide pressure
range; only a tight per-tool operating range reveals it.)"""

from __future__ import annotations

import math

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.context import with_setpoints
from epi_ml.validation.episodes import amount
from epi_ml.validation.limits import ALTERNATIVE_UNITS
from epi_ml.validation.samples import RunSamples

KELVIN_OFFSET = 273.15
OFFSET_TOLERANCE = 10.0  # °C: how close to 273.15 a measured-minus-setpoint median must be
FIX_HINT = (
    "Fix the unit conversion in the reader or the tool's tag map and re-ingest; the run "
    "is quarantined until then."
)


def unit_mismatches(run: RunSamples) -> list[Finding]:
    return _kelvin_against_setpoint(run) + _unit_from_operating_range(run)


def _kelvin_against_setpoint(run: RunSamples) -> list[Finding]:
    """A temperature and its setpoint that differ by 273.15: one of them is in kelvin."""
    temperatures = run.channels_where(pl.col("unit") == "°C")
    offsets = (
        with_setpoints(run, temperatures)
        .group_by("channel")
        .agg((pl.col("value") - pl.col("setpoint")).median().alias("offset"))
        .filter((pl.col("offset").abs() - KELVIN_OFFSET).abs() < OFFSET_TOLERANCE)
        .sort("channel")
    )
    findings = []
    for channel, offset in offsets.iter_rows():
        in_kelvin = channel if offset > 0 else f"{channel}_set"
        findings.append(
            Finding(
                "unit_mismatch",
                Severity.ERROR,
                f"{channel} reads {offset:+.1f} °C from its setpoint {channel}_set: "
                f"{in_kelvin} looks like it is in kelvin, not °C",
                hint=FIX_HINT,
                channel=in_kelvin,
                details={"median_offset": offset, "looks_like": "K", "expected": "°C"},
            )
        )
    return findings


def _unit_from_operating_range(run: RunSamples) -> list[Finding]:
    """Most of a channel outside its operating range, but all of it (5th to 95th percentile)
    inside once converted from an alternative unit (K for °C; mbar or Pa for Torr)."""
    bulk = (
        run.joined("unit", "operating_min", "operating_max")
        .filter(
            pl.col("usable")
            & pl.col("unit").is_in(list(ALTERNATIVE_UNITS))
            & (pl.col("operating_min").is_not_null() | pl.col("operating_max").is_not_null())
        )
        .group_by("channel")
        .agg(
            pl.col("value").quantile(0.05).alias("p5"),
            pl.col("value").median().alias("p50"),
            pl.col("value").quantile(0.95).alias("p95"),
        )
        .sort("channel")
    )
    findings = []
    for channel, p5, p50, p95 in bulk.iter_rows():
        limits = run.limits_of(channel)
        low = -math.inf if limits.operating_min is None else limits.operating_min
        high = math.inf if limits.operating_max is None else limits.operating_max
        if low <= p50 <= high:
            continue
        for unit, (factor, offset) in ALTERNATIVE_UNITS[limits.unit].items():
            if low <= p5 * factor + offset and p95 * factor + offset <= high:
                findings.append(
                    Finding(
                        "unit_mismatch",
                        Severity.ERROR,
                        f"its values (median {amount(p50, limits.unit)}) lie outside the "
                        f"operating range but fit it if they are in {unit}, not {limits.unit}",
                        hint=FIX_HINT,
                        channel=channel,
                        details={"median": p50, "looks_like": unit, "expected": limits.unit},
                    )
                )
                break
    return findings
