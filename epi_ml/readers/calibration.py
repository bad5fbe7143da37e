"""Flux-calibration tables, as the lab scripts write them: one tab-separated file per cell and scan,
named `YYYY-MM-DD_HH-MM-SS_<cell>.txt` (older scripts: `YYYY-MM-DD_<cell>.txt`).

    Ga	BFM.P	MBE.P	[BFM.P_STD	MBE.P_STD]
    960	1.62E-07	3.1E-09
    950	1.38E-07	3.0E-09

The first column is named after the cell and holds its temperature in °C (for a valved cracker,
As or Sb, the valve opening in %); BFM.P is the beam flux monitor reading and MBE.P the chamber
background, both Torr; the optional _STD columns are their standard deviations over the reading.
Scripts append to the file, so a header can repeat, and some files have no header at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.readers.delimited import (
    sniff_separator,
    split_fields,
    split_header,
    to_float,
    unique_names,
)
from epi_ml.readers.lines import combine, line_findings, mark_truncated
from epi_ml.readers.source import SourceText, load_text
from epi_ml.readers.timestamps import check_timezone, localize

FILE_NAME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})(?:_(?P<time>\d{2}-\d{2}-\d{2}))?"
    r"(?:_.*)?_(?P<cell>[A-Za-z][A-Za-z0-9]*)\.\w+$"
)
COLUMN_ROLES = {
    "bfm.p": "bep",
    "mbe.p": "background",
    "bfm.p_std": "bep_std",
    "mbe.p_std": "background_std",
}
POSITIONAL = ("bep", "background", "bep_std", "background_std")
VALVED_SOURCES = ("As", "Sb", "P")  # crackers whose flux is set by a valve, not a temperature
TEMPERATURE, VALVE = "T_C", "valve_pct"


@dataclass
class CalibrationTable:
    cell: str | None  # `Ga`, `Al`, `In`, `As`, ...
    taken_at: datetime | None  # from the file name (UTC), None when the name has no date
    points: pl.DataFrame  # T_C (valve_pct for As/Sb), bep, background, [bep_std, background_std]
    findings: list[Finding] = field(default_factory=list)
    path: Path | None = None

    @property
    def setting(self) -> str:
        """The name of the first column: `T_C`, or `valve_pct` for a valved cracker."""
        return self.points.columns[0] if self.points.width else TEMPERATURE

    @property
    def net_bep(self) -> pl.Series:
        """BFM reading minus background: the beam's own beam-equivalent pressure (Torr)."""
        return (self.points.get_column("bep") - self.points.get_column("background")).alias(
            "net_bep"
        )

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)


def read_calibration_table(path: str | Path, *, tz: str = "UTC") -> CalibrationTable:
    """One calibration file. `tz`: the zone of the date and time in its name."""
    check_timezone(tz)
    path = Path(path)
    name_cell, taken_at, name_notes = _from_file_name(path, tz)
    source = load_text(path)
    if not source.usable:
        return CalibrationTable(
            name_cell, taken_at, _empty(name_cell), [*name_notes, *source.findings], path
        )
    findings = [*source.findings, *name_notes]
    lines = source.head_lines(50)
    first = next(
        (i for i, ln in enumerate(lines, 1) if ln.strip() and not ln.lstrip().startswith("#")), None
    )
    if first is None:
        findings.append(_error(source, "no_rows", "the file holds only comments"))
        return CalibrationTable(name_cell, taken_at, _empty(name_cell), findings, path)
    separator = sniff_separator(lines[first - 1 :], preferred="\t")
    fields_in_first = split_header(lines[first - 1], separator)
    has_header = _number(fields_in_first[0]) is None
    header_cell = fields_in_first[0] if has_header else None
    cell = _settle_cell(name_cell, header_cell, source, findings)
    setting = VALVE if cell in VALVED_SOURCES else TEMPERATURE
    names = _column_names(fields_in_first, has_header, setting, source, findings, first)
    fields = split_fields(
        source, first_line=first + 1 if has_header else first, names=names, separator=separator
    )
    rows, skipped = _drop_repeated_headers(fields.rows, names[0], header_cell)
    if skipped:
        findings.append(
            source.finding(
                "repeated_header",
                Severity.INFO,
                f"{skipped} header or comment line(s) inside the table (the script appended to "
                "the file); skipped",
            )
        )
    columns, problems = {}, [fields.problems]
    labels = (
        fields_in_first if has_header else [setting, "BFM.P", "MBE.P", "BFM.P_STD", "MBE.P_STD"]
    )
    for i, name in enumerate(names):
        label = labels[i] if i < len(labels) else name
        values, bad = to_float(rows, name, what=label, required=i < 3)
        columns[name] = values
        problems.append(bad)
    found = combine(*problems)
    found = mark_truncated(found, source.last_line, source.ends_with_newline)
    findings += line_findings(found, file=str(path), channel=cell)
    table = (
        rows.select("line")
        .with_columns(**columns)
        .join(found.select("line"), on="line", how="anti", maintain_order="left")
    )
    findings += _point_checks(table, source, cell)
    return CalibrationTable(cell, taken_at, table.drop("line"), findings, path)


def _from_file_name(path: Path, tz: str) -> tuple[str | None, datetime | None, list[Finding]]:
    match = FILE_NAME.match(path.name)
    if not match:
        return (
            None,
            None,
            [
                Finding(
                    "no_date_in_name",
                    Severity.WARNING,
                    f"the file name {path.name!r} is not 'YYYY-MM-DD_HH-MM-SS_<cell>.txt', so the "
                    "date "
                    "of the calibration is unknown",
                    hint="Keep the name the calibration script gave the file; the date orders the "
                    "calibrations of a cell in time (cell depletion).",
                    file=str(path),
                )
            ],
        )
    stamp = f"{match.group('date')} {(match.group('time') or '00-00-00').replace('-', ':')}"
    try:
        naive = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return (
            match.group("cell"),
            None,
            [
                Finding(
                    "no_date_in_name",
                    Severity.WARNING,
                    f"{stamp!r} in the file name is not a date",
                    file=str(path),
                )
            ],
        )
    utc = localize(pl.Series([naive], dtype=pl.Datetime("us")), tz).item()
    return match.group("cell"), utc, []


def _settle_cell(
    name_cell: str | None, header_cell: str | None, source: SourceText, findings: list[Finding]
) -> str | None:
    if header_cell and name_cell and header_cell != name_cell:
        findings.append(
            source.finding(
                "cell_mismatch",
                Severity.WARNING,
                f"the header names cell {header_cell!r} but the file name says {name_cell!r}; "
                f"read as {header_cell!r}",
                "Check which cell was calibrated and rename the file.",
            )
        )
    return header_cell or name_cell


def _column_names(
    first: list[str],
    has_header: bool,
    setting: str,
    source: SourceText,
    findings: list[Finding],
    line: int,
) -> list[str]:
    if not has_header:
        findings.append(
            source.finding(
                "no_header",
                Severity.INFO,
                "no header line; columns taken in the lab scripts' order "
                f"({setting}, BFM.P, MBE.P, BFM.P_STD, MBE.P_STD)",
            )
        )
        extra = [f"column_{i}" for i in range(len(POSITIONAL) + 2, len(first) + 1)]
        return [setting, *POSITIONAL, *extra][: max(len(first), 3)]
    roles = [COLUMN_ROLES.get(name.lower(), name) for name in first[1:]]
    names, _ = unique_names([setting, *roles])
    if names[1:3] != ["bep", "background"]:
        findings.append(
            source.finding(
                "unexpected_columns",
                Severity.WARNING,
                f"columns {first!r}: expected '<cell>, BFM.P, MBE.P' first; read by position",
                "Check the file; the second column is taken as the BFM reading, the third as "
                "background.",
                line=line,
            )
        )
        names = [setting, "bep", "background", *names[3:]]
    return names


def _drop_repeated_headers(
    rows: pl.DataFrame, first_name: str, header_cell: str | None
) -> tuple[pl.DataFrame, int]:
    first = pl.col(first_name).str.strip_chars()
    junk = first.str.starts_with("#")
    if header_cell:
        junk = junk | (first == header_cell)
    kept = rows.filter(~junk.fill_null(False))
    return kept, rows.height - kept.height


def _point_checks(points: pl.DataFrame, source: SourceText, cell: str | None) -> list[Finding]:
    findings = []
    if points.is_empty():
        return [_error(source, "no_rows", "no calibration point could be read")]
    if points.height == 1:
        findings.append(
            source.finding(
                "too_few_points",
                Severity.WARNING,
                "one calibration point: too few to fit how the flux changes with temperature",
                "Take a scan over several temperatures.",
                channel=cell,
            )
        )
    lines = points.get_column("line")
    for name, what in (("bep", "BFM reading"), ("background", "background")):
        bad = ~(points.get_column(name) > 0).fill_null(False)
        if bad.any():
            at = lines.filter(bad).to_list()
            findings.append(
                source.finding(
                    "bad_point",
                    Severity.WARNING,
                    f"{what} not a positive pressure on line(s) "
                    f"{', '.join(map(str, at[:20]))}; kept",
                    "A gauge below its range or off; such points cannot enter a log-scale fit.",
                    line=at[0],
                    channel=cell,
                    count=len(at),
                )
            )
    return findings


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def _empty(cell: str | None) -> pl.DataFrame:
    setting = VALVE if cell in VALVED_SOURCES else TEMPERATURE
    return pl.DataFrame(schema={setting: pl.Float64, "bep": pl.Float64, "background": pl.Float64})


def _error(source: SourceText, code: str, message: str) -> Finding:
    return source.finding(
        code, Severity.ERROR, message, "Take the calibration file again from the lab PC."
    )
