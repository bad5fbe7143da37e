"""EPIC (the MBE control software of e.g. PDI Berlin's MBE8): channel logs and whole day folders.

A day folder holds one log per channel (`<tag>.txt`, rows `DD/MM/YYYY HH:MM:SS.fff,value`, about
1 s apart), the shutter event log `Shutters.txt`, operator messages `Messages.txt` and the flux
fits `Fitting.txt`. EPIC writes the tool's local wall-clock time with no zone: `tz` says which
zone that is (PDI's tools: "Europe/Berlin"); everything returned is UTC.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import polars as pl

from epi_ml.channels import SENSOR_SCHEMA, empty_sensor_frame
from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.readers.delimited import (
    decimal_comma_used,
    row_problems,
    split_fields,
    to_float,
)
from epi_ml.readers.epic_events import MESSAGE_SCHEMA, read_epic_messages, read_epic_shutters
from epi_ml.readers.epic_fitting import EpicFitting, read_epic_fitting
from epi_ml.readers.epic_format import read_header, tag_from_filename
from epi_ml.readers.lines import combine, line_findings, mark_truncated, order_findings
from epi_ml.readers.naming import map_tags
from epi_ml.readers.source import SourceText, load_text
from epi_ml.readers.tagmaps import EPIC_TAGS
from epi_ml.readers.timestamps import (
    EPIC_TIME,
    check_timezone,
    localize,
    parse_epic_times,
    parse_times,
)

SAMPLE_SCHEMA = {"time": SENSOR_SCHEMA["time"], "value": SENSOR_SCHEMA["value"]}
EVENT_FILES = {"shutters.txt": "shutters", "messages.txt": "messages", "fitting.txt": "fitting"}


@dataclass
class EpicChannel:
    tag: str  # the EPIC tag (`Ga.PID.MV`)
    frame: pl.DataFrame  # time Datetime(us, UTC), value Float64, in file order
    findings: list[Finding] = field(default_factory=list)
    path: Path | None = None


@dataclass
class EpicDay:
    sensors: pl.DataFrame  # SENSOR_SCHEMA, every channel file, canonical names
    shutters: pl.DataFrame  # SENSOR_SCHEMA, one row per event per shutter (`Ga.shutter`, 0/1)
    messages: pl.DataFrame  # time, caller, message, color
    fittings: dict[str, EpicFitting]  # cell -> its flux fit
    findings: list[Finding] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # every file read
    tags: dict[str, str] = field(default_factory=dict)  # EPIC tag -> channel it was stored under

    @property
    def all_sensors(self) -> pl.DataFrame:
        """Channel samples and shutter events in one canonical table (what validation checks)."""
        return pl.concat([self.sensors, self.shutters])

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)


def read_epic_channel(
    path: str | Path, *, tz: str = "UTC", tag_map: Mapping[str, str] | None = None
) -> EpicChannel:
    """One EPIC channel log. Never raises for a bad file: unusable input gives an ERROR finding and
    an empty frame; bad lines are WARNINGs (listed by line number) and the good rows are kept.
    `tag_map` (default EPIC_TAGS) only settles a header that disagrees with the file name."""
    check_timezone(tz)
    path = Path(path)
    source = load_text(path)
    name_tag = tag_from_filename(path.name)
    if not source.usable:
        return EpicChannel(name_tag, pl.DataFrame(schema=SAMPLE_SCHEMA), source.findings, path)
    header = read_header(source, what="channel log")
    findings = [*source.findings, *header.findings]
    if has_errors(findings):
        return EpicChannel(name_tag, pl.DataFrame(schema=SAMPLE_SCHEMA), findings, path)
    known = EPIC_TAGS if tag_map is None else tag_map
    tag, naming = _choose_tag(source, name_tag, header.title, header.columns, known)
    findings += naming

    clean = _clean_rows(source, header.separator, header.first_row_line, tz)
    if clean is not None:  # the usual log: nothing to report about its rows
        return EpicChannel(tag, clean, findings, path)
    sep = header.separator
    fields = split_fields(
        source, first_line=header.first_row_line or 1, names=["time", "value"], separator=sep
    )
    rows = fields.rows
    file = str(path)
    times = parse_times(rows.get_column("time"), tz=tz, expected=EPIC_TIME, file=file, channel=tag)
    decimal_comma = decimal_comma_used(rows, ["value"], sep)
    values, bad_values = to_float(
        rows, "value", what="value", decimal_comma=decimal_comma, required=True
    )
    found = combine(
        fields.problems,
        row_problems(rows, times.reason, sep),
        bad_values,
    )
    found = mark_truncated(found, source.last_line, source.ends_with_newline)
    findings += times.findings + line_findings(found, file=file, channel=tag)

    kept = pl.DataFrame(
        {"line": rows.get_column("line"), "time": times.utc, "value": values}
    ).filter(pl.col("time").is_not_null() & pl.col("value").is_not_null())
    if kept.is_empty():
        why = (
            "no line of the file could be read"
            if found.height
            else "the file has a header but no rows"
        )
        findings.append(_no_rows(source, why, tag))
    findings += order_findings(kept, file=file, channel=tag)
    return EpicChannel(tag, kept.select(list(SAMPLE_SCHEMA)), findings, path)


def read_epic_day(
    folder: str | Path, *, tag_map: Mapping[str, str] | None = None, tz: str = "UTC"
) -> EpicDay:
    """Every log of one EPIC day folder. `tag_map`: EPIC tag -> canonical channel (default
    EPIC_TAGS); a tag it lacks is kept as `raw:<tag>` with an `unknown_tag` WARNING."""
    check_timezone(tz)
    folder = Path(folder)
    tag_map = EPIC_TAGS if tag_map is None else tag_map
    day = EpicDay(
        empty_sensor_frame(), empty_sensor_frame(), pl.DataFrame(schema=MESSAGE_SCHEMA), {}
    )
    if not folder.is_dir():
        day.findings.append(
            Finding(
                "not_a_folder",
                Severity.ERROR,
                "an EPIC day is a folder of log files; this path is not a folder",
                hint="Pass the folder that holds Shutters.txt and the <tag>.txt logs.",
                file=str(folder),
            )
        )
        return day
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    events = {EVENT_FILES[p.name.lower()]: p for p in files if p.name.lower() in EVENT_FILES}
    logs = [p for p in files if p.suffix.lower() == ".txt" and p.name.lower() not in EVENT_FILES]
    for skipped in (p for p in files if p.suffix.lower() != ".txt"):
        day.findings.append(
            Finding(
                "skipped_file",
                Severity.INFO,
                "not an EPIC log (not .txt); skipped",
                file=str(skipped),
            )
        )
    with ThreadPoolExecutor(
        max_workers=min(8, os.cpu_count() or 1)
    ) as pool:  # polars frees the GIL
        channels = list(pool.map(lambda p: read_epic_channel(p, tz=tz, tag_map=tag_map), logs))

    frames = []
    for channel in channels:
        if _foreign_text_file(channel, tag_map):
            day.findings.append(
                Finding(
                    "not_an_epic_log",
                    Severity.WARNING,
                    "a .txt file in the day folder that is not an EPIC log; skipped",
                    hint="Move notes and other files out of the tool's log folder.",
                    file=str(channel.path),
                )
            )
            continue
        names = map_tags(
            [channel.tag], tag_map, file=str(channel.path), map_name="the EPIC tag map"
        )
        name = names.channels[channel.tag]
        day.tags[channel.tag] = name
        day.findings += [_under_channel(f, channel.tag, name) for f in channel.findings]
        day.findings += names.findings
        day.files.append(channel.path)  # type: ignore[arg-type]
        frames.append(channel.frame.select("time", pl.lit(name).alias("channel"), "value"))
    day.findings += _shared_channels(channels, day.tags)
    if frames:
        day.sensors = pl.concat(frames).cast(SENSOR_SCHEMA)  # type: ignore[arg-type]

    if "shutters" in events:
        shutters = read_epic_shutters(events["shutters"], tz=tz)
        day.shutters, day.findings = shutters.frame, day.findings + shutters.findings
    if "messages" in events:
        messages = read_epic_messages(events["messages"], tz=tz)
        day.messages, day.findings = messages.frame, day.findings + messages.findings
    if "fitting" in events:
        day.fittings, fit_findings = read_epic_fitting(events["fitting"])
        day.findings += fit_findings
    day.files += list(events.values())
    for kind, name in (
        ("shutters", "Shutters.txt"),
        ("messages", "Messages.txt"),
        ("fitting", "Fitting.txt"),
    ):
        if kind not in events:
            day.findings.append(
                Finding(
                    "missing_file", Severity.INFO, f"the day has no {name}", file=str(folder / name)
                )
            )
    if not frames:
        day.findings.append(
            Finding(
                "no_channel_logs",
                Severity.ERROR,
                "the folder holds no EPIC channel log (<tag>.txt)",
                hint="Pass the folder the tool writes its daily logs to.",
                file=str(folder),
            )
        )
    return day


def _clean_rows(
    source: SourceText, separator: str, first_row_line: int | None, tz: str
) -> pl.DataFrame | None:
    """The common case in a few vectorised steps: every line after the header is a
    `DD/MM/YYYY HH:MM:SS.fff,number` row, the times strictly increasing, the numbers finite.
    None when anything is off: the careful path then finds what and where (same rows, same
    values; it only costs more)."""
    if separator != "," or first_row_line is None or not source.ends_with_newline:
        return None
    body = source.body_bytes(first_row_line)
    try:  # a line with a field too many raises, an empty or non-numeric value reads as null
        rows = pl.read_csv(
            body, has_header=False, new_columns=["time", "value"], quote_char=None,
            schema={"time": pl.String, "value": pl.Float64},
        )  # fmt: skip
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if rows.is_empty() or rows.get_column("value").null_count():
        return None
    naive = parse_epic_times(rows.get_column("time"))
    if naive is None or naive.null_count():
        return None
    utc = localize(naive, tz)
    values = rows.get_column("value")
    increasing = utc.null_count() == 0 and bool((utc.diff().drop_nulls() > timedelta(0)).all())
    if not increasing or not values.is_finite().all():
        return None
    return pl.DataFrame({"time": utc.cast(SENSOR_SCHEMA["time"]), "value": values})


def _choose_tag(
    source: SourceText,
    name_tag: str,
    title: str | None,
    columns: list[str] | None,
    known: Mapping[str, str],
) -> tuple[str, list[Finding]]:
    """The channel's tag from the file name, the title and the column line. EPIC names each log
    after its tag, so when the header disagrees the file name wins, unless only the header's tag
    is a known one (a renamed copy)."""
    column_tag = columns[0] if columns else None
    header_tag = column_tag or title
    notes = []
    if title and column_tag and title != column_tag:
        notes.append(
            source.finding(
                "tag_mismatch",
                Severity.WARNING,
                f"the title names tag {title!r} but the column line names {column_tag!r}",
                "Check which sensor this file holds.",
            )
        )
    if header_tag is None or header_tag == name_tag:
        return name_tag, notes
    tag = header_tag if header_tag in known and name_tag not in known else name_tag
    notes.append(
        source.finding(
            "tag_mismatch",
            Severity.WARNING,
            f"the header names tag {header_tag!r} but the file is named after {name_tag!r}; "
            f"read as {tag!r}",
            "EPIC names each log after its tag, so the header is probably a copy error of the "
            "logger setup; check which sensor the file holds and fix the name or the header.",
            channel=tag,
        )
    )
    return tag, notes


def _under_channel(finding: Finding, tag: str, channel: str) -> Finding:
    """A channel log's finding named after the canonical channel (as validation names them), the
    EPIC tag kept in its details."""
    if finding.channel != tag:
        return finding
    return replace(finding, channel=channel, details={**finding.details, "tag": tag})


def _foreign_text_file(channel: EpicChannel, tag_map: Mapping[str, str]) -> bool:
    """A .txt file without EPIC framing whose name is no known tag is not a channel log at all."""
    codes = {f.code for f in channel.findings}
    return "wrong_header" in codes and channel.tag not in tag_map


def _shared_channels(channels: list[EpicChannel], tags: dict[str, str]) -> list[Finding]:
    by_channel: dict[str, list[str]] = {}
    for channel in channels:
        if channel.tag in tags:
            by_channel.setdefault(tags[channel.tag], []).append(str(channel.path))
    return [
        Finding(
            "channel_in_several_files",
            Severity.WARNING,
            f"{len(paths)} files hold channel {name}: "
            f"{', '.join(Path(p).name for p in paths)}; all kept",
            hint="Copies of one log, or two tags mapped to one channel; remove the copy or fix "
            "the tag map.",
            channel=name,
            details={"files": paths},
        )
        for name, paths in by_channel.items()
        if len(paths) > 1
    ]


def _no_rows(source: SourceText, message: str, tag: str) -> Finding:
    return source.finding(
        "no_rows",
        Severity.ERROR,
        message,
        "Nothing usable is in the file; take the log again from the tool.",
        channel=tag,
    )
