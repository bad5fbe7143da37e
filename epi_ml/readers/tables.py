"""A table file as header + rows, the same way for every table reader (wide, measurements,
messages): a delimited text file with a header line, or a Parquet file.

Text: comment lines (`#`) above the header are skipped, the separator is sniffed (comma, semicolon
or tab), repeated or empty column names are made unique, quoted fields are honoured, and every row
keeps its 1-based line number. Parquet: columns keep their types and `line` is the 1-based row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.readers.delimited import sniff_separator, split_fields, split_header, unique_names
from epi_ml.readers.lines import no_problems
from epi_ml.readers.source import SourceText, load_text

PARQUET_SUFFIXES = (".parquet", ".pq")
HEADER_LINES_SEARCHED = 30
TIME_COLUMN_NAMES = (
    "time",
    "timestamp",
    "datetime",
    "date_time",
    "date&time",
    "time_utc",
    "date",
    "t",
)


@dataclass
class Table:
    source: SourceText  # the text (None for Parquet) and the path
    names: list[str]  # column names, unique
    rows: pl.DataFrame  # "line" + one column per name (String from text, typed from Parquet)
    problems: pl.DataFrame  # lines without the right number of fields
    separator: str = ","
    header_line: int | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def unit(self) -> str:
        """What `line` counts: lines of a text file, rows of a Parquet file."""
        return "row" if self.source.text is None else "line"

    @property
    def file(self) -> str:
        return str(self.source.path)


def find_time_column(names: list[str]) -> str | None:
    """The time column by its name (`time`, `Timestamp`, `Time [s]`, ...)."""
    bare = {name.lower().split("[")[0].split("(")[0].strip(): name for name in reversed(names)}
    return next((bare[c] for c in TIME_COLUMN_NAMES if c in bare), None)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def load_table(path: str | Path) -> tuple[Table | None, list[Finding]]:
    """The table in `path`, or None and the ERROR that says why there is none."""
    path = Path(path)
    return _load_parquet(path) if is_parquet(path) else _load_text(path)


def _load_text(path: Path) -> tuple[Table | None, list[Finding]]:
    source = load_text(path)
    if not source.usable:
        return None, source.findings
    head = source.head_lines(HEADER_LINES_SEARCHED)
    header_at = next(
        (i for i, ln in enumerate(head, 1) if ln.strip() and not ln.lstrip().startswith("#")), None
    )
    if header_at is None:
        error = source.finding(
            "no_header",
            Severity.ERROR,
            "no header line at the top of the file (only comments)",
            "Write the column names on the first line.",
        )
        return None, [*source.findings, error]
    separator = sniff_separator(head[header_at - 1 :])
    names, repeated = _names(split_header(head[header_at - 1], separator))
    findings = list(source.findings) + [
        source.finding(
            "repeated_column",
            Severity.WARNING,
            f"column {name!r} appears more than once; the copies are read as {name}_2, ...",
            "Remove the duplicate column from the export.",
            line=header_at,
        )
        for name in sorted(set(repeated))
    ]
    fields = split_fields(
        source, first_line=header_at + 1, names=names, separator=separator, quoted=True
    )
    table = Table(source, names, fields.rows, fields.problems, separator, header_at, findings)
    return table, findings


def _load_parquet(path: Path) -> tuple[Table | None, list[Finding]]:
    source = SourceText(path, None)
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any failure of the Parquet decoder means the same
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        error = source.finding(
            "unreadable_parquet",
            Severity.ERROR,
            f"not a readable Parquet file: {message}",
            "The file is damaged or not Parquet; export it again.",
        )
        return None, [error]
    names, _ = _names(frame.columns)
    rows = frame.rename(dict(zip(frame.columns, names, strict=True))).with_row_index(
        "line", offset=1
    )
    return Table(source, names, rows, no_problems()), []


def _names(columns: list[str]) -> tuple[list[str], list[str]]:
    """Unique column names; `line` is taken (the line number): a column of that name is `line_2`."""
    names, repeated = unique_names(["line", *columns])
    return names[1:], [name for name in repeated if name != "line" or columns.count("line") > 1]
