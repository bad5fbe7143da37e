"""The run as the checks see it: the long sensor table sorted per channel, each sample tagged once
(finite? over-range code? impossible?) and each channel joined to its expectations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from epi_ml.channels import SENSOR_SCHEMA, quantity_of, source_of
from epi_ml.validation.limits import ChannelLimits, Limits


def _column_type(annotation: object) -> pl.DataType:
    """Polars type of a ChannelLimits field, so the limits can sit next to the samples."""
    if annotation is str:
        return pl.String()
    if annotation is bool:
        return pl.Boolean()
    if "tuple" in str(annotation):
        return pl.List(pl.Float64)
    return pl.Float64()


_LIMIT_SCHEMA = {name: _column_type(f.annotation) for name, f in ChannelLimits.model_fields.items()}


# Rows without a time or a channel cannot be placed: the checks leave them out (and report them).
UNPLACED = pl.col("time").is_null() | pl.col("channel").is_null()


class SchemaMismatch(ValueError):
    """The frame is not a canonical sensor table and cannot be made one."""


def canonical(sensors: pl.DataFrame) -> pl.DataFrame:
    """The frame with exactly the canonical columns and types; raises SchemaMismatch if it lacks a
    column or a column cannot be cast (naive times are taken as UTC, as readers write them)."""
    missing = [name for name in SENSOR_SCHEMA if name not in sensors.columns]
    if missing:
        raise SchemaMismatch(f"missing column(s) {', '.join(missing)}; have {sensors.columns}")
    time = pl.col("time")
    if isinstance(sensors.schema["time"], pl.Datetime) and sensors.schema["time"].time_zone is None:
        time = time.dt.replace_time_zone("UTC")
    try:
        return sensors.select(
            time.cast(SENSOR_SCHEMA["time"]).alias("time"),
            pl.col("channel").cast(pl.String),
            pl.col("value").cast(pl.Float64),
        )
    except pl.exceptions.PolarsError as exc:
        raise SchemaMismatch(str(exc).splitlines()[0]) from exc


@dataclass(frozen=True)
class RunSamples:
    table: pl.DataFrame  # time, channel, value + finite, over_range, impossible, usable
    per_channel: pl.DataFrame  # channel, source, quantity + every ChannelLimits field (null: none)
    limits: Limits
    start: datetime | None  # first and last sample of any channel
    end: datetime | None

    @property
    def channels(self) -> list[str]:
        return self.per_channel.get_column("channel").to_list()

    def limits_of(self, channel: str) -> ChannelLimits | None:
        return self.limits.for_channel(channel)

    def joined(self, *fields: str) -> pl.DataFrame:
        """The samples with some per-channel columns (limits, source, quantity) alongside."""
        return self.table.join(
            self.per_channel.select("channel", *fields),
            on="channel",
            how="left",
            maintain_order="left",  # the checks rely on the channel, time order
        )

    def channels_where(self, condition: pl.Expr) -> list[str]:
        return self.per_channel.filter(condition).get_column("channel").to_list()


def prepare(sensors: pl.DataFrame, limits: Limits) -> RunSamples:
    """Sort the canonical table per channel and time and tag every sample once (rows that cannot
    be placed are left out)."""
    table = sensors.filter(~UNPLACED).sort("channel", "time", maintain_order=True)
    channels = table.get_column("channel").unique().sort().to_list()
    per_channel = _per_channel(channels, limits)
    value = pl.col("value")
    finite = value.is_finite().fill_null(False)
    over_range = finite & (value >= pl.col("over_range_code")).fill_null(False)
    impossible = (
        finite
        & ~over_range
        & (
            (value < pl.col("physical_min")).fill_null(False)
            | (value > pl.col("physical_max")).fill_null(False)
            | (~pl.col("allowed_values").list.contains(value)).fill_null(False)
        )
    )
    limit_cols = ["over_range_code", "physical_min", "physical_max", "allowed_values"]
    table = (
        table.join(
            per_channel.select("channel", *limit_cols),
            on="channel",
            how="left",
            maintain_order="left",
        )
        .with_columns(finite=finite, over_range=over_range, impossible=impossible)
        .with_columns(usable=pl.col("finite") & ~pl.col("over_range") & ~pl.col("impossible"))
        .drop(limit_cols)
    )
    times = table.get_column("time")
    return RunSamples(
        table=table,
        per_channel=per_channel,
        limits=limits,
        start=times.min() if len(times) else None,
        end=times.max() if len(times) else None,
    )


def _per_channel(channels: list[str], limits: Limits) -> pl.DataFrame:
    rows = []
    for name in channels:
        found = limits.for_channel(name)
        row = found.model_dump() if found else {}
        if row.get("allowed_values") is not None:
            row["allowed_values"] = list(row["allowed_values"])
        rows.append(
            {"channel": name, "source": source_of(name), "quantity": quantity_of(name), **row}
        )
    schema = {"channel": pl.String, "source": pl.String, "quantity": pl.String, **_LIMIT_SCHEMA}
    return pl.DataFrame(rows, schema=schema)
