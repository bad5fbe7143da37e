"""Per-channel statistics of one run (TFX StatisticsGen / Evidently's data summary): kept with
every run so that drift between runs can be measured later without re-reading the raw data.

Values counted as missing (NaN, over-range codes, impossible values) are excluded from the
distribution and reported as counts; `quantiles` is a 21-point sketch (0, 5, ..., 100 %) from which
drift tests (Wasserstein, PSI, KS) can be approximated.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from epi_ml.validation.limits import DEFAULT_LIMITS, Limits
from epi_ml.validation.samples import RunSamples, canonical, prepare

QUANTILES = tuple(i / 20 for i in range(21))

STATS_SCHEMA: dict[str, pl.DataType] = {
    "channel": pl.String,
    "unit": pl.String,
    "rows": pl.UInt32,
    "count": pl.UInt32,  # usable values
    "non_finite": pl.UInt32,
    "over_range": pl.UInt32,
    "impossible": pl.UInt32,
    "missing_fraction": pl.Float64,  # of the samples expected from span and median period
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "period_median_s": pl.Float64,
    "min": pl.Float64,
    "max": pl.Float64,
    "mean": pl.Float64,
    "std": pl.Float64,
    "p1": pl.Float64,
    "p50": pl.Float64,
    "p99": pl.Float64,
    "flat_fraction": pl.Float64,  # of consecutive usable samples with exactly the same value
    "quantiles": pl.List(pl.Float64),
}


def run_statistics(sensors: pl.DataFrame, limits: Limits | None = None) -> pl.DataFrame:
    """Statistics of a canonical sensor table, one row per channel (STATS_SCHEMA)."""
    return channel_statistics(prepare(canonical(sensors), limits or DEFAULT_LIMITS))


def channel_statistics(run: RunSamples) -> pl.DataFrame:
    table = run.joined("event_driven", "unit")
    counts = table.group_by("channel").agg(
        pl.len().alias("rows"),
        pl.col("usable").sum().alias("count"),
        (~pl.col("finite")).sum().alias("non_finite"),
        pl.col("over_range").sum().alias("over_range"),
        pl.col("impossible").sum().alias("impossible"),
        pl.col("time").min().alias("start"),
        pl.col("time").max().alias("end"),
        pl.col("event_driven").first(),
        pl.col("unit").first().fill_null(""),
    )
    usable = table.filter(pl.col("usable")).sort("channel", "value")
    value = pl.col("value")
    # Sorted once; every quantile is then a look-up by rank (nearest rank).
    rank = ((pl.len() - 1) * pl.lit(pl.Series(QUANTILES))).round().cast(pl.UInt32)
    distribution = usable.group_by("channel").agg(
        value.min().alias("min"),
        value.max().alias("max"),
        value.mean().alias("mean"),
        value.std().alias("std"),
        value.gather(rank).alias("quantiles"),
        value.gather(((pl.len() - 1) * 0.01).round().cast(pl.UInt32)).first().alias("p1"),
        value.gather(((pl.len() - 1) * 0.99).round().cast(pl.UInt32)).first().alias("p99"),
    )
    in_time = table.filter(pl.col("usable")).select(
        "channel",
        (pl.col("time").diff().over("channel").dt.total_microseconds() / 1e6).alias("step_s"),
        (pl.col("value").diff().over("channel") == 0).alias("flat"),
    )
    timing = in_time.group_by("channel").agg(
        pl.col("step_s").median().alias("period_median_s"),
        pl.col("flat").drop_nulls().mean().alias("flat_fraction"),
    )
    span_s = (pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6
    expected = span_s / pl.col("period_median_s") + 1
    stats = (
        counts.join(distribution, on="channel", how="left")
        .join(timing, on="channel", how="left")
        .with_columns(
            p50=pl.col("quantiles").list.get(10, null_on_oob=True),
            missing_fraction=pl.when(pl.col("event_driven").fill_null(False))
            .then(None)
            .otherwise((1 - pl.col("count") / expected).clip(0.0, 1.0)),
        )
    )
    return stats.select([pl.col(name).cast(dtype) for name, dtype in STATS_SCHEMA.items()]).sort(
        "channel"
    )


def statistics_to_dict(stats: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """{channel: {statistic: value}} with ISO times: JSON-ready, and the form drift reads."""
    out = {}
    for row in stats.iter_rows(named=True):
        channel = row.pop("channel")
        for key in ("start", "end"):
            row[key] = row[key].isoformat() if row[key] is not None else None
        out[channel] = row
    return out
