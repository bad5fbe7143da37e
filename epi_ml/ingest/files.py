"""Ingest of one file: archive the bytes, read them, keep what they hold, record the outcome.

    outcome = ingest_file(path, context)

Steps, each safe to crash in: (1) the bytes are copied into the archive while being hashed (a log
still being appended to is archived as read); (2) a file seen before with the same size and
modification time, or bytes seen before under any name, are a no-op; (3) the archived copy is read
(epi_ml.ingest.content) and its table written to the lake atomically (`lake/files/<sha>.parquet`);
(4) one transaction records the ingest event, where it was seen, the tool and its channels. A file
with an ERROR is quarantined: the reason goes to `quarantine/files/` (JSON + text) and the event;
its bytes stay in the archive. Nothing here raises for bad content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from epi_ml.channels import unit_of
from epi_ml.findings import Finding, Severity, status_of
from epi_ml.ingest.archive import Archive
from epi_ml.ingest.content import parse_file, skip_reason
from epi_ml.ingest.tools import ToolConfig, tool_from_path
from epi_ml.settings import Settings
from epi_ml.store import Lake, write_session
from epi_ml.store.lake import atomic_write, make_durable
from epi_ml.store.models import Channel, FileSighting, IngestEvent
from epi_ml.store.repo import ensure_tool, insert_ignore

FILES_DATASET = "files"
# Kinds that need the tool (sensor data, events, calibrations); measurements name their runs.
TOOL_FREE_KINDS = frozenset({"measurements"})
SQL_IN_CHUNK = 500  # paths per IN (...) query
EVENTS = IngestEvent.__table__


@dataclass
class IngestContext:
    """Where ingest writes and how it reads: the home's archive, lake and store, the tools'
    settings, and a tool given by the caller (`--tool`) for files whose place does not say."""

    settings: Settings
    engine: Engine
    configs: dict[str, ToolConfig] = field(default_factory=dict)
    tool: str | None = None
    landing_root: Path | None = None
    # Tools and (tool, channel) pairs this process has already made sure exist in the store.
    known: set[tuple[str, str]] = field(default_factory=set)

    @property
    def archive(self) -> Archive:
        return Archive(self.settings.archive_dir)

    @property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_dir)

    def config_for(self, tool: str | None) -> ToolConfig:
        return self.configs.get(tool or "", ToolConfig())

    def tool_for(self, path: Path) -> str | None:
        return self.tool or tool_from_path(path, self.landing_root)


@dataclass
class FileOutcome:
    """What became of one file. `status`: accepted | accepted_with_warnings | quarantined |
    skipped (not tool data); `seen_before`: the same file or bytes were ingested earlier (no-op)."""

    path: str
    status: str
    kind: str = ""
    format: str = ""
    sha256: str | None = None
    tool: str | None = None
    run_ref: str | None = None
    findings: list[Finding] = field(default_factory=list)
    seen_before: bool = False
    rows: int = 0
    size_bytes: int = 0
    event_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "kind": self.kind,
            "format": self.format,
            "sha256": self.sha256,
            "tool": self.tool,
            "run_ref": self.run_ref,
            "seen_before": self.seen_before,
            "rows": self.rows,
            "size_bytes": self.size_bytes,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class PreparedFile:
    """A file archived, read and written to the lake, not yet recorded in the store (see
    `record_files`). `done`: the outcome when there is nothing to record (skipped, unchanged,
    unreadable)."""

    path: Path
    done: FileOutcome | None = None
    event: IngestEvent | None = None
    sighting: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    tag: str | None = None
    written: list[Path] = field(default_factory=list)  # to make durable before recording
    known_event: Row[Any] | None = None  # the same bytes were ingested before


Sighting = tuple[FileSighting, IngestEvent]


def ingest_file(path: Path, context: IngestContext) -> FileOutcome:
    """One file, start to end (batches use prepare_file + record_files, to commit in groups)."""
    path = Path(path).absolute()
    prepared = prepare_file(path, context, last_sightings(context.engine, [str(path)]).get(str(path)))
    return record_files(context, [prepared])[0]


def prepare_file(path: Path, context: IngestContext, previous: Sighting | None) -> PreparedFile:
    """Archive and read `path` and write what it holds to the lake (nothing durable yet, nothing
    in the store). `previous`: the last sighting at this path, if any."""
    path = Path(path).absolute()
    if reason := skip_reason(path):
        note = Finding("skipped_file", Severity.INFO, f"skipped: {reason}", file=str(path))
        return PreparedFile(path, done=FileOutcome(str(path), "skipped", findings=[note]))
    try:
        stat = path.stat()
    except OSError as exc:
        return PreparedFile(path, done=_unreadable(path, exc))
    if previous and (previous[0].size_bytes, previous[0].mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        return PreparedFile(path, done=_seen(path, previous[1]))
    try:
        archived = context.archive.copy_in(
            path, prefix_bytes=previous[0].size_bytes if previous else None, sync=False
        )
    except OSError as exc:
        return PreparedFile(path, done=_unreadable(path, exc))
    sighting = dict(
        path=str(path), size_bytes=archived.size_bytes, mtime_ns=stat.st_mtime_ns,
        extends_previous=bool(previous and archived.prefix_sha256 == previous[1].sha256),
    )  # fmt: skip
    prepared = PreparedFile(path, sighting=sighting, written=[archived.path])
    known = _event_by_sha(context.engine, archived.sha256)
    if known is not None:
        prepared.known_event = known
        return prepared

    tool = context.tool_for(path)
    parsed = parse_file(archived.path, config=context.config_for(tool), original_name=path.name)
    parsed.findings = [_at_landing_path(f, archived.path, path) for f in parsed.findings]
    if tool is None and parsed.kind not in TOOL_FREE_KINDS and parsed.usable:
        parsed.findings.append(_no_tool(path))
    status = status_of(parsed.findings)
    accepted = status != "quarantined"
    lake_path = None
    if accepted and parsed.table is not None:
        lake_path = context.lake.write_dataset(FILES_DATASET, archived.sha256, parsed.table, sync=False)
        prepared.written.append(lake_path)
    start, end = parsed.time_span if accepted else (None, None)
    prepared.event = IngestEvent(
        sha256=archived.sha256,
        original_path=str(path),
        archive_path=str(archived.path),
        size_bytes=archived.size_bytes,
        format=parsed.format,
        kind=parsed.kind if accepted else "",
        status=status,
        findings=[f.to_dict() for f in parsed.findings],
        tool_id=tool if parsed.kind not in TOOL_FREE_KINDS else None,
        run_id=parsed.run_ref,
        time_start=start,
        time_end=end,
        rows=parsed.table.height if parsed.table is not None and accepted else 0,
        channels=parsed.channels if accepted else [],
        lake_path=str(lake_path) if lake_path else None,
    )
    prepared.findings, prepared.tag = parsed.findings, parsed.details.get("tag")
    if not accepted:
        prepared.written += write_quarantine_record(
            context.settings, "files", archived.sha256, _file_reason(prepared.event, parsed.format),
            sync=False,
        )  # fmt: skip
    return prepared


def record_files(context: IngestContext, batch: list[PreparedFile]) -> list[FileOutcome]:
    """Make the batch's files durable with one flush, then record them in one transaction (a
    group commit): a crash before the commit leaves files nobody points to, which the next
    ingest finds again; after it, everything is on disk. Bytes seen twice in the batch, or by
    another process meanwhile, become sightings of the one event."""
    make_durable([p for prepared in batch for p in prepared.written])
    try:
        return _record(context, batch)
    except IntegrityError:  # another process recorded some of the same bytes meanwhile
        return [outcome for prepared in batch for outcome in _record(context, [prepared])]


def _record(context: IngestContext, batch: list[PreparedFile]) -> list[FileOutcome]:
    outcomes: list[FileOutcome | None] = [p.done for p in batch]
    pending = [(i, p) for i, p in enumerate(batch) if p.done is None]
    if not pending:
        return outcomes  # type: ignore[return-value]
    new_known: set[tuple[str, str]] = set()
    shas = [p.event.sha256 for _, p in pending if p.event is not None]
    with write_session(context.engine) as session:
        # Recorded meanwhile (another process, or earlier in this batch): one query for all.
        recorded: dict[str, Any] = {
            e.sha256: e for e in session.scalars(select(IngestEvent).where(IngestEvent.sha256.in_(shas)))
        }
        for i, prepared in pending:
            event = prepared.event
            known = prepared.known_event or (recorded.get(event.sha256) if event else None)
            if known is not None:  # the same bytes: a sighting, no new event
                session.add(FileSighting(event_id=known.id, **prepared.sighting))
                outcomes[i] = _seen(prepared.path, known)
                continue
            assert event is not None
            config = context.config_for(event.tool_id)
            if event.tool_id and (event.tool_id, "") not in context.known | new_known:
                ensure_tool(session, event.tool_id, vendor=config.vendor, timezone=config.timezone)
                new_known.add((event.tool_id, ""))
            session.add(event)
            session.flush()
            session.add(FileSighting(event_id=event.id, **prepared.sighting))
            new_known |= _register_channels(session, event, prepared.tag, context.known | new_known)
            recorded[event.sha256] = event
            outcomes[i] = FileOutcome(
                str(prepared.path), event.status, kind=event.kind, format=event.format,
                sha256=event.sha256, tool=event.tool_id, run_ref=event.run_id,
                findings=prepared.findings, rows=event.rows, size_bytes=event.size_bytes,
                event_id=event.id,
            )  # fmt: skip
    context.known |= new_known  # remembered once committed
    return outcomes  # type: ignore[return-value]


def write_quarantine_record(
    settings: Settings, what: str, name: str, reason: dict[str, Any], *, sync: bool = True
) -> list[Path]:
    """`quarantine/<what>/<name>.json` (machine-readable) and `.txt` (for people), atomically."""
    folder = settings.quarantine_dir / what
    text = reason_text(reason)
    body = json.dumps(reason, indent=2, default=str)
    return [
        atomic_write(folder / f"{name}.txt", lambda tmp: tmp.write_text(text, encoding="utf-8"), sync=sync),
        atomic_write(folder / f"{name}.json", lambda tmp: tmp.write_text(body, encoding="utf-8"), sync=sync),
    ]


def reason_text(reason: dict[str, Any]) -> str:
    lines = [f"QUARANTINED {reason['what']}: {reason['subject']}", f"when: {reason['quarantined_at']}"]
    lines += [f"{key}: {value}" for key, value in reason.get("where", {}).items()]
    lines.append("why:")
    for finding in reason["findings"]:
        if finding["severity"] != "info":
            lines.append("  " + str(Finding.from_dict(finding)))
    lines.append(f"what to do: {reason['what_to_do']}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
def last_sightings(engine: Engine, paths: list[str]) -> dict[str, Sighting]:
    """The latest sighting (and its event) at each of `paths` that was seen before."""
    found: dict[str, Sighting] = {}
    with Session(engine, expire_on_commit=False) as session:
        for start in range(0, len(paths), SQL_IN_CHUNK):
            chunk = paths[start : start + SQL_IN_CHUNK]
            latest = (
                select(func.max(FileSighting.id))
                .where(FileSighting.path.in_(chunk))
                .group_by(FileSighting.path)
            )
            rows = session.execute(
                select(FileSighting, IngestEvent)
                .join(IngestEvent, FileSighting.event_id == IngestEvent.id)
                .where(FileSighting.id.in_(latest))
            ).all()
            found.update({sighting.path: (sighting, event) for sighting, event in rows})
        session.expunge_all()
    return found


def _event_by_sha(engine: Engine, sha256: str) -> Row[Any] | None:
    """The event of these bytes, if they were ingested before (a plain row: cheap, read-only)."""
    with engine.connect() as conn:
        return conn.execute(select(EVENTS).where(EVENTS.c.sha256 == sha256)).first()


def _seen(path: Path, event: IngestEvent | Row[Any]) -> FileOutcome:
    return FileOutcome(
        str(path),
        event.status,
        kind=event.kind,
        format=event.format,
        sha256=event.sha256,
        tool=event.tool_id,
        run_ref=event.run_id,
        findings=[Finding.from_dict(f) for f in event.findings],
        seen_before=True,
        rows=event.rows,
        size_bytes=event.size_bytes,
        event_id=event.id,
    )


def _register_channels(
    session: Session, event: IngestEvent, tag: str | None, known: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    if event.tool_id is None:
        return set()
    new = {(event.tool_id, c) for c in event.channels} - known
    for _, channel in sorted(new):
        insert_ignore(
            session,
            Channel,
            {
                "tool_id": event.tool_id,
                "name": channel,
                "vendor_tag": tag if len(event.channels) == 1 else None,
                "unit": unit_of(channel),
                "source": channel.split(".", 1)[0],
            },
        )
    return new


def _at_landing_path(finding: Finding, archived: Path, landed: Path) -> Finding:
    """Readers name the archived copy; people know the file by where it landed."""
    if finding.file == str(archived):
        return replace(finding, file=str(landed))
    return finding


def _no_tool(path: Path) -> Finding:
    return Finding(
        "unknown_tool",
        Severity.ERROR,
        "cannot tell which tool wrote this file (its folders and name do not say)",
        hint="Put the tool's files under landing/<tool>/ or pass --tool to epi-ml ingest.",
        file=str(path),
    )


def _unreadable(path: Path, exc: OSError) -> FileOutcome:
    finding = Finding(
        "unreadable_file",
        Severity.ERROR,
        f"cannot read the file: {exc.strerror or exc}",
        hint="Check that the path exists and is readable; nothing was ingested from it.",
        file=str(path),
    )
    return FileOutcome(str(path), "quarantined", findings=[finding])


def _file_reason(event: IngestEvent, fmt: str) -> dict[str, Any]:
    return {
        "what": "file",
        "subject": Path(event.original_path).name,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "where": {
            "landed at": event.original_path,
            "raw bytes kept at": event.archive_path,
            "sha256": event.sha256,
            "format": fmt,
            "tool": event.tool_id,
        },
        "findings": event.findings,
        "what_to_do": "Fix the file at the tool or export it again, then drop the new file into "
        "landing/ (the archived bytes stay as they are).",
    }
