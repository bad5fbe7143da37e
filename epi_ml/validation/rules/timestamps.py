"""Are the samples in time order, once each, without holes?"""

from __future__ import annotations

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.episodes import (
    by_channel,
    duration,
    episode_finding,
    listing,
    spans_text,
    when,
)
from epi_ml.validation.intervals import seconds
from epi_ml.validation.samples import RunSamples


def non_monotonic_times(sensors: pl.DataFrame) -> list[Finding]:
    """Time stepping backwards within a channel, in the order the rows came (the prepared run is
    already sorted, so this one looks at the canonical table as given)."""
    step = pl.col("time").diff().over("channel")
    back = (
        sensors.with_columns(_step=step)
        .filter(pl.col("_step") < pl.duration(microseconds=0))
        .group_by("channel")
        .agg(
            pl.len().alias("count"),
            pl.col("time").min().alias("first"),
            pl.col("time").max().alias("last"),
            (-pl.col("_step").min()).dt.total_microseconds().truediv(1e6).alias("largest_s"),
        )
        .sort("channel")
    )
    return [
        Finding(
            "non_monotonic_time",
            Severity.WARNING,
            f"time steps backwards {row['count']} time(s), by up to {duration(row['largest_s'])} "
            f"(first at {when(row['first'])})",
            hint="Rows from several files or a clock correction (NTP, daylight saving) were mixed; "
            "the samples are checked and stored in time order, nothing is lost.",
            channel=row["channel"],
            start=row["first"],
            end=row["last"],
            count=row["count"],
            details={"largest_step_back_s": row["largest_s"]},
        )
        for row in back.iter_rows(named=True)
    ]


def duplicate_timestamps(run: RunSamples) -> list[Finding]:
    """Several rows of one channel at the same instant: identical (harmless) or conflicting
    (which one is real is unknown)."""
    repeated = (
        run.table.group_by("channel", "time")
        .agg(pl.len().alias("rows"), pl.col("value").n_unique().alias("values"))
        .filter(pl.col("rows") > 1)
        .group_by("channel", conflicting=pl.col("values") > 1)
        .agg(
            pl.len().alias("instants"),
            (pl.col("rows") - 1).sum().alias("extra_rows"),
            pl.col("time").min().alias("first"),
            pl.col("time").max().alias("last"),
        )
        .sort("channel", "conflicting")
    )
    findings = []
    for row in repeated.iter_rows(named=True):
        span = when(row["first"], row["last"])
        if row["conflicting"]:
            code, severity = "conflicting_duplicates", Severity.ERROR
            message = f"{row['instants']} instant(s) with different values at the same time, {span}"
            hint = (
                "Two sources wrote the same channel (overlapping exports or a tag mapped "
                "twice); which value is real is unknown, so the run is quarantined."
            )
        else:
            code, severity = "duplicate_rows", Severity.WARNING
            message = f"{row['extra_rows']} exact duplicate row(s), {span}"
            hint = "The same rows were ingested twice (overlapping files); duplicates are harmless."
        findings.append(
            Finding(
                code,
                severity,
                message,
                hint=hint,
                channel=row["channel"],
                start=row["first"],
                end=row["last"],
                count=row["instants"],
            )
        )
    return findings


def gaps(run: RunSamples) -> list[Finding]:
    """Pauses longer than gap_factor x the sample period (the configured one, else the channel's
    median), including a late start or an early end against the run's first and last sample.
    Event-driven channels (shutter logs) are written on change only and have no gaps."""
    if run.start is None:
        return []
    frame = run.joined("event_driven", "sample_period_s", "gap_factor").filter(
        ~pl.col("event_driven").fill_null(False)
    )
    step = pl.col("time").diff().over("channel")
    period = pl.coalesce("sample_period_s", pl.col("_step_s").median().over("channel"))
    frame = frame.with_columns(_step=step, _step_s=step.dt.total_microseconds() / 1e6).with_columns(
        _limit=pl.col("gap_factor").fill_null(10.0) * period
    )
    inside = frame.filter(pl.col("_step_s") > pl.col("_limit")).select(
        "channel",
        (pl.col("time") - pl.col("_step")).alias("start"),
        pl.col("time").alias("end"),
        "_limit",
    )
    ends = frame.group_by("channel").agg(
        pl.col("time").min().alias("first"),
        pl.col("time").max().alias("last"),
        pl.col("_limit").drop_nulls().first(),
    )
    time_type = frame.schema["time"]
    run_start, run_end = pl.lit(run.start).cast(time_type), pl.lit(run.end).cast(time_type)
    at_edges = pl.concat(
        [
            ends.select(
                "channel", run_start.alias("start"), pl.col("first").alias("end"), "_limit"
            ),
            ends.select("channel", pl.col("last").alias("start"), run_end.alias("end"), "_limit"),
        ]
    ).filter(seconds() > pl.col("_limit"))
    found = pl.concat([inside, at_edges]).with_columns(seconds=seconds())
    return [
        episode_finding(
            "gap",
            Severity.WARNING,
            channel,
            spans,
            f"{spans.height} gap(s) longer than {duration(spans.get_column('_limit').first())} "
            f"without samples, {duration(spans.get_column('seconds').sum())} in all: "
            f"{spans_text(spans)}",
            hint="The logger paused or the channel was off; growth during a gap is unobserved.",
            gap_limit_s=spans.get_column("_limit").first(),
            gaps=listing(spans),
        )
        for channel, spans in by_channel(found)
    ]
