"""Wide exports, CSV or Parquet: a `time` column and one column per channel, as most tools and
spreadsheets write them. A long table (time, channel, value) is accepted too.

Time may be text (ISO 8601, DD/MM/YYYY, ...), datetimes or epoch numbers (see
epi_ml.readers.timestamps.parse_time_column). Column names go through the tag map; a unit in a
name (`P.chamber [mbar]`) is split off and converted where it can be. An empty cell is no sample;
a cell that is not a number loses only that sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from epi_ml.channels import SENSOR_SCHEMA, empty_sensor_frame
from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.readers.delimited import (
    cells_to_long,
    decimal_comma_used,
    missing,
    row_problems,
    to_float,
)
from epi_ml.readers.lines import combine, line_findings, mark_truncated, order_findings
from epi_ml.readers.naming import ChannelMap, map_tags
from epi_ml.readers.result import ReadResult
from epi_ml.readers.tables import TIME_COLUMN_NAMES, Table, find_time_column, load_table
from epi_ml.readers.timestamps import DateOrder, ParsedTimes, check_timezone, parse_time_column

LONG_COLUMNS = ("time", "channel", "value")


def read_wide(
    path: str | Path,
    *,
    tag_map: Mapping[str, str] | None = None,
    tz: str = "UTC",
    date_order: DateOrder | None = None,
) -> ReadResult:
    """A wide CSV or Parquet file -> the canonical long sensor table. `tag_map`: column -> channel
    (default: every known tool's tags; canonical names pass as they are); `tz`: zone of times
    written without one; `date_order`: "dmy" or "mdy" for slashed dates the file cannot settle."""
    check_timezone(tz)
    path = Path(path)
    table, findings = load_table(path)
    if table is None:
        return ReadResult(empty_sensor_frame(), findings, path)
    time_column = find_time_column(table.names)
    shape_error = _shape_error(table, time_column)
    if shape_error:
        return ReadResult(empty_sensor_frame(), [*findings, shape_error], path)
    assert time_column is not None
    rows = table.rows
    times = parse_time_column(
        rows.get_column(time_column), tz=tz, date_order=date_order, file=table.file
    )
    findings += times.findings
    if has_errors(times.findings):
        return ReadResult(empty_sensor_frame(), findings, path)
    value_columns, skipped = _numeric_columns(table, time_column)
    findings += skipped
    decimal_comma = (
        decimal_comma_used(rows, value_columns, table.separator) if table.unit == "line" else False
    )
    text_rows = rows.select("line", pl.exclude("line").cast(pl.String))
    if _is_long(value_columns):
        long, cell_problems, naming = _long_input(
            table, times, value_columns, tag_map, decimal_comma
        )
    else:
        long, cell_problems, naming = _wide_input(
            table, times, value_columns, tag_map, decimal_comma
        )
    found = combine(
        table.problems, row_problems(text_rows, times.reason, table.separator), cell_problems
    )
    if table.unit == "line":
        found = mark_truncated(found, table.source.last_line, table.source.ends_with_newline)
    findings += naming.findings + line_findings(found, file=table.file, unit=table.unit)
    for (channel,), samples in long.group_by("channel", maintain_order=True):
        findings += order_findings(samples, file=table.file, channel=str(channel), unit=table.unit)
    if long.is_empty():
        findings.append(
            _error(table, "no_rows", "no sample could be read (no row with a time and a number)")
        )
    sensors = long.select("time", "channel", "value").cast(SENSOR_SCHEMA)  # type: ignore[arg-type]
    return ReadResult(sensors, findings, path)


def _shape_error(table: Table, time_column: str | None) -> Finding | None:
    if time_column is None:
        shown = f"{table.names[:12]}{'...' if len(table.names) > 12 else ''}"
        expected = ", ".join(TIME_COLUMN_NAMES[:4])
        return _error(
            table, "no_time_column", f"no time column among {shown}; expected one named {expected}"
        )
    if len(table.names) < 2:
        return _error(
            table, "no_value_columns", f"only the time column {time_column!r}, no channel columns"
        )
    return None


def _numeric_columns(table: Table, time_column: str) -> tuple[list[str], list[Finding]]:
    """Columns that can hold numbers (text, numbers, booleans); others are left out, warned."""
    usable, skipped = [], []
    for name in table.names:
        dtype = table.rows.schema[name]
        if name == time_column:
            continue
        if dtype.is_numeric() or dtype in (pl.String, pl.Boolean):
            usable.append(name)
            continue
        skipped.append(
            table.source.finding(
                "unsupported_column",
                Severity.WARNING,
                f"column {name!r} holds {dtype}, not numbers; left out (the raw file keeps it)",
                "Write one number per cell for sensor channels.",
            )
        )
    return usable, skipped


def _is_long(columns: list[str]) -> bool:
    return sorted(c.lower() for c in [*columns, "time"]) == sorted(LONG_COLUMNS)


def _wide_input(
    table: Table,
    times: ParsedTimes,
    columns: list[str],
    tag_map: Mapping[str, str] | None,
    decimal_comma: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, ChannelMap]:
    good = times.reason.is_null()
    schema = table.rows.schema
    rows = table.rows.select(
        "line",
        *(pl.col(c).cast(pl.Float64) if schema[c] == pl.Boolean else pl.col(c) for c in columns),
    )
    naming = map_tags(columns, tag_map, file=table.file, units_in_names=True)
    long, bad = cells_to_long(
        rows.filter(good), times.utc.filter(good), naming.channels, decimal_comma=decimal_comma
    )
    return naming.convert(long), bad, naming


def _long_input(
    table: Table,
    times: ParsedTimes,
    columns: list[str],
    tag_map: Mapping[str, str] | None,
    decimal_comma: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, ChannelMap]:
    """(time, channel, value) rows: only the channel names are mapped."""
    channel_col = next(c for c in columns if c.lower() == "channel")
    value_col = next(c for c in columns if c.lower() == "value")
    good = times.reason.is_null()
    rows = table.rows.filter(good).with_columns(pl.col(channel_col).cast(pl.String))
    tags = rows.get_column(channel_col)
    naming = map_tags(sorted(tags.drop_nulls().unique()), tag_map, file=table.file)
    values, bad = to_float(rows, value_col, what="value", decimal_comma=decimal_comma)
    long = pl.DataFrame(
        {
            "line": rows.get_column("line"),
            "time": times.utc.filter(good),
            "channel": tags.replace_strict(naming.channels, default=None, return_dtype=pl.String),
            "value": values,
        }
    ).drop_nulls(["channel", "value"])
    no_channel = missing(
        rows.select("line", channel_col), channel_col, what="channel", separator=table.separator
    )
    return long, combine(bad, no_channel), naming


def _error(table: Table, code: str, message: str) -> Finding:
    hint = "Export `time` plus one column per channel; nothing was read."
    return table.source.finding(code, Severity.ERROR, message, hint, line=table.header_line)
