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

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from epi_ml.channels import unit_of
from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.ingest.archive import Archive
from epi_ml.ingest.content import ParsedFile, parse_file, skip_reason
from epi_ml.ingest.tools import ToolConfig, tool_from_path
from epi_ml.settings import Settings
from epi_ml.store import Lake, write_session
from epi_ml.store.lake import atomic_write
from epi_ml.store.models import Channel, FileSighting, IngestEvent
from epi_ml.store.repo import ensure_tool, insert_ignore

FILES_DATASET = "files"
# Kinds that need the tool (sensor data, events, calibrations); measurements name their runs.
TOOL_FREE_KINDS = frozenset({"measurements"})


@dataclass
class IngestContext:
    """Where ingest writes and how it reads: the home's archive, lake and store, the tools'
    settings, and a tool given by the caller (`--tool`) for files whose place does not say."""

    settings: Settings
    engine: Engine
    configs: dict[str, ToolConfig] = field(default_factory=dict)
    tool: str | None = None
    landing_root: Path | None = None

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


def status_of(findings: list[Finding]) -> str:
    if has_errors(findings):
        return "quarantined"
    if any(f.severity is Severity.WARNING for f in findings):
        return "accepted_with_warnings"
    return "accepted"


def ingest_file(path: Path, context: IngestContext) -> FileOutcome:
    path = Path(path).absolute()
    if reason := skip_reason(path):
        note = Finding("skipped_file", Severity.INFO, f"skipped: {reason}", file=str(path))
        return FileOutcome(str(path), "skipped", findings=[note])
    try:
        stat = path.stat()
    except OSError as exc:
        return _unreadable(path, exc)
    previous = _last_sighting(context.engine, str(path))
    if previous and (previous[0].size_bytes, previous[0].mtime_ns) == (stat.st_size, stat.st_mtime_ns):
        return _seen(path, previous[1])
    try:
        archived = context.archive.copy_in(path, prefix_bytes=previous[0].size_bytes if previous else None)
    except OSError as exc:
        return _unreadable(path, exc)
    extends = bool(previous and archived.prefix_sha256 == previous[1].sha256)
    sighting = dict(
        path=str(path), size_bytes=archived.size_bytes, mtime_ns=stat.st_mtime_ns,
        extends_previous=extends,
    )  # fmt: skip
    known = _event_by_sha(context.engine, archived.sha256)
    if known is not None:
        _add_sighting(context.engine, known.id, sighting)
        return _seen(path, known)

    tool = context.tool_for(path)
    parsed = parse_file(archived.path, config=context.config_for(tool), original_name=path.name)
    parsed.findings = [_at_landing_path(f, archived.path, path) for f in parsed.findings]
    if tool is None and parsed.kind not in TOOL_FREE_KINDS and parsed.usable:
        parsed.findings.append(_no_tool(path))
    status = status_of(parsed.findings)
    lake_path = None
    if status != "quarantined" and parsed.table is not None:
        lake_path = context.lake.write_dataset(FILES_DATASET, archived.sha256, parsed.table)
    start, end = parsed.time_span if status != "quarantined" else (None, None)
    event = IngestEvent(
        sha256=archived.sha256,
        original_path=str(path),
        archive_path=str(archived.path),
        size_bytes=archived.size_bytes,
        format=parsed.format,
        kind=parsed.kind if status != "quarantined" else "",
        status=status,
        findings=[f.to_dict() for f in parsed.findings],
        tool_id=tool if parsed.kind not in TOOL_FREE_KINDS else None,
        run_id=parsed.run_ref,
        time_start=start,
        time_end=end,
        rows=parsed.table.height if parsed.table is not None and status != "quarantined" else 0,
        channels=parsed.channels if status != "quarantined" else [],
        lake_path=str(lake_path) if lake_path else None,
    )
    if status == "quarantined":
        write_quarantine_record(context.settings, "files", archived.sha256, _file_reason(event, parsed))
    try:
        with write_session(context.engine) as session:
            if event.tool_id:
                ensure_tool(session, event.tool_id, vendor=context.config_for(tool).vendor,
                            timezone=context.config_for(tool).timezone)  # fmt: skip
            session.add(event)
            session.flush()
            session.add(FileSighting(event_id=event.id, **sighting))
            _register_channels(session, event.tool_id, parsed)
    except IntegrityError:  # another process ingested the same bytes at the same moment
        known = _event_by_sha(context.engine, archived.sha256)
        if known is None:
            raise
        _add_sighting(context.engine, known.id, sighting)
        return _seen(path, known)
    return FileOutcome(
        str(path),
        status,
        kind=event.kind,
        format=parsed.format,
        sha256=archived.sha256,
        tool=event.tool_id,
        run_ref=parsed.run_ref,
        findings=parsed.findings,
        rows=event.rows,
        size_bytes=archived.size_bytes,
        event_id=event.id,
    )


def write_quarantine_record(settings: Settings, what: str, name: str, reason: dict[str, Any]) -> Path:
    """`quarantine/<what>/<name>.json` (machine-readable) and `.txt` (for people), atomically."""
    folder = settings.quarantine_dir / what
    text = reason_text(reason)
    atomic_write(folder / f"{name}.txt", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    body = json.dumps(reason, indent=2, default=str)
    return atomic_write(folder / f"{name}.json", lambda tmp: tmp.write_text(body, encoding="utf-8"))


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
def _last_sighting(engine: Engine, path: str) -> tuple[FileSighting, IngestEvent] | None:
    with Session(engine) as session:
        row = session.execute(
            select(FileSighting, IngestEvent)
            .join(IngestEvent, FileSighting.event_id == IngestEvent.id)
            .where(FileSighting.path == path)
            .order_by(FileSighting.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        session.expunge_all()
        return row[0], row[1]


def _event_by_sha(engine: Engine, sha256: str) -> IngestEvent | None:
    with Session(engine, expire_on_commit=False) as session:
        event = session.scalars(select(IngestEvent).where(IngestEvent.sha256 == sha256)).first()
        if event is not None:
            session.expunge(event)
        return event


def _add_sighting(engine: Engine, event_id: int, sighting: dict[str, Any]) -> None:
    with write_session(engine) as session:
        session.add(FileSighting(event_id=event_id, **sighting))


def _seen(path: Path, event: IngestEvent) -> FileOutcome:
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


def _register_channels(session: Session, tool_id: str | None, parsed: ParsedFile) -> None:
    if tool_id is None:
        return
    tag = parsed.details.get("tag")
    for channel in parsed.channels:
        insert_ignore(
            session,
            Channel,
            {
                "tool_id": tool_id,
                "name": channel,
                "vendor_tag": tag if len(parsed.channels) == 1 else None,
                "unit": unit_of(channel),
                "source": channel.split(".", 1)[0],
            },
        )


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


def _file_reason(event: IngestEvent, parsed: ParsedFile) -> dict[str, Any]:
    return {
        "what": "file",
        "subject": Path(event.original_path).name,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "where": {
            "landed at": event.original_path,
            "raw bytes kept at": event.archive_path,
            "sha256": event.sha256,
            "format": parsed.format,
            "tool": event.tool_id,
        },
        "findings": event.findings,
        "what_to_do": "Fix the file at the tool or export it again, then drop the new file into "
        "landing/ (the archived bytes stay as they are).",
    }
