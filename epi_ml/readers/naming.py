"""Vendor tags and column names -> canonical channels (epi_ml.channels), nothing dropped.

A tag the tool's map does not know keeps its data under `raw:<tag>` with an `unknown_tag` WARNING,
so a new sensor is never lost and shows up where an engineer can add it to the map. Column names
of wide files may carry a unit (`P.chamber [mbar]`, `Ga.T (K)`): it is split off and, for the few
units that differ from the canonical one only by scale or offset, converted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl

from epi_ml.channels import CHANNEL_UNITS, unit_of
from epi_ml.findings import Finding, Severity
from epi_ml.readers.tagmaps import TAG_MAPS

RAW_PREFIX = "raw:"
# Every tag of every known tool, for files that do not say which tool wrote them.
ALL_TAGS: dict[str, str] = {
    tag: channel for tags in TAG_MAPS.values() for tag, channel in tags.items()
}
KNOWN_CHANNELS = frozenset(ALL_TAGS.values())

_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\])]*)[\])]\s*$")
# (canonical unit, spelling) -> (scale, offset): canonical = value * scale + offset
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("°C", "°c"): (1.0, 0.0),
    ("°C", "degc"): (1.0, 0.0),
    ("°C", "c"): (1.0, 0.0),
    ("°C", "k"): (1.0, -273.15),
    ("Torr", "torr"): (1.0, 0.0),
    ("Torr", "mbar"): (0.750062, 0.0),
    ("Torr", "hpa"): (0.750062, 0.0),
    ("Torr", "pa"): (0.00750062, 0.0),
    ("%", "%"): (1.0, 0.0),
    ("rpm", "rpm"): (1.0, 0.0),
    ("a.u.", "a.u."): (1.0, 0.0),
    ("a.u.", "au"): (1.0, 0.0),
    ("a.u.", "counts"): (1.0, 0.0),
}


def is_canonical(name: str) -> bool:
    """`Ga.T`, `BEP`, `As.T_crack`: a name epi-ml itself uses."""
    return name in KNOWN_CHANNELS or name in CHANNEL_UNITS or ("." in name and unit_of(name) != "")


@dataclass
class ChannelMap:
    channels: dict[str, str]  # tag (or column) -> canonical channel (or raw:<tag>)
    findings: list[Finding] = field(default_factory=list)
    conversions: dict[str, tuple[float, float]] = field(
        default_factory=dict
    )  # channel -> scale, offset

    def convert(self, long: pl.DataFrame) -> pl.DataFrame:
        """Apply the unit conversions to a long frame (time, channel, value, ...)."""
        if not self.conversions:
            return long
        channel = pl.col("channel")
        scale = channel.replace_strict(
            {c: s for c, (s, _) in self.conversions.items()}, default=1.0, return_dtype=pl.Float64
        )
        offset = channel.replace_strict(
            {c: o for c, (_, o) in self.conversions.items()}, default=0.0, return_dtype=pl.Float64
        )
        return long.with_columns(value=pl.col("value") * scale + offset)


def map_tags(
    tags: Iterable[str],
    tag_map: Mapping[str, str] | None,
    *,
    file: str | None,
    map_name: str = "the tool's tag map",
    units_in_names: bool = False,
) -> ChannelMap:
    """Canonical channel of each tag. With no `tag_map`, every known tool's tags are accepted;
    canonical names pass through as they are. `units_in_names`: names may end in `[unit]`."""
    tag_map = ALL_TAGS if tag_map is None else tag_map
    result = ChannelMap({})
    for tag in tags:
        name, unit = split_unit(tag) if units_in_names else (tag, "")
        if name in tag_map:
            channel = tag_map[name]
        elif is_canonical(name):
            channel = name
        else:
            channel = RAW_PREFIX + name
            result.findings.append(
                Finding(
                    "unknown_tag",
                    Severity.WARNING,
                    f"tag {name!r} is not in {map_name}; its data is kept as channel {channel!r}",
                    hint="Add the tag to the tool's tag map (epi_ml/readers/tagmaps.py) to use it "
                    "under a canonical name.",
                    file=file,
                    channel=channel,
                    details={"tag": name},
                )
            )
        result.channels[tag] = channel
        if unit:
            _unit(result, tag, channel, unit, file)
    return result


def split_unit(name: str) -> tuple[str, str]:
    """`P.chamber [mbar]` -> (`P.chamber`, `mbar`); a name without a unit -> (name, "")."""
    match = _UNIT_SUFFIX.match(name)
    if not match:
        return name.strip(), ""
    return match.group("name").strip(), match.group("unit").strip()


def _unit(result: ChannelMap, column: str, channel: str, unit: str, file: str | None) -> None:
    canonical = unit_of(channel)
    if not canonical or unit == canonical:
        return
    conversion = UNIT_CONVERSIONS.get((canonical, unit.lower().replace(" ", "")))
    if conversion is None:
        result.findings.append(
            Finding(
                "unknown_unit",
                Severity.WARNING,
                f"column {column!r} is in {unit!r}, which epi-ml cannot convert to {canonical}; "
                "values are kept as written",
                hint=f"Export {channel} in {canonical}, or check the column's unit.",
                file=file,
                channel=channel,
                details={"unit": unit, "canonical_unit": canonical},
            )
        )
        return
    if conversion != (1.0, 0.0):
        result.conversions[channel] = conversion
        result.findings.append(
            Finding(
                "unit_converted",
                Severity.INFO,
                f"column {column!r} converted from {unit} to {canonical}",
                file=file,
                channel=channel,
                details={
                    "unit": unit,
                    "canonical_unit": canonical,
                    "scale": conversion[0],
                    "offset": conversion[1],
                },
            )
        )
