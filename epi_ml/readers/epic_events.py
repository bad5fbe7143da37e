"""EPIC event logs: `Shutters.txt` (the state of every shutter, written on each change) and
`Messages.txt` (operator, recipe and transfer messages)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from epi_ml.channels import SENSOR_SCHEMA, empty_sensor_frame
from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.readers.delimited import (
    body_lines,
    cells_to_long,
    decimal_comma_used,
    row_problems,
    split_fields,
)
from epi_ml.readers.epic_format import read_header
from epi_ml.readers.lines import PROBLEM_SCHEMA, combine, line_findings, mark_truncated
from epi_ml.readers.naming import RAW_PREFIX
from epi_ml.readers.result import ReadResult
from epi_ml.readers.source import load_text
from epi_ml.readers.tagmaps import epic_shutter_channel
from epi_ml.readers.timestamps import EPIC_TIME, parse_times

MESSAGE_SCHEMA: dict[str, pl.DataType] = {
    "time": SENSOR_SCHEMA["time"],
    "caller": pl.String(),
    "message": pl.String(),
    "color": pl.Int64(),
}
# time,caller,message,color: the message is free text and may itself hold commas.
MESSAGE_ROW = re.compile(
    r"^(?P<time>[^,]*),(?P<caller>[^,]*),(?P<message>.*),\s*(?P<color>-?\d+)\s*$"
)


def read_epic_shutters(path: str | Path, *, tz: str = "UTC") -> ReadResult:
    """Shutters.txt -> long SENSOR_SCHEMA rows, one per event per shutter column (`Ga_Sh` ->
    `Ga.shutter`, 1 = open). A cell that is not a number loses only that shutter's event."""
    source = load_text(path)
    if not source.usable:
        return ReadResult(empty_sensor_frame(), source.findings, Path(path))
    header = read_header(source, what="shutter log")
    findings = [*source.findings, *header.findings]
    if has_errors(findings):
        return ReadResult(empty_sensor_frame(), findings, source.path)
    if header.columns is None:
        findings.append(
            source.finding(
                "no_shutter_columns",
                Severity.ERROR,
                "the shutter log has no column line ('Date&Time,Sub_Sh,Ga_Sh,...'), so its 0/1 "
                "columns cannot be told apart",
                "Take Shutters.txt again from the tool, with its header.",
            )
        )
        return ReadResult(empty_sensor_frame(), findings, source.path)
    columns = header.columns
    channels = {c: _shutter_channel(c) for c in columns}
    for column, channel in channels.items():
        if channel.startswith(RAW_PREFIX):
            findings.append(
                source.finding(
                    "unknown_tag",
                    Severity.WARNING,
                    f"shutter log column {column!r} is not a '<source>_Sh' shutter; kept as "
                    f"{channel!r}",
                    "Check the column line of Shutters.txt.",
                    channel=channel,
                )
            )
    sep = header.separator
    fields = split_fields(
        source, first_line=header.first_row_line or 1, names=["time", *columns], separator=sep
    )
    long, problems, notes = shutter_rows_to_long(
        fields.rows, channels, sep, tz=tz, file=str(source.path)
    )
    found = mark_truncated(
        combine(fields.problems, problems), source.last_line, source.ends_with_newline
    )
    findings += notes + line_findings(found, file=str(source.path))
    frame = long.select("time", "channel", "value").cast(SENSOR_SCHEMA)  # type: ignore[arg-type]
    return ReadResult(frame, findings, source.path)


def shutter_rows_to_long(
    rows: pl.DataFrame, channels: dict[str, str], separator: str, *, tz: str, file: str
) -> tuple[pl.DataFrame, pl.DataFrame, list[Finding]]:
    """Shutter-log rows split into fields (line, time, one column per shutter) -> long samples
    (line, time, channel, value), the problems of their lines, and notes on the time format.
    Shared by the reader of whole files and the live tailer of appended lines."""
    times = parse_times(rows.get_column("time"), tz=tz, expected=EPIC_TIME, file=file)
    good = times.reason.is_null()
    long, bad_cells = cells_to_long(
        rows.filter(good),
        times.utc.filter(good),
        channels,
        decimal_comma=decimal_comma_used(rows, list(channels), separator),
    )
    return long, combine(row_problems(rows, times.reason, separator), bad_cells), times.findings


def read_epic_messages(path: str | Path, *, tz: str = "UTC") -> ReadResult:
    """Messages.txt -> frame (time, caller, message, color), in file order."""
    source = load_text(path)
    empty = pl.DataFrame(schema=MESSAGE_SCHEMA)
    if not source.usable:
        return ReadResult(empty, source.findings, Path(path))
    header = read_header(source, what="message log")
    findings = [*source.findings, *header.findings]
    if header.first_row_line is None:
        return ReadResult(empty, findings, source.path)
    lines = body_lines(source, header.first_row_line)
    parts = lines.with_columns(parts=pl.col("text").str.extract_groups(MESSAGE_ROW.pattern)).unnest(
        "parts"
    )
    shape_bad = parts.filter(pl.col("time").is_null()).select(
        "line", pl.lit("not 'time,caller,message,color'").alias("reason"), "text"
    )
    rows = parts.filter(pl.col("time").is_not_null())
    times = parse_times(rows.get_column("time"), tz=tz, expected=EPIC_TIME, file=str(source.path))
    bad_times = row_problems(rows.select("line", "text"), times.reason, ",", text_column="text")
    found = mark_truncated(
        combine(shape_bad.cast(PROBLEM_SCHEMA), bad_times),  # type: ignore[arg-type]
        source.last_line,
        source.ends_with_newline,
    )
    findings += times.findings + line_findings(found, file=str(source.path))
    frame = (
        rows.with_columns(time=times.utc)
        .filter(pl.col("time").is_not_null())
        .select("time", "caller", "message", pl.col("color").cast(pl.Int64))
    )
    return ReadResult(frame, findings, source.path)


def _shutter_channel(column: str) -> str:
    return epic_shutter_channel(column) if column.endswith("_Sh") else RAW_PREFIX + column
