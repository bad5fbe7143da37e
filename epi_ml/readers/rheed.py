"""RHEED intensity exports: a time column and one intensity column per window.

Two shapes are read. The vendor ASCII point-scan export, blank-aligned:

    Recorded at 2025-12-22   15:39:37.869
     Time [s]   Sensor 1    Sensor 2    Sensor 3
              ( 33703860) (   194310) ( 25263360)

      -0.000     422.366     2.10967     11.8461

and plain CSV (`time,intensity`, `time_s,I1,I2`, ...), whose time is seconds from the start or
absolute timestamps. Time steps need not be uniform (event-driven or digitised data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.readers.delimited import (
    row_problems,
    sniff_separator,
    split_fields,
    split_header,
    split_whitespace,
    to_float,
    unique_names,
)
from epi_ml.readers.lines import combine, line_findings, mark_truncated, order_findings
from epi_ml.readers.source import SourceText, load_text
from epi_ml.readers.timestamps import DateOrder, check_timezone, localize, parse_times

RECORDED_AT = re.compile(
    r"recorded at\s+(?P<date>\d{4}-\d{2}-\d{2})[ T]+(?P<time>\d{1,2}:\d{2}:\d{2}(?:\.\d+)?)",
    re.IGNORECASE,
)
NUMBER_START = re.compile(r"^\s*[-+]?(\d|\.\d)")
TIME_UNIT = re.compile(r"[\[(]\s*(?P<unit>ms|s|sec|min)\s*[\])]", re.IGNORECASE)
SECONDS_PER = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0}
HEADER_LINES_SEARCHED = 30


@dataclass
class RheedTrace:
    frame: pl.DataFrame  # time_s (seconds from started_at) + one Float64 column per window
    started_at: datetime | None  # UTC; None when the export does not say
    findings: list[Finding] = field(default_factory=list)
    path: Path | None = None

    @property
    def windows(self) -> list[str]:
        return [c for c in self.frame.columns if c != "time_s"]

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def to_sensors(self, window: str | None = None, channel: str = "RHEED.I") -> pl.DataFrame:
        """One window as canonical samples (SENSOR_SCHEMA); needs `started_at`."""
        if self.started_at is None:
            raise ValueError("the export has no start time; its samples cannot be placed in time")
        window = window or self.windows[0]
        start = pl.lit(self.started_at).cast(SENSOR_SCHEMA["time"])
        return self.frame.select(
            (
                start + pl.duration(microseconds=(pl.col("time_s") * 1e6).round().cast(pl.Int64))
            ).alias("time"),
            pl.lit(channel).alias("channel"),
            pl.col(window).alias("value"),
        ).drop_nulls("value")


def read_rheed_export(
    path: str | Path, *, tz: str = "UTC", date_order: DateOrder | None = None
) -> RheedTrace:
    """A RHEED intensity export. `tz`: zone of the recording clock (times without a zone)."""
    check_timezone(tz)
    path = Path(path)
    source = load_text(path)
    empty = pl.DataFrame(schema={"time_s": pl.Float64})
    if not source.usable:
        return RheedTrace(empty, None, source.findings, path)
    findings = list(source.findings)
    head = source.head_lines(HEADER_LINES_SEARCHED)
    started_at = _recorded_at(head, tz)
    header_at, first_row = _layout(head)
    if first_row is None:
        findings.append(_error(source, "no_rows", "no row of numbers in the file"))
        return RheedTrace(empty, started_at, findings, path)
    header = head[header_at - 1] if header_at else ""
    blank_aligned = bool(header) and not any(s in header for s in ("\t", ",", ";"))
    separator = " " if blank_aligned or not header else sniff_separator(head[header_at - 1 :])
    first_fields = (
        head[first_row - 1].split()
        if separator == " "
        else split_header(head[first_row - 1], separator)
    )
    names, time_label = _names(header, separator, len(first_fields), source, findings, header_at)
    if len(names) < 2:
        findings.append(
            _error(
                source,
                "no_intensity_columns",
                "the rows hold a single column: no intensity next to the time",
            )
        )
        return RheedTrace(empty, started_at, findings, path)
    if separator == " ":
        fields = split_whitespace(source, first_line=first_row, names=names)
    else:
        fields = split_fields(source, first_line=first_row, names=names, separator=separator)
    rows = fields.rows
    time_s, started_at, time_problems, time_notes = _seconds(
        rows, time_label, started_at, tz, date_order, source
    )
    findings += time_notes
    windows, problems = {}, [fields.problems, time_problems]
    keep = time_s.is_not_null()
    for name in names[1:]:
        values, bad = to_float(rows, name, what=f"intensity {name!r}")
        windows[name] = values
        problems.append(bad)
    found = mark_truncated(combine(*problems), source.last_line, source.ends_with_newline)
    findings += line_findings(found, file=str(path))
    frame = pl.DataFrame({"line": rows.get_column("line"), "time_s": time_s, **windows}).filter(
        keep
    )
    if frame.is_empty():
        findings.append(_error(source, "no_rows", "no row with a readable time"))
    else:
        samples = frame.select(
            "line", pl.col("time_s").alias("time"), pl.col(names[1]).alias("value")
        )
        findings += order_findings(samples, file=str(path))
    return RheedTrace(frame.drop("line"), started_at, findings, path)


def _recorded_at(head: list[str], tz: str) -> datetime | None:
    for line in head:
        if m := RECORDED_AT.search(line):
            naive = pl.Series([f"{m.group('date')} {m.group('time')}"]).str.strptime(
                pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False
            )
            return localize(naive, tz).item()
    return None


def _layout(head: list[str]) -> tuple[int | None, int | None]:
    """(header line, first row line), 1-based: rows start with a number (or a date); the header is
    the last other line before them, not counting "Recorded at" and "(...)" lines."""
    header = None
    for number, line in enumerate(head, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("(") or RECORDED_AT.search(line):
            continue
        if NUMBER_START.match(line):
            return header, number
        header = number
    return header, None


def _names(
    header: str,
    separator: str,
    width: int,
    source: SourceText,
    findings: list[Finding],
    line: int | None,
) -> tuple[list[str], str]:
    """Column names (the first is always `time_s`) and the header's own label of the time column."""
    if header:
        raw = (
            re.split(r"\s{2,}|\t", header.strip())
            if separator == " "
            else split_header(header, separator)
        )
        raw = [name.strip() for name in raw if name.strip()]
        if len(raw) == width:
            names, _ = unique_names(["time_s", *raw[1:]])
            return names, raw[0]
        findings.append(
            source.finding(
                "header_mismatch",
                Severity.WARNING,
                f"the header names {len(raw)} columns but the rows have {width}; the windows are "
                f"named window_1..window_{width - 1}",
                "Check the export's column line.",
                line=line,
            )
        )
    return ["time_s", *[f"window_{i}" for i in range(1, width)]], ""


def _seconds(
    rows: pl.DataFrame,
    label: str,
    started_at: datetime | None,
    tz: str,
    date_order: DateOrder | None,
    source: SourceText,
) -> tuple[pl.Series, datetime | None, pl.DataFrame, list[Finding]]:
    """Seconds from the start (the unit from the label: `Time [ms]`); absolute timestamps make
    the recording start, or else the first of them, the origin."""
    numbers, bad = to_float(rows, "time_s", what="time", required=True)
    if numbers.null_count() <= len(numbers) // 2:
        infinite = numbers.is_not_null() & ~numbers.is_finite()
        if infinite.any():  # NaN or inf cannot be placed in time: the row goes
            reason = pl.select(
                pl.when(infinite).then(pl.lit("time is NaN or infinite"))
            ).to_series()
            bad = combine(bad, row_problems(rows, reason, ","))
            numbers = numbers.set(infinite, None)
        unit = TIME_UNIT.search(label)
        scale = SECONDS_PER[unit.group("unit").lower()] if unit else 1.0
        return numbers * scale, started_at, bad, []
    parsed = parse_times(
        rows.get_column("time_s"), tz=tz, date_order=date_order, file=str(source.path)
    )
    first = parsed.utc.drop_nulls().head(1)
    start = started_at or (first.item() if len(first) else None)
    origin = pl.lit(start, dtype=parsed.utc.dtype)
    seconds = (
        parsed.utc.to_frame("t")
        .select((pl.col("t") - origin).dt.total_microseconds() / 1e6)
        .to_series()
    )
    return seconds.alias("time_s"), start, row_problems(rows, parsed.reason, ","), parsed.findings


def _error(source: SourceText, code: str, message: str) -> Finding:
    return source.finding(
        code,
        Severity.ERROR,
        message,
        "Export the intensity trace again (time + intensity columns).",
    )
