"""Does each channel behave like a live sensor on a working tool, given what the tool was doing?
Flat readings, pressure excursions and setpoint tracking are judged against the run's own
context (epi_ml.validation.context): idle or growing, gas flowing or not, setpoint steady or not."""

from __future__ import annotations

import math

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.context import (
    ANY_CELL,
    gas_flow,
    growth_activity,
    setpoint_spans,
    with_setpoints,
)
from epi_ml.validation.episodes import (
    amount,
    by_channel,
    duration,
    episode_finding,
    flagged_episodes,
    listing,
    spans_text,
)
from epi_ml.validation.intervals import intersect, run_ids, seconds, within
from epi_ml.validation.samples import RunSamples


def stuck_sensors(run: RunSamples) -> list[Finding]:
    """Readings exactly flat (steps <= stuck_tolerance) for at least stuck_after_s, judged by
    what the channel's cell was doing meanwhile:
      setpoint moved           -> ERROR   the reading is frozen
      its cell was growing     -> WARNING a live sensor shows noise and shutter transients
      away from its setpoint   -> WARNING a controlled channel settles on its setpoint
      otherwise (idle)         -> INFO    stand-by: a controller holding its setpoint, a gauge at
                                          its resolution; normal
    Channels of a cell look at that cell; the others (pressures, RHEED) at any cell."""
    frame = run.joined("stuck_after_s", "stuck_tolerance", "setpoint_tolerance", "source").filter(
        pl.col("usable") & pl.col("stuck_after_s").is_not_null()
    )
    moved = pl.col("value").diff().over("channel").abs() > pl.col("stuck_tolerance")
    flat = (
        frame.with_columns(_segment=run_ids(moved))
        .group_by("channel", "_segment")
        .agg(
            pl.col("time").first().alias("start"),
            pl.col("time").last().alias("end"),
            pl.col("value").first(),
            pl.col("source", "stuck_after_s", "setpoint_tolerance").first(),
        )
        .filter(seconds() >= pl.col("stuck_after_s"))
        .with_row_index("_id")
    )
    if flat.is_empty():
        return []
    activity = growth_activity(run)
    cells = set(activity.get_column("key").unique()) - {ANY_CELL}
    flat = flat.with_columns(
        key=pl.when(pl.col("source").is_in(cells)).then("source").otherwise(pl.lit(ANY_CELL))
    )
    growing = intersect(flat.select("_id", "key", "start", "end"), activity).get_column("_id")
    setpoints = (
        intersect(
            flat.select("_id", pl.col("channel").alias("key"), "start", "end"), setpoint_spans(run)
        )
        .group_by("_id")
        .agg(pl.col("state").min().alias("sp_low"), pl.col("state").max().alias("sp_high"))
    )
    tolerance = pl.col("setpoint_tolerance").fill_null(0.0)
    kind = (
        pl.when(pl.col("sp_high") - pl.col("sp_low") > tolerance)
        .then(pl.lit("setpoint_moved"))
        .when(pl.col("_id").is_in(growing.implode()))
        .then(pl.lit("growing"))
        .when(
            (pl.col("value") < pl.col("sp_low") - tolerance)
            | (pl.col("value") > pl.col("sp_high") + tolerance)
        )
        .then(pl.lit("off_setpoint"))
        .otherwise(pl.lit("standby"))
    )
    classified = (
        flat.join(setpoints, on="_id", how="left")
        .with_columns(kind=kind, seconds=seconds())
        .sort("channel", "start")
    )
    return [
        _flat_finding(run, str(channel), str(which), spans)
        for (channel, which), spans in classified.group_by("channel", "kind", maintain_order=True)
    ]


def _flat_finding(run: RunSamples, channel: str, kind: str, spans: pl.DataFrame) -> Finding:
    unit = run.limits_of(channel).unit
    levels = " / ".join(
        amount(v, unit) for v in spans.get_column("value").unique(maintain_order=True).head(3)
    )
    flat_for = f"for {duration(spans.get_column('seconds').sum())}: {spans_text(spans)}"
    check = "check the sensor, its connector and that the logger still updates it."
    if kind == "setpoint_moved":
        low, high = spans.get_column("sp_low").min(), spans.get_column("sp_high").max()
        severity, code = Severity.ERROR, "stuck_sensor"
        message = (
            f"stayed exactly at {levels} while its setpoint moved ({amount(low, unit)} to "
            f"{amount(high, unit)}) {flat_for}; the reading is frozen"
        )
        hint = "The recorded values of these spans are not real: " + check
    elif kind == "growing":
        cell = spans.get_column("key").first()
        who = "a cell" if cell == ANY_CELL else cell
        severity, code = Severity.WARNING, "stuck_sensor"
        message = f"stayed exactly at {levels} while {who} was growing (shutter open) {flat_for}"
        hint = "A live sensor shows noise and shutter transients during growth: " + check
    elif kind == "off_setpoint":
        severity, code = Severity.WARNING, "stuck_sensor"
        message = f"stayed exactly at {levels}, away from its setpoint, {flat_for}"
        hint = "A controlled channel settles on its setpoint: " + check
    else:
        severity, code = Severity.INFO, "flat_standby"
        message = (
            f"flat at {levels} while idle {flat_for}; normal stand-by (a controller "
            "holding its setpoint, or a gauge at its resolution)"
        )
        hint = ""
    return episode_finding(
        code,
        severity,
        channel,
        spans,
        message,
        hint=hint,
        kind=kind,
        flat_spans=listing(spans, value="value", setpoint_low="sp_low", setpoint_high="sp_high"),
    )


def pressure_excursions(run: RunSamples) -> list[Finding]:
    """Pressure sustained above excursion_factor x the run's base pressure (its 5th percentile)
    while no gas source flowed: venting, bake-out, outgassing of a hot cell, a leak. Judged on a
    rolling median over excursion_min_s, so bursts shorter than that do not count."""
    frame = run.joined("excursion_factor", "excursion_min_s").filter(
        pl.col("usable") & pl.col("excursion_factor").is_not_null() & (pl.col("value") > 0)
    )
    if frame.is_empty():
        return []
    frame = frame.with_columns(
        _gas=within(frame.get_column("time"), gas_flow(run)), _decades=pl.col("value").log10()
    ).with_columns(_base=pl.col("_decades").quantile(0.05).over("channel"))
    enter = pl.col("excursion_factor").log10()
    findings = []
    # A rolling window by time takes one duration; channels share it unless a tool overrides one.
    for window_s in frame.get_column("excursion_min_s").unique().sort():
        part = frame.filter(pl.col("excursion_min_s") == window_s)
        smooth = pl.col("_decades").rolling_median_by(
            "time", window_size=f"{int(window_s * 1e6)}us"
        )
        part = part.with_columns(_rise=smooth.over("channel") - pl.col("_base"))
        # Hysteresis: an excursion starts above the factor and ends only below half of it, and
        # dips shorter than a few windows do not end it, so a pressure hovering at the threshold
        # is one excursion, not dozens.
        raised = (
            pl.when(pl.col("_rise") > enter)
            .then(True)
            .when(pl.col("_rise") < enter - math.log10(2))
            .then(False)
            .forward_fill()
            .over("channel")
        )
        episodes = flagged_episodes(
            part, raised & ~pl.col("_gas"), worst=pl.col("_rise"), merge_within_s=5 * window_s
        ).filter(pl.col("seconds") >= window_s)
        base_by_channel = dict(part.group_by("channel").agg(pl.col("_base").first()).iter_rows())
        for channel, spans in by_channel(episodes):
            base_torr, peak = 10 ** base_by_channel[channel], spans.get_column("high").max()
            findings.append(
                episode_finding(
                    "pressure_excursion",
                    Severity.WARNING,
                    channel,
                    spans,
                    f"rose above {run.limits_of(channel).excursion_factor:g}× its base pressure "
                    f"({amount(base_torr, 'Torr')}) for "
                    f"{duration(spans.get_column('seconds').sum())} in {spans.height} "
                    f"excursion(s), peak {amount(peak, 'Torr')} ({peak / base_torr:.0f}× base): "
                    f"{spans_text(spans)}",
                    hint="Venting, bake-out, outgassing of a hot cell or a leak; not fatal, but "
                    "background and fluxes were not as usual then: check the tool log.",
                    base_pressure_torr=base_torr,
                    peak_torr=peak,
                    excursions=listing(spans, peak_torr="high"),
                )
            )
    return sorted(findings, key=lambda f: f.channel or "")


def setpoint_deviations(run: RunSamples) -> list[Finding]:
    """|measured - setpoint| above setpoint_tolerance for at least setpoint_sustain_s, counted
    only once setpoint_settle_s have passed since the setpoint last changed (ramps excluded)."""
    checked = run.channels_where(pl.col("setpoint_tolerance").is_not_null())
    settings = run.per_channel.select(
        "channel", "setpoint_tolerance", "setpoint_settle_s", "setpoint_sustain_s"
    )
    frame = with_setpoints(run, checked).join(settings, on="channel", maintain_order="left")
    deviation = (pl.col("value") - pl.col("setpoint")).abs()
    settled = seconds("setpoint_since", "time") >= pl.col("setpoint_settle_s")
    episodes = (
        flagged_episodes(
            frame, settled & (deviation > pl.col("setpoint_tolerance")), worst=deviation
        )
        .join(settings, on="channel")
        .filter(pl.col("seconds") >= pl.col("setpoint_sustain_s"))
    )
    findings = []
    for channel, spans in by_channel(episodes):
        limits = run.limits_of(channel)
        findings.append(
            episode_finding(
                "setpoint_deviation",
                Severity.WARNING,
                channel,
                spans,
                f"was up to {amount(spans.get_column('worst').max(), limits.unit)} away from its "
                f"setpoint (tolerance {amount(limits.setpoint_tolerance, limits.unit)}) for "
                f"{duration(spans.get_column('seconds').sum())} after settling: "
                f"{spans_text(spans)}",
                hint="The controller could not hold the setpoint (heater, power supply, PID "
                "tuning, a depleted or spitting cell); fluxes of this span differ from the recipe.",
                episodes=listing(spans, largest_deviation="worst"),
            )
        )
    return findings
