"""Canonical channel names and units (see DESIGN.md "Canonical names and units").

A channel is `<source>.<quantity>`: `Ga.T`, `Ga.T_set`, `Ga.power`, `Ga.shutter`, `As.valve`,
`sub.T`, `sub.T_pyro`, `BEP`, `P.chamber`, `RHEED.I`, `sub.rpm`, ...

The canonical sensor table is *long*: one row per sample, columns
    time    Datetime("us", "UTC")   sample time
    channel String                  canonical channel name
    value   Float64                 value in the channel's canonical unit
Channels are sampled independently (real loggers write each channel on its own clock), so the
long form keeps every sample exactly as logged; features resample where they need to.
"""

from __future__ import annotations

import polars as pl

SENSOR_SCHEMA: dict[str, pl.DataType] = {
    "time": pl.Datetime("us", "UTC"),
    "channel": pl.String(),
    "value": pl.Float64(),
}

# Sources that are effusion cells (group III and dopants); As is a valved cracker.
GROUP_III = ("Ga", "Al", "In")
DOPANTS = ("Si", "Be")
CELLS = GROUP_III + DOPANTS

# Unit of each quantity (the part after the dot); channels without a dot are listed whole.
QUANTITY_UNITS: dict[str, str] = {
    "T": "°C",
    "T_set": "°C",
    "T_tip": "°C",
    "T_base": "°C",
    "T_lip": "°C",
    "T_pyro": "°C",
    "power": "%",
    "shutter": "0/1",
    "valve": "%",
    "rpm": "rpm",
    "I": "a.u.",
    "chamber": "Torr",
    "main": "Torr",
    "BEP": "Torr",
}
CHANNEL_UNITS: dict[str, str] = {"BEP": "Torr"}


def source_of(channel: str) -> str:
    """`Ga.T` -> `Ga`; `BEP` -> `BEP`."""
    return channel.split(".", 1)[0]


def quantity_of(channel: str) -> str:
    """`Ga.T` -> `T`; `BEP` -> `BEP`."""
    return channel.split(".", 1)[1] if "." in channel else channel


def unit_of(channel: str) -> str:
    """Canonical unit of a channel, or "" when the quantity is not known."""
    if channel in CHANNEL_UNITS:
        return CHANNEL_UNITS[channel]
    return QUANTITY_UNITS.get(quantity_of(channel), "")


def empty_sensor_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=SENSOR_SCHEMA)
