"""Is each value a reading the instrument can give, in the range the tool works in, and in line
with its neighbours?"""

from __future__ import annotations

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.episodes import (
    amount,
    by_channel,
    duration,
    episode_finding,
    flagged_episodes,
    listing,
    spans_text,
)
from epi_ml.validation.samples import RunSamples

SPIKE_WINDOW = 9  # samples in the rolling median: runs of up to 4 bad readings count as spikes
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for normal noise


def non_finite_values(run: RunSamples) -> list[Finding]:
    """Missing, NaN or infinite values in channels that have readable values otherwise (a
    channel with none at all is an empty channel)."""
    partly = run.table.filter(pl.col("finite").any().over("channel"))
    return [
        episode_finding(
            "non_finite_value",
            Severity.WARNING,
            channel,
            spans,
            f"{spans.get_column('samples').sum()} missing, NaN or infinite value(s): "
            f"{spans_text(spans)}",
            hint="The logger wrote no number (sensor dropout); those samples are skipped.",
            count=int(spans.get_column("samples").sum()),
            episodes=listing(spans),
        )
        for channel, spans in by_channel(flagged_episodes(partly, ~pl.col("finite")))
    ]


def impossible_values(run: RunSamples) -> list[Finding]:
    """Values the instrument cannot read: outside its physical range, or not a valid state."""
    findings = []
    for channel, spans in by_channel(flagged_episodes(run.table, pl.col("impossible"))):
        limits = run.limits_of(channel)
        unit = limits.unit
        if limits.allowed_values is not None:
            valid = "only " + "/".join(f"{v:g}" for v in limits.allowed_values) + " is valid"
        else:
            valid = (
                f"the instrument reads {amount(limits.physical_min, unit)} to "
                f"{amount(limits.physical_max, unit)}"
            )
        low, high = spans.get_column("low").min(), spans.get_column("high").max()
        shown = amount(low, unit) if low == high else f"{amount(low, unit)} to {amount(high, unit)}"
        findings.append(
            episode_finding(
                "impossible_value",
                Severity.ERROR,
                channel,
                spans,
                f"{spans.get_column('samples').sum()} impossible value(s), {shown} ({valid}): "
                f"{spans_text(spans)}",
                hint="A broken or disconnected sensor, a wrong tag mapping or a unit error; the "
                "run is quarantined until the channel is checked (the raw file is kept).",
                count=int(spans.get_column("samples").sum()),
                lowest=low,
                highest=high,
                episodes=listing(spans),
            )
        )
    return findings


def gauge_over_range(run: RunSamples) -> list[Finding]:
    """The instrument's own "cannot measure" code (an ion gauge's 9.9e9 Torr)."""
    return [
        episode_finding(
            "gauge_over_range",
            Severity.WARNING,
            channel,
            spans,
            f"reported its over-range code ({amount(spans.get_column('high').max())}) for "
            f"{duration(spans.get_column('seconds').sum())} in {spans.height} episode(s): "
            f"{spans_text(spans)}; no pressure was measured then",
            hint="The gauge was off, tripped or above its range (venting, filament off). Normal "
            "while venting; otherwise check the gauge. These samples are not used as pressures.",
            count=int(spans.get_column("samples").sum()),
            episodes=listing(spans),
        )
        for channel, spans in by_channel(flagged_episodes(run.table, pl.col("over_range")))
    ]


def out_of_operating_range(run: RunSamples) -> list[Finding]:
    """Readable values outside the range the tool normally works in."""
    frame = run.joined("operating_min", "operating_max").filter(pl.col("usable"))
    outside = (pl.col("value") < pl.col("operating_min")).fill_null(False) | (
        pl.col("value") > pl.col("operating_max")
    ).fill_null(False)
    findings = []
    for channel, spans in by_channel(flagged_episodes(frame, outside, merge_within_s=60.0)):
        limits = run.limits_of(channel)
        unit = limits.unit
        low, high = spans.get_column("low").min(), spans.get_column("high").max()
        sides = []
        if limits.operating_max is not None and high > limits.operating_max:
            sides.append(f"above {amount(limits.operating_max, unit)} (up to {amount(high, unit)})")
        if limits.operating_min is not None and low < limits.operating_min:
            sides.append(
                f"below {amount(limits.operating_min, unit)} (down to {amount(low, unit)})"
            )
        findings.append(
            episode_finding(
                "out_of_operating_range",
                Severity.WARNING,
                channel,
                spans,
                f"outside its operating range, {' and '.join(sides)}, for "
                f"{duration(spans.get_column('seconds').sum())}: {spans_text(spans)}",
                hint=(limits.operating_note + "; " if limits.operating_note else "")
                + "possible, but not how this tool normally runs: check the tool log.",
                count=int(spans.get_column("samples").sum()),
                lowest=low,
                highest=high,
                episodes=listing(spans),
            )
        )
    return findings


def spikes(run: RunSamples) -> list[Finding]:
    """Single readings (or a few) far from their neighbours: |value - rolling median| above
    max(spike_mad_factor x the channel's robust noise, spike_min_jump). A rolling median follows
    ramps and steps, so only readings that jump away and back count."""
    frame = run.joined("spike_min_jump", "spike_mad_factor", "log_scale").filter(
        pl.col("usable")
        & pl.col("spike_min_jump").is_not_null()
        & (~pl.col("log_scale") | (pl.col("value") > 0))
    )
    level = pl.when(pl.col("log_scale")).then(pl.col("value").log10()).otherwise(pl.col("value"))
    neighbours = level.rolling_median(SPIKE_WINDOW, min_samples=1, center=True)
    frame = frame.with_columns(_residual=(level - neighbours).abs().over("channel"))
    noise = MAD_TO_SIGMA * pl.col("_residual").median().over("channel")
    threshold = pl.max_horizontal(pl.col("spike_mad_factor") * noise, "spike_min_jump")
    episodes = flagged_episodes(frame, pl.col("_residual") > threshold, worst=pl.col("_residual"))
    findings = []
    for channel, spans in by_channel(episodes):
        limits = run.limits_of(channel)
        largest = spans.get_column("worst").max()
        if limits.log_scale:
            jump, largest_text = f"{limits.spike_min_jump:g} decade(s)", f"×{10**largest:.3g}"
        else:
            jump, largest_text = (
                amount(limits.spike_min_jump, limits.unit),
                amount(largest, limits.unit),
            )
        findings.append(
            episode_finding(
                "spike",
                Severity.WARNING,
                channel,
                spans,
                f"{spans.height} spike(s): readings that jump at least {jump} away from their "
                f"neighbours and back, largest {largest_text}: {spans_text(spans)}",
                hint="One bad reading is electrical noise or a logger glitch, not a process "
                "change; if spikes recur, check the sensor's wiring and grounding.",
                spikes=listing(spans, low="low", high="high", deviation="worst"),
            )
        )
    return findings
