"""A layer's in-situ sensor traces on a fixed grid: what the models' temporal encoder reads.

    traces = layer_traces(sensors, layers)     # long: layer, channel, bin, value

Each growth layer's window is cut into TRACE_BINS equal bins and each channel of TRACE_CHANNELS
averaged per bin, as a deviation that says how the layer went rather than which tool grew it:
a cell's thermocouple minus its working set point (°C), a cell's power and the As valve minus
their layer mean (%), the pyrometer minus its layer mean (°C), the chamber pressure and the RHEED
intensity as log ratios to their layer mean. Bins without samples are absent (the model reads
them as 0, "no deviation"). Interrupts have no traces.

The traces are part of the features: they change with FEATURES_VERSION.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from epi_ml.channels import GROUP_III
from epi_ml.features.windows import LayerWindow, in_windows, windows_frame

TRACE_BINS = 32
# trace name -> (channel, how it is expressed)
TRACE_CHANNELS: dict[str, tuple[str, str]] = {
    **{f"{c}.T_dev": (f"{c}.T", "minus_setpoint") for c in GROUP_III},
    **{f"{c}.power": (f"{c}.power", "minus_mean") for c in GROUP_III},
    "As.valve": ("As.valve", "minus_mean"),
    "sub.T_pyro": ("sub.T_pyro", "minus_mean"),
    "P.chamber": ("P.chamber", "log_ratio"),
    "RHEED.I": ("RHEED.I", "log_ratio"),
}
TRACE_NAMES = list(TRACE_CHANNELS)
TRACE_SCHEMA = {"layer": pl.Int64, "channel": pl.String, "bin": pl.Int32, "value": pl.Float64}


def layer_traces(sensors: pl.DataFrame, layers: Sequence[LayerWindow]) -> pl.DataFrame:
    """Per growth layer, channel and bin the mean deviation (see the module's docstring)."""
    growth = [w for w in layers if w.kind == "layer" and w.duration_s > 0]
    if not growth:
        return pl.DataFrame(schema=TRACE_SCHEMA)
    windows = windows_frame(growth).with_columns(
        duration_s=(pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6
    )
    wanted = {channel for channel, _ in TRACE_CHANNELS.values()}
    wanted |= {f"{c}.T_set" for c in GROUP_III}
    samples = sensors.filter(pl.col("channel").is_in(list(wanted)) & pl.col("value").is_finite())
    joined = in_windows(samples, windows).with_columns(
        bin=(pl.col("t_s") / pl.col("duration_s") * TRACE_BINS)
        .floor()
        .clip(0, TRACE_BINS - 1)
        .cast(pl.Int32)
    )
    binned = joined.group_by("layer", "channel", "bin").agg(pl.col("value").mean())
    frames = []
    for name, (channel, how) in TRACE_CHANNELS.items():
        one = binned.filter(pl.col("channel") == channel)
        if how == "minus_setpoint":
            setpoint = binned.filter(pl.col("channel") == f"{channel}_set").select(
                "layer", "bin", pl.col("value").alias("setpoint")
            )
            one = one.join(setpoint, on=["layer", "bin"], how="inner").with_columns(
                value=pl.col("value") - pl.col("setpoint")
            )
        else:
            mean = pl.col("value").mean().over("layer")
            if how == "minus_mean":
                one = one.with_columns(value=pl.col("value") - mean)
            else:  # log_ratio: only where the channel is positive (a gauge, a camera)
                one = one.filter(pl.col("value") > 0).with_columns(
                    value=(pl.col("value") / pl.col("value").mean().over("layer")).log()
                )
        frames.append(one.select("layer", pl.lit(name).alias("channel"), "bin", "value"))
    return pl.concat(frames).cast(TRACE_SCHEMA).sort("layer", "channel", "bin")  # type: ignore[arg-type]
