"""The calibration history of every tool and cell, and the calibration in force at a moment.

Two sources, both as ingest stored them (`ingest_events`, kind "calibration" / "fitting", not
quarantined, their tables in the lake) or straight from files (`calibrations_from_files`, what
`epi-ml calibrate` reads):

- calibration scans (`YYYY-MM-DD_HH-MM-SS_<cell>.txt`): one Arrhenius fit each (`fit_scan`),
  dated by the file name (in the tool's time zone, as the reader took it);
- EPIC `Fitting.txt`: the coefficients and BEPtoFlux factors the tool works with. The file holds
  no date. **Its time is the start of the day of the EPIC day folder it sits in**
  (`.../<YYYY_MM_DD>/Fitting.txt`, or a date in the folder's name such as
  `epic-mbe8-2023-06-12`), midnight in the tool's time zone (`tools.yaml`, default UTC), so a
  day's file is in force for the whole day. EPIC rewrites it in every day folder, mostly
  unchanged: a history row is made only when a cell's coefficients or BEPtoFlux change (the same
  bytes in several day folders are one ingest event with one sighting per folder; every sighting
  counts, so a change back to an earlier file is a change too). Versions of the same day folder:
  the last one seen stands for the day. A Fitting.txt with no date anywhere is undated.

The calibration in force at a time `at` (`latest_calibrations`) is, per cell, the latest scan at
or before `at`, with its BEP-to-rate factor from the Fitting.txt in force then (the factor is per
BEP, so it carries over new scans); a cell without any scan falls back to its Fitting.txt fit
(the real EPIC day has no scans).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select

from epi_ml.calibration.cells import (
    FITTING,
    SCAN,
    CellCalibration,
    drift_alerts,
    fit_scan,
    fitting_calibrations,
)
from epi_ml.findings import Finding, Severity
from epi_ml.ingest.tools import TOOL_NAME
from epi_ml.readers.calibration import CalibrationTable, read_calibration_table
from epi_ml.readers.detect import UnknownFormat, detect_format
from epi_ml.readers.epic_fitting import EpicFitting, read_epic_fitting

HISTORY_SCHEMA: dict[str, Any] = {
    "tool": pl.String,
    "cell": pl.String,
    "taken_at": pl.Datetime("us", "UTC"),
    "source": pl.String,  # scan | fitting
    "activation_ev": pl.Float64,
    "ln_prefactor": pl.Float64,
    "r2": pl.Float64,
    "rmse_ln": pl.Float64,
    "n_points": pl.Int64,
    "t_min_c": pl.Float64,
    "t_max_c": pl.Float64,
    "bep_to_rate": pl.Float64,
    "file": pl.String,
    "sha256": pl.String,
}
DATE_IN_FOLDER = re.compile(r"(?<!\d)(\d{4})[_-](\d{2})[_-](\d{2})(?!\d)")
CALIBRATION_FORMATS = {"calibration": SCAN, "epic_fitting": FITTING}
TOOL_FOLDERS = ("calibrations", "logs")  # <tool>/calibrations/<scan>, <tool>/logs/<day>/Fitting


# ---------------------------------------------------------------------------------------------
# The history table
def history_frame(calibrations: Iterable[CellCalibration]) -> pl.DataFrame:
    """Calibrations as one table (HISTORY_SCHEMA), sorted by tool, cell, taken_at (undated
    last), source; rows of equal keys keep their given order."""
    rows = [{name: getattr(c, name) for name in HISTORY_SCHEMA} for c in calibrations]
    if not rows:
        return pl.DataFrame(schema=HISTORY_SCHEMA)
    frame = pl.DataFrame(rows, schema=HISTORY_SCHEMA)
    frame = frame.with_columns(pl.col("r2", "rmse_ln").fill_nan(None))  # nan: not a scan fit
    return frame.sort(["tool", "cell", "taken_at", "source"], nulls_last=True, maintain_order=True)


def dedupe_fittings(calibrations: Iterable[CellCalibration]) -> list[CellCalibration]:
    """Fitting.txt calibrations reduced to their changes: per tool and cell, in time order, the
    last version of each instant, kept only when its coefficients or BEPtoFlux differ from the
    one before. Scan calibrations pass unchanged; input order breaks ties in time."""
    items = list(calibrations)
    scans = [c for c in items if c.source != FITTING]
    chains: dict[tuple[str | None, str], list[CellCalibration]] = {}
    for c in items:
        if c.source == FITTING:
            chains.setdefault((c.tool, c.cell), []).append(c)
    kept: list[CellCalibration] = []
    for chain in chains.values():
        latest: dict[datetime | None, CellCalibration] = {}
        for c in chain:
            latest[c.taken_at] = c  # a later version of the same day replaces the earlier one
        ordered = sorted(
            latest.values(), key=lambda c: (c.taken_at is None, c.taken_at or datetime.min)
        )
        previous: tuple[Any, ...] | None = None
        for c in ordered:
            key = (c.epic_coefficients, c.bep_to_rate)
            if key != previous:
                kept.append(c)
            previous = key
    return scans + kept


def latest_calibrations(
    history: pl.DataFrame, tool: str | None, at: datetime | None = None
) -> dict[str, CellCalibration]:
    """The calibration of each cell of `tool` in force at `at` (UTC; None: the latest): the
    latest scan at or before `at` with bep_to_rate from the Fitting.txt in force then, or the
    Fitting.txt fit itself when the cell has no scan. Undated rows count only when `at` is None
    and the cell has no dated row of that source."""
    rows = history.filter(
        pl.col("tool").is_null() if tool is None else pl.col("tool") == tool
    )
    if at is not None:
        rows = rows.filter(pl.col("taken_at") <= at)
    in_force: dict[str, CellCalibration] = {}
    for cell in rows.get_column("cell").unique(maintain_order=True).to_list():
        of_cell = rows.filter(pl.col("cell") == cell)
        scan = _last(of_cell.filter(pl.col("source") == SCAN))
        fitting = _last(of_cell.filter(pl.col("source") == FITTING))
        if scan is not None:
            factor = fitting.bep_to_rate if fitting is not None else scan.bep_to_rate
            in_force[cell] = scan.with_rate(factor)
        elif fitting is not None:
            in_force[cell] = fitting
    return in_force


def _last(rows: pl.DataFrame) -> CellCalibration | None:
    """The last row by time (history frames sort undated rows last: prefer a dated one)."""
    if rows.is_empty():
        return None
    dated = rows.filter(pl.col("taken_at").is_not_null())
    chosen = dated if not dated.is_empty() else rows
    return CellCalibration.from_row(chosen.row(chosen.height - 1, named=True))


# ---------------------------------------------------------------------------------------------
# Fitting.txt dates
def fitting_valid_from(path: str | Path, tz: str = "UTC") -> datetime | None:
    """When a Fitting.txt came into force: the start (00:00 in `tz`) of the day its folder is
    named after (`2026_01_05`, `epic-mbe8-2023-06-12`), as UTC; None when no folder says."""
    match = DATE_IN_FOLDER.search(Path(path).parent.name)
    if not match:
        return None
    try:
        day = datetime(int(match[1]), int(match[2]), int(match[3])).date()
    except ValueError:
        return None
    return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# From files (epi-ml calibrate)
@dataclass
class FileCalibrations:
    """What one file gave: its calibrations and findings; `usable` False when nothing could be
    used from it (the reason is in the findings)."""

    path: str
    kind: str  # scan | fitting | "" (not a calibration file)
    calibrations: list[CellCalibration] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    skipped: bool = False  # nothing to fit and nothing wrong: a valved As/Sb scan

    @property
    def usable(self) -> bool:
        return bool(self.calibrations)

    @property
    def reasons(self) -> list[str]:
        return [str(f) for f in self.findings if f.severity is not Severity.INFO]


def calibrations_from_files(
    paths: Iterable[str | Path],
    *,
    tool: str | None = None,
    tz: str | None = None,
    timezones: Mapping[str, str] | None = None,
) -> list[FileCalibrations]:
    """Calibration scans and Fitting.txt files read and fitted, one result per file (folders are
    walked for those two kinds; other files in them are left out quietly, a named file of
    another kind is reported). The tool is `tool`, else what the path says (`<tool>/calibrations`,
    `<tool>/logs/<day>`); times are in `tz`, else the tool's zone in `timezones`, else UTC."""
    results = []
    for named in paths:
        named = Path(named)
        if named.is_dir():
            files = sorted(p for p in named.rglob("*") if p.is_file())
            quiet = True
        else:
            files, quiet = [named], False
        for path in files:
            owner = tool or tool_in_path(path)
            zone = tz or (timezones or {}).get(owner or "", "UTC")
            result = calibration_file(path, tool=owner, tz=zone)
            if result.kind or not quiet:
                results.append(result)
    return results


def tool_in_path(path: str | Path) -> str | None:
    """The tool a file named on the command line belongs to: the folder above `calibrations/`
    or `logs/` (`MBE1/calibrations/...`, `MBE1/logs/2026_01_05/Fitting.txt`). Narrower than
    ingest's rule (which knows the landing root): a folder like `data/` above a file says
    nothing about the tool outside the landing area."""
    parts = Path(path).absolute().parent.parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in TOOL_FOLDERS:
            return parts[i - 1] if TOOL_NAME.match(parts[i - 1]) else None
    return None


def calibration_file(path: Path, *, tool: str | None, tz: str = "UTC") -> FileCalibrations:
    """One scan or Fitting.txt (never raises for bad content)."""
    try:
        fmt = detect_format(path)
    except UnknownFormat as exc:
        fmt, why = "", str(exc)
    else:
        why = f"{path.name}: a {fmt} file, not a calibration scan or Fitting.txt"
    kind = CALIBRATION_FORMATS.get(fmt, "")
    if not kind:
        return FileCalibrations(str(path), "", [], [Finding("not_calibration", Severity.ERROR, why,
                                                            file=str(path))])  # fmt: skip
    if kind == SCAN:
        table = read_calibration_table(path, tz=tz)
        result = fit_scan(table, tool=tool)
        findings = [f for f in table.findings if f.severity is not Severity.INFO]
        calibrations = [result.calibration] if result.calibration else []
        return FileCalibrations(
            str(path), kind, calibrations, findings + list(result.findings), result.skipped
        )
    fittings, findings = read_epic_fitting(path)
    calibrations, notes = fitting_calibrations(
        fittings, tool=tool, valid_from=fitting_valid_from(path, tz), file=str(path)
    )
    return FileCalibrations(str(path), kind, calibrations, findings + notes)


def history_from_files(
    paths: Iterable[str | Path], *, tool: str | None = None, tz: str | None = None
) -> tuple[pl.DataFrame, list[FileCalibrations]]:
    """`calibration_history` of files instead of the store (Fitting.txt files deduplicated the
    same way), with the per-file results."""
    results = calibrations_from_files(paths, tool=tool, tz=tz)
    calibrations = dedupe_fittings(c for r in results for c in r.calibrations)
    return history_frame(calibrations), results


# ---------------------------------------------------------------------------------------------
# From the store
def collect_calibrations(ctx: Any) -> tuple[list[CellCalibration], list[Finding]]:
    """Every calibration the store holds (ingested scans fitted, Fitting.txt sections per day
    folder they were seen in, not yet deduplicated), and what could not be used. `ctx`: an
    ingest context (`epi_ml.ingest.batch.open_context()`)."""
    from epi_ml.store import read_session
    from epi_ml.store.models import FileSighting, IngestEvent

    with read_session(ctx.engine) as session:
        events = session.scalars(
            select(IngestEvent)
            .where(IngestEvent.kind.in_(("calibration", "fitting")))
            .where(IngestEvent.status != "quarantined")
            .order_by(IngestEvent.id)
        ).all()
        fitting_ids = [e.id for e in events if e.kind == "fitting"]
        sightings = (
            session.execute(
                select(FileSighting.event_id, FileSighting.path)
                .where(FileSighting.event_id.in_(fitting_ids))
                .order_by(FileSighting.id)
            ).all()
            if fitting_ids
            else []
        )
        session.expunge_all()
    seen_at: dict[int, list[str]] = {}
    for event_id, path in sightings:
        seen_at.setdefault(event_id, []).append(path)
    # sightings in the order they were seen, so that later versions of a day come later
    order = {event_id: i for i, (event_id, _) in enumerate(sightings)}
    calibrations: list[CellCalibration] = []
    findings: list[Finding] = []
    for event in events:
        table = _lake_table(event, findings)
        if table is None:
            continue
        if event.kind == "calibration":
            fitted = fit_scan(_scan_table(table, event), tool=event.tool_id, sha256=event.sha256)
            findings += fitted.findings
            if fitted.calibration is not None:
                calibrations.append(fitted.calibration)
    fitting_events = sorted(
        (e for e in events if e.kind == "fitting"), key=lambda e: order.get(e.id, -1)
    )
    for event in fitting_events:
        table = _lake_table(event, [])
        if table is None:
            continue
        fittings = {
            row["cell"]: EpicFitting(
                row["cell"], row["fit"], int(row["order"]), row["bep_to_flux"],
                tuple(float(c) for c in row["coeffs"]),
            )  # fmt: skip
            for row in table.iter_rows(named=True)
        }
        zone = ctx.config_for(event.tool_id).timezone
        for path in dict.fromkeys(seen_at.get(event.id) or [event.original_path]):
            found, notes = fitting_calibrations(
                fittings,
                tool=event.tool_id,
                valid_from=fitting_valid_from(path, zone),
                file=path,
                sha256=event.sha256,
            )
            calibrations += found
            findings += notes
    return calibrations, findings


def calibration_history(ctx: Any) -> pl.DataFrame:
    """One row per tool, cell, taken_at and source (HISTORY_SCHEMA), sorted: every ingested scan
    that could be fitted, and every change of a cell's Fitting.txt coefficients or BEPtoFlux."""
    calibrations, _ = collect_calibrations(ctx)
    return history_frame(dedupe_fittings(calibrations))


def _lake_table(event: Any, findings: list[Finding]) -> pl.DataFrame | None:
    try:
        return pl.read_parquet(event.lake_path) if event.lake_path else None
    except OSError as exc:
        findings.append(
            Finding(
                "missing_lake_table",
                Severity.WARNING,
                f"the table of {event.original_path} is not in the lake ({exc}); left out",
                hint="Re-ingest the file (epi-ml ingest) to rebuild its table.",
                file=event.original_path,
            )
        )
        return None


def _scan_table(table: pl.DataFrame, event: Any) -> CalibrationTable:
    """A lake calibration table (points + cell + taken_at) back to what the reader returned."""
    cell = table.get_column("cell")[0] if table.height else None
    taken_at = table.get_column("taken_at")[0] if table.height else None
    points = table.drop([c for c in ("cell", "taken_at") if c in table.columns])
    return CalibrationTable(cell, taken_at, points, [], Path(event.original_path))


def as_alarms(findings: Iterable[Finding]) -> list[Any]:
    """Drift findings as unsaved `Alarm` rows (the tool from the finding's details), for a caller
    that stores alerts (`session.add_all(...)`)."""
    from epi_ml.store.models import Alarm

    alarms = []
    for f in findings:
        tool = f.details.get("tool")
        alarms.append(
            Alarm(
                tool_id=tool,
                channel=f.channel,
                code=f.code,
                severity=f.severity.value,
                message=f"{f.message}. {f.hint}" if f.hint else f.message,
                started_at=f.end or datetime.now(UTC),
            )
        )
    return alarms


def record_drift_alarms(ctx: Any, history: pl.DataFrame, *, tolerance: float = 0.03) -> list[Finding]:
    """The drift alerts of the history (`drift_alerts`), stored as alarms for the dashboard; an
    alert already stored (same tool, cell, code and calibration time) is not stored again."""
    from epi_ml.store import write_session
    from epi_ml.store.models import Alarm

    findings = drift_alerts(history, tolerance=tolerance)
    with write_session(ctx.engine) as session:
        for alarm in as_alarms(findings):
            exists = session.scalars(
                select(Alarm.id).where(
                    Alarm.tool_id == alarm.tool_id, Alarm.channel == alarm.channel,
                    Alarm.code == alarm.code, Alarm.started_at == alarm.started_at,
                )
            ).first()  # fmt: skip
            if exists is None:
                session.add(alarm)
    return findings

