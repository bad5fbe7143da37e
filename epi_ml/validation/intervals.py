"""Time intervals from sample streams, vectorised with polars.

Checks reason about spans of time ("the Ga shutter was open from .. to ..", "the reading was flat
from .. to .."), not single samples; these helpers turn samples into such spans and relate them.
An interval frame has columns `key` (String), `start`, `end` (UTC datetimes, end exclusive) and
whatever its maker adds.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl


def run_ids(changed: pl.Expr, key: str = "channel") -> pl.Expr:
    """An id per run of consecutive rows within `key`; a run starts wherever `changed` is true
    (and at each key's first row). Rows must be ordered by key, then time."""
    return changed.fill_null(True).cum_sum().over(key)


def state_intervals(
    samples: pl.DataFrame, state: pl.Expr, *, until: datetime, key: str = "channel"
) -> pl.DataFrame:
    """Spans over which `state` stays the same, per key: from the first sample of a run to the
    first sample of the next (the last run lasts `until`). Works for sampled and event-logged
    channels alike. Samples sorted by key, time. Columns: key, start, end, state."""
    time_type = samples.schema["time"]
    return (
        samples.with_columns(_state=state)
        .with_columns(_run=run_ids(pl.col("_state") != pl.col("_state").shift().over(key), key))
        .group_by(key, "_run", maintain_order=True)
        .agg(start=pl.col("time").first(), state=pl.col("_state").first())
        .select(
            pl.col(key).alias("key"),
            "start",
            pl.col("start")
            .shift(-1)
            .over(key)
            .fill_null(pl.lit(until).cast(time_type))
            .alias("end"),
            "state",
        )
    )


def union(intervals: pl.DataFrame) -> pl.DataFrame:
    """Merge overlapping or touching intervals per key: key, start, end."""
    prior_end = pl.col("end").cum_max().shift().over("key")
    return (
        intervals.sort("key", "start")
        .with_columns(_group=(pl.col("start") > prior_end).fill_null(True).cum_sum().over("key"))
        .group_by("key", "_group", maintain_order=True)
        .agg(pl.col("start").min(), pl.col("end").max())
        .drop("_group")
    )


def intersect(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    """Every overlap of a left interval with a right interval of the same key: the left row's
    columns with start/end clipped to the overlap, plus the right row's other columns."""
    right = right.rename({"key": "_key", "start": "_start", "end": "_end"})
    return (
        left.join_where(
            right,
            pl.col("key") == pl.col("_key"),
            pl.col("_start") < pl.col("end"),
            pl.col("_end") > pl.col("start"),
            suffix="_other",
        )
        .with_columns(
            start=pl.max_horizontal("start", "_start"), end=pl.min_horizontal("end", "_end")
        )
        .drop("_key", "_start", "_end")
    )


def seconds(start: str = "start", end: str = "end") -> pl.Expr:
    return (pl.col(end) - pl.col(start)).dt.total_microseconds() / 1e6


def within(times: pl.Series, intervals: pl.DataFrame) -> pl.Series:
    """For each time, whether it falls inside any of `intervals` (keys ignored)."""
    if intervals.is_empty():
        return pl.Series(values=[False] * len(times), dtype=pl.Boolean)
    merged = union(intervals.with_columns(key=pl.lit("*"))).select(
        pl.col("start").alias("_start"), pl.col("end").alias("_end")
    )
    probe = times.to_frame("time").with_row_index("_row").sort("time")
    return (
        probe.join_asof(merged, left_on="time", right_on="_start", strategy="backward")
        .sort("_row")
        .select((pl.col("time") < pl.col("_end")).fill_null(False))
        .to_series()
    )
