"""Wide exports, CSV or Parquet: a `time` column and one column per channel, as most tools and
spreadsheets write them. A long table (time, channel, value) is accepted too.

Time may be text (ISO 8601, DD/MM/YYYY, ...; see epi_ml.readers.timestamps) or epoch numbers
(seconds, milliseconds or microseconds, told apart by size). Column names go through the tag map;
a unit in a name (`P.chamber [mbar]`) is split off and converted where it can be. An empty cell is
no sample; a cell that is not a number loses only that sample.
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
    sniff_separator,
    split_fields,
    split_header,
    to_float,
    unique_names,
)
from epi_ml.readers.lines import combine, line_findings, mark_truncated, order_findings
from epi_ml.readers.naming import map_tags
from epi_ml.readers.result import ReadResult
from epi_ml.readers.source import SourceText, load_text
from epi_ml.readers.timestamps import (
    TIME_TYPE,
    DateOrder,
    ParsedTimes,
    check_timezone,
    epoch_to_utc,
    localize,
    parse_times,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
TIME_COLUMN_NAMES = ("time", "timestamp", "datetime", "date_time", "date&time", "time_utc", "date", "t")
LONG_COLUMNS = ("time", "channel", "value")
HEADER_LINES_SEARCHED = 30


def read_wide(
    path: str | Path,
    *,
    tag_map: Mapping[str, str] | None = None,
    tz: str = "UTC",
    date_order: DateOrder | None = None,
) -> ReadResult:
    """A wide CSV or Parquet file -> the canonical long sensor table. `tag_map`: column -> channel
    (default: every known tool's tags; canonical names pass as they are); `tz`: zone of times
    written without one; `date_order`: "dmy" or "mdy" for slashed dates when the file cannot tell."""
    check_timezone(tz)
    path = Path(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path, tag_map, tz, date_order)
    return _read_csv(path, tag_map, tz, date_order)


def find_time_column(names: list[str]) -> str | None:
    """The time column by its name (`time`, `timestamp`, `Time [s]`, ...)."""
    lowered = {name.lower().split("[")[0].split("(")[0].strip(): name for name in names}
    for candidate in TIME_COLUMN_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    return None


def _read_csv(path: Path, tag_map: Mapping[str, str] | None, tz: str, date_order: DateOrder | None) -> ReadResult:
    source = load_text(path)
    if not source.usable:
        return ReadResult(empty_sensor_frame(), source.findings, path)
    findings = list(source.findings)
    head = source.head_lines(HEADER_LINES_SEARCHED)
    header_at = next(
        (i for i, line in enumerate(head, start=1) if line.strip() and not line.lstrip().startswith("#")), None
    )
    if header_at is None:
        findings.append(_error(source, "no_header", "no header line (only comments) at the top of the file"))
        return ReadResult(empty_sensor_frame(), findings, path)
    separator = sniff_separator(head[header_at - 1 :])
    names, repeated = unique_names(split_header(head[header_at - 1], separator))
    findings += _repeated_columns(source, repeated, header_at)
    time_column = find_time_column(names)
    problem = _table_shape_problem(names, time_column)
    if problem:
        findings.append(_error(source, *problem, line=header_at))
        return ReadResult(empty_sensor_frame(), findings, path)
    fields = split_fields(source, first_line=header_at + 1, names=names, separator=separator, quoted=True)
    rows = fields.rows
    value_columns = [n for n in names if n != time_column]
    times = _parse_time_column(rows.get_column(time_column), tz, date_order, source)  # type: ignore[arg-type]
    findings += times.findings
    if has_errors(times.findings):
        return ReadResult(empty_sensor_frame(), findings, path)
    sensors, cell_problems, naming = _to_long(
        rows, times, value_columns, tag_map, str(path), separator, decimal_comma_used(rows, value_columns, separator)
    )
    found = combine(fields.problems, row_problems(rows, times.reason, separator), cell_problems)
    found = mark_truncated(found, source.last_line, source.ends_with_newline)
    findings += naming + line_findings(found, file=str(path))
    return ReadResult(*_finish(sensors, findings, source, "line"), path)


def _read_parquet(
    path: Path, tag_map: Mapping[str, str] | None, tz: str, date_order: DateOrder | None
) -> ReadResult:
    source = SourceText(path, None)
    try:
        table = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any failure of the Parquet decoder means the same
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        finding = _error(source, "unreadable_parquet", f"not a readable Parquet file: {message}")
        return ReadResult(empty_sensor_frame(), [finding], path)
    findings: list[Finding] = []
    names = table.columns
    time_column = find_time_column(names)
    problem = _table_shape_problem(names, time_column)
    if problem:
        return ReadResult(empty_sensor_frame(), [_error(source, *problem)], path)
    rows = table.with_row_index("line", offset=1)  # "line" is the 1-based row here
    value_columns = [n for n in names if n != time_column]
    usable = []
    for name in value_columns:
        dtype = table.schema[name]
        if dtype.is_numeric() or dtype in (pl.Boolean, pl.String):
            usable.append(name)
            continue
        findings.append(
            source.finding(
                "unsupported_column",
                Severity.WARNING,
                f"column {name!r} holds {dtype}, not numbers; left out (the raw file keeps it)",
                "Write one number per cell for sensor channels.",
            )
        )
    rows = rows.with_columns(pl.col(c).cast(pl.Float64) for c in usable if table.schema[c] == pl.Boolean)
    times = _parse_time_column(rows.get_column(time_column), tz, date_order, source)  # type: ignore[arg-type]
    findings += times.findings
    if has_errors(times.findings):
        return ReadResult(empty_sensor_frame(), findings, path)
    sensors, cell_problems, naming = _to_long(rows, times, usable, tag_map, str(path), ",", False)
    found = combine(row_problems(rows.select("line", time_column).cast({time_column: pl.String}), times.reason, ","), cell_problems)
    findings += naming + line_findings(found, file=str(path), unit="row")
    return ReadResult(*_finish(sensors, findings, source, "row"), path)


def _table_shape_problem(names: list[str], time_column: str | None) -> tuple[str, str] | None:
    if time_column is None:
        return (
            "no_time_column",
            f"no time column among {names[:12]}{'...' if len(names) > 12 else ''}; expected one "
            f"named {', '.join(TIME_COLUMN_NAMES[:4])}",
        )
    if len(names) < 2:
        return "no_value_columns", f"only the time column {time_column!r}, no channel columns"
    return None


def _parse_time_column(
    column: pl.Series, tz: str, date_order: DateOrder | None, source: SourceText
) -> ParsedTimes:
    """Text times, epoch numbers or a typed datetime column -> UTC, with a reason per bad row."""
    file = str(source.path)
    if isinstance(column.dtype, pl.Datetime):
        naive = column.dtype.time_zone is None
        utc = localize(column.cast(pl.Datetime("us")), tz) if naive else column.dt.convert_time_zone("UTC")
        return ParsedTimes(utc.cast(TIME_TYPE), _reasons(utc, "no time"), None)
    if column.dtype == pl.Date:
        utc = localize(column.cast(pl.Datetime("us")), tz)
        return ParsedTimes(utc.cast(TIME_TYPE), _reasons(utc, "no time"), None)
    numbers = column.cast(pl.Float64, strict=False)
    if numbers.null_count() == column.null_count() and numbers.len() > numbers.null_count():
        utc, unit = epoch_to_utc(numbers)
        if utc is None:
            finding = _error(
                source,
                "relative_time",
                f"the time column holds small numbers ({numbers.min():g} .. {numbers.max():g}), "
                "not dates or epoch times, so the samples cannot be placed in time",
                hint="Export absolute times (ISO 8601 or epoch seconds), or the start time with them.",
            )
            return ParsedTimes(pl.Series([None] * len(column), dtype=TIME_TYPE), _reasons(numbers, "no time"), None, [finding])
        notes = [] if unit == "seconds" else [
            source.finding("epoch_unit", Severity.INFO, f"time column read as epoch {unit} (from their size)")
        ]
        return ParsedTimes(utc.cast(TIME_TYPE), _reasons(utc, "time is not a number"), None, notes)
    return parse_times(column.cast(pl.String), tz=tz, date_order=date_order, file=file)


def _reasons(values: pl.Series, reason: str) -> pl.Series:
    return pl.select(
        pl.when(values.is_null()).then(pl.lit(reason)).otherwise(pl.lit(None, dtype=pl.String))
    ).to_series()


def _to_long(
    rows: pl.DataFrame,
    times: ParsedTimes,
    value_columns: list[str],
    tag_map: Mapping[str, str] | None,
    file: str,
    separator: str,
    decimal_comma: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, list[Finding]]:
    """Long samples (line, time, channel, value), the bad cells, and the naming findings. A long
    input (time, channel, value) only has its channel names mapped."""
    good = times.reason.is_null()
    kept, utc = rows.filter(good), times.utc.filter(good)
    if sorted(c.lower() for c in [*value_columns, "time"]) == sorted(LONG_COLUMNS):
        channel_col = next(c for c in value_columns if c.lower() == "channel")
        value_col = next(c for c in value_columns if c.lower() == "value")
        tags = kept.get_column(channel_col).cast(pl.String)
        naming = map_tags(sorted(tags.drop_nulls().unique()), tag_map, file=file)
        values, bad = to_float(kept, value_col, what="value", decimal_comma=decimal_comma)
        long = pl.DataFrame(
            {
                "line": kept.get_column("line"),
                "time": utc,
                "channel": tags.replace_strict(naming.channels, default=None, return_dtype=pl.String),
                "value": values,
            }
        ).drop_nulls(["channel", "value"])
        no_channel = missing(kept.cast({channel_col: pl.String}), channel_col, what="channel", separator=separator)
        return long, combine(bad, no_channel), naming.findings
    naming = map_tags(value_columns, tag_map, file=file, units_in_names=True)
    long, bad = cells_to_long(kept, utc, naming.channels, decimal_comma=decimal_comma)
    return naming.convert(long), bad, naming.findings


def _finish(
    long: pl.DataFrame, findings: list[Finding], source: SourceText, unit: str
) -> tuple[pl.DataFrame, list[Finding]]:
    file = str(source.path)
    for (channel,), samples in long.group_by("channel", maintain_order=True):
        findings += order_findings(samples, file=file, channel=channel, unit=unit)  # type: ignore[arg-type]
    if long.is_empty():
        findings.append(
            _error(source, "no_rows", "no sample could be read (no row with a time and a number)")
        )
    return long.select("time", "channel", "value").cast(SENSOR_SCHEMA), findings  # type: ignore[arg-type]


def _repeated_columns(source: SourceText, repeated: list[str], line: int) -> list[Finding]:
    return [
        source.finding(
            "repeated_column",
            Severity.WARNING,
            f"column {name!r} appears more than once; the copies are read as {name}_2, ...",
            "Remove the duplicate column from the export.",
            line=line,
        )
        for name in sorted(set(repeated))
    ]


def _error(source: SourceText, code: str, message: str, hint: str = "", **kw) -> Finding:  # noqa: ANN003
    return source.finding(
        code,
        Severity.ERROR,
        message,
        hint or "Export `time` plus one column per channel (see docs); nothing was read.",
        **kw,
    )
