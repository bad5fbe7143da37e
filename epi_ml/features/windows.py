"""Samples of a run's sensor table inside its layers' windows, and their statistics.

One join for everything that is "per layer": the run summary's channel statistics and the layer
features both start here, so they never disagree about which samples belong to a layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from epi_ml.channels import SENSOR_SCHEMA

TIME = SENSOR_SCHEMA["time"]


@dataclass(frozen=True)
class LayerWindow:
    """A layer as features need it (from the store's `layers` or a segmentation)."""

    index: int
    kind: str  # layer | interrupt
    material: str
    start: datetime
    end: datetime
    open_sources: frozenset[str]
    label: str | None = None
    target_thickness_nm: float | None = None
    target_composition: float | None = None

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def windows_frame(layers: Sequence[LayerWindow]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "layer": [w.index for w in layers],
            "material": [w.material for w in layers],
            "start": [w.start for w in layers],
            "end": [w.end for w in layers],
        },
        schema={"layer": pl.Int64, "material": pl.String, "start": TIME, "end": TIME},
    )


def in_windows(samples: pl.DataFrame, windows: pl.DataFrame) -> pl.DataFrame:
    """Every sample inside a window (start and end included), with the window's columns and
    `t_s`, seconds since the window's start."""
    return samples.join_where(
        windows, pl.col("time") >= pl.col("start"), pl.col("time") <= pl.col("end")
    ).with_columns(t_s=(pl.col("time") - pl.col("start")).dt.total_microseconds() / 1e6)


def window_statistics(joined: pl.DataFrame, by: Sequence[str] = ("layer", "channel")) -> pl.DataFrame:
    """n, mean, std, min, max and the least-squares slope (per second) of `value` per group."""
    dt = pl.col("t_s") - pl.col("t_s").mean()
    dv = pl.col("value") - pl.col("value").mean()
    return joined.group_by(*by).agg(
        pl.len().alias("n"),
        pl.col("value").mean().alias("mean"),
        pl.col("value").std().alias("std"),
        pl.col("value").min().alias("min"),
        pl.col("value").max().alias("max"),
        ((dt * dv).sum() / (dt * dt).sum()).alias("slope_per_s"),
    )
