"""The framing every EPIC log shares: a title line, a blank line, a column line, then rows.

    'EPIC Ga.PID.MV Log File          'EPIC Shutter Log File
                                      
    'Date,Ga.PID.MV                   'Date&Time,Sub_Sh,QMS_Sh,Ga_Sh,...
    12/06/2023 00:00:01.727,300.0     12/06/2023 01:21:15.153,1,0,1,...

The header is looked for, not assumed: a missing title or column line, a re-saved file with `;` or
tabs, or a header-less file of rows is still read (with a WARNING saying so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from epi_ml.findings import Finding, Severity
from epi_ml.readers.delimited import SEPARATOR_NAMES, sniff_separator, split_header
from epi_ml.readers.lines import clip
from epi_ml.readers.source import SourceText

HEADER_LINES_SEARCHED = 10
TITLE = re.compile(r"^\s*'?EPIC (?P<tag>.+?) (?:Log|Config) File\s*$")
COLUMNS = re.compile(r"^\s*'?Date(?:&Time)?\s*(?P<sep>[,;\t])")
# A row: starts with a date (12/06/2023, 2023-06-12, 12.06.2023) followed by a time.
ROW = re.compile(r"^\s*['\"]?\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}[ T]\d{1,2}:\d{2}")


@dataclass
class EpicHeader:
    title: str | None  # `Ga.PID.MV`, `Shutter`, `Message` (the word between EPIC and Log File)
    columns: list[str] | None  # names after the Date column, None when there is no column line
    separator: str
    first_row_line: int | None  # 1-based; None when no row can be found
    findings: list[Finding] = field(default_factory=list)


def read_header(source: SourceText, *, what: str) -> EpicHeader:
    """Find title, column line and first row in the first lines. `what` names the file kind in
    messages ("channel log", "shutter log", ...)."""
    lines = source.head_lines(HEADER_LINES_SEARCHED)
    title = columns = None
    separator = ","
    first_row = None
    foreign = None  # a line before the rows that EPIC would not write
    for number, line in enumerate(lines, start=1):
        if title is None and columns is None and (m := TITLE.match(line)):
            title = m.group("tag").strip()
        elif columns is None and (m := COLUMNS.match(line)):
            separator = m.group("sep")
            columns = split_header(line, separator)[1:]
        elif ROW.match(line):
            first_row = number
            break
        elif line.strip() and foreign is None:
            foreign = number
    if foreign is not None and title is None and columns is None:
        first_row = None  # rows under someone else's header: not an EPIC log
    header = EpicHeader(title, columns, separator, first_row)
    if first_row is None:
        if title is not None or columns is not None:
            first_row = _after_header(lines, source)
            header.first_row_line = first_row
        else:
            header.findings.append(
                source.finding(
                    "wrong_header",
                    Severity.ERROR,
                    f"this is not an EPIC {what}: line 1 is {clip(lines[0])!r}, expected "
                    f"\"'EPIC <tag> Log File\" and rows like '12/06/2023 00:00:01.727,300.0'",
                    "Check that the file is the EPIC export; other formats have their own "
                    "readers (epi_ml.readers.detect_format tells which).",
                    line=1,
                )
            )
            return header
    if columns is None:
        row = lines[first_row - 1] if first_row and first_row <= len(lines) else ""
        header.separator = sniff_separator([row, *lines[first_row:]] if first_row else [row])
        header.findings.append(
            source.finding(
                "missing_header",
                Severity.WARNING,
                f"no EPIC column line ('Date,...') before the rows (title: {title!r}); "
                "the file was probably cut or re-saved",
                "The rows are read; names come from the title or the file name.",
                line=first_row,
            )
        )
    if header.separator != ",":
        header.findings.append(
            source.finding(
                "unexpected_separator",
                Severity.WARNING,
                f"fields are separated by {SEPARATOR_NAMES[header.separator]}s, not commas as EPIC "
                "writes them (the file was re-saved by another program); read anyway",
                "Use the tool's original file where you can.",
            )
        )
    return header


def _after_header(lines: list[str], source: SourceText) -> int | None:
    """A header with no row in the searched lines: rows (if any) start after its last line."""
    for number, line in enumerate(lines, start=1):
        if line.strip() and not TITLE.match(line) and not COLUMNS.match(line):
            return number
    return None if len(lines) < HEADER_LINES_SEARCHED else HEADER_LINES_SEARCHED + 1


def tag_from_filename(name: str) -> str:
    """EPIC names each log after its tag: `GC IG.PG.MV.txt` -> `GC IG.PG.MV`."""
    return name[:-4] if name.lower().endswith(".txt") else name
