"""Operator and recipe messages as a table, CSV or Parquet: `time, caller, message[, color]`, as
the digital twin and other tools export them. (EPIC's own Messages.txt: epi_ml.readers.epic_events.)
Recipe messages mark runs and layers, so a message that cannot be placed in time is a WARNING."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from epi_ml.findings import Severity
from epi_ml.readers.delimited import row_problems
from epi_ml.readers.epic_events import MESSAGE_SCHEMA
from epi_ml.readers.lines import combine, line_findings, mark_truncated
from epi_ml.readers.result import ReadResult
from epi_ml.readers.tables import find_time_column, load_table
from epi_ml.readers.timestamps import DateOrder, check_timezone, parse_time_column

ALIASES = {"callerid": "caller", "source": "caller", "text": "message", "colour": "color"}


def read_messages(
    path: str | Path, *, tz: str = "UTC", date_order: DateOrder | None = None
) -> ReadResult:
    """A message table -> frame (time, caller, message, color), in file order."""
    check_timezone(tz)
    path = Path(path)
    empty = pl.DataFrame(schema=MESSAGE_SCHEMA)
    table, findings = load_table(path)
    if table is None:
        return ReadResult(empty, findings, path)
    time_column = find_time_column(table.names)
    by_role = {ALIASES.get(n.lower(), n.lower()): n for n in table.names if n != time_column}
    if time_column is None or "message" not in by_role:
        error = table.source.finding(
            "missing_columns",
            Severity.ERROR,
            f"a message table needs a time and a message column; found {table.names}",
            "Export time, caller, message (and color) columns.",
            line=table.header_line,
        )
        return ReadResult(empty, [*findings, error], path)
    rows = table.rows
    times = parse_time_column(
        rows.get_column(time_column), tz=tz, date_order=date_order, file=table.file
    )
    findings += times.findings
    text_rows = rows.select("line", pl.exclude("line").cast(pl.String))
    found = combine(table.problems, row_problems(text_rows, times.reason, table.separator))
    if table.unit == "line":
        found = mark_truncated(found, table.source.last_line, table.source.ends_with_newline)
    findings += line_findings(found, file=table.file, unit=table.unit)

    def column(role: str) -> pl.Expr:
        return pl.col(by_role[role]) if role in by_role else pl.lit(None)

    frame = (
        rows.with_columns(_time=times.utc)
        .filter(pl.col("_time").is_not_null())
        .select(
            pl.col("_time").alias("time"),
            column("caller").cast(pl.String).alias("caller"),
            column("message").cast(pl.String).alias("message"),
            column("color").cast(pl.Int64, strict=False).alias("color"),
        )
    )
    return ReadResult(frame, findings, path)
