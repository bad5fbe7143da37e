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
    """Find title, column line and first row in the first lines. Rows start right after the last
    header line (blank lines are skipped later; anything else there is a bad line). With no header
    at all, a file that starts with rows is read, and anything else is not an EPIC log. `what`
    names the file kind in messages ("channel log", "shutter log", ...)."""
    lines = source.head_lines(HEADER_LINES_SEARCHED)
    title = columns = None
    separator = ","
    last_header = 0
    first_row = foreign = None
    for number, line in enumerate(lines, start=1):
        if title is None and columns is None and (m := TITLE.match(line)):
            title, last_header = m.group("tag").strip(), number
        elif columns is None and (m := COLUMNS.match(line)):
            separator, last_header = m.group("sep"), number
            columns = split_header(line, separator)[1:]
        elif ROW.match(line):
            first_row = number
            break
        elif line.strip() and foreign is None:
            foreign = number
    header = EpicHeader(title, columns, separator, None)
    if last_header:
        header.first_row_line = last_header + 1
    elif first_row is not None and foreign is None:
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
        rows = [line for line in lines[header.first_row_line - 1 :] if line.strip()]
        header.separator = sniff_separator(rows)
        header.findings.append(
            source.finding(
                "missing_header",
                Severity.WARNING,
                f"no EPIC column line ('Date,...') before the rows (title: {title!r}); "
                "the file was probably cut or re-saved",
                "The rows are read; names come from the title or the file name.",
                line=header.first_row_line,
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


def tag_from_filename(name: str) -> str:
    """EPIC names each log after its tag: `GC IG.PG.MV.txt` -> `GC IG.PG.MV`."""
    return name[:-4] if name.lower().endswith(".txt") else name
