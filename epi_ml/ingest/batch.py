"""A batch of files through the whole ingest: what `epi-ml ingest`, the Dagster assets and the
tests call (the assets one stage at a time, the CLI all at once).

    ctx = open_context()                       # home, store (migrated), tools.yaml
    report = ingest_paths(ctx, [Path("landing/MBE1")])
    report.exit_code                           # 0 all accepted, 3 anything quarantined

Files are ingested one at a time (memory follows the largest file, not the batch); a bad file is
quarantined and the batch goes on. Then the runs of every tool that got new files are segmented
and registered, measurements are matched to runs, and (`build=True`) every pending run is built:
inputs, sensor table, validation, summary.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epi_ml.findings import Finding, Severity
from epi_ml.ingest.files import (
    FileOutcome,
    IngestContext,
    PreparedFile,
    Sighting,
    last_sightings,
    prepare_file,
    record_files,
)
from epi_ml.ingest.landing import LandedFile, landing_batch
from epi_ml.ingest.measurements import MeasurementLink, link_measurements
from epi_ml.ingest.run_stages import (
    build_sensor_table,
    collect_inputs,
    pending_run_ids,
    summarize_run,
    validate_growth_run,
)
from epi_ml.ingest.runs import RunChange, register_tool_runs
from epi_ml.ingest.tools import load_tool_configs
from epi_ml.settings import Settings, get_settings
from epi_ml.store import current_revision, engine_for, head_revision, upgrade

EXIT_OK, EXIT_QUARANTINED = 0, 3  # usage errors: 2 (epi_ml.cli_common)
RECORD_EVERY = 64  # files per group commit


@dataclass
class RunOutcome:
    run_id: str
    status: str  # accepted | accepted_with_warnings | quarantined | failed
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)  # errors and warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "counts": self.counts,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)
    runs: list[RunChange] = field(default_factory=list)
    built: list[RunOutcome] = field(default_factory=list)
    measurements: MeasurementLink = field(default_factory=MeasurementLink)

    @property
    def exit_code(self) -> int:
        bad_file = any(f.status == "quarantined" for f in self.files)
        bad_run = any(r.status in ("quarantined", "failed") for r in self.built)
        return EXIT_QUARANTINED if bad_file or bad_run else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "files": [f.to_dict() for f in self.files],
            "runs": [vars(r) for r in self.runs],
            "built": [r.to_dict() for r in self.built],
            "measurements": self.measurements.to_dict(),
        }


def open_context(
    settings: Settings | None = None, *, tool: str | None = None, landing_root: Path | None = None
) -> IngestContext:
    """The ingest context of a home: folders created, store migrated to the code's schema."""
    settings = settings or get_settings()
    settings.ensure_home()
    engine = engine_for(settings.database_url)
    if current_revision(engine) != head_revision():
        upgrade(settings.database_url)
    return IngestContext(
        settings=settings,
        engine=engine,
        configs=load_tool_configs(settings.home),
        tool=tool,
        landing_root=landing_root if landing_root is not None else settings.landing_dir,
    )


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files of the given paths (folders walked), in a stable order, measurement files last so
    that their runs are known when they are matched."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for folder, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(folder) / n for n in sorted(names)]
        else:
            found.append(path)
    return found


def ingest_files(ctx: IngestContext, files: list[Path]) -> list[FileOutcome]:
    """Each file on its own, a few at a time (reading and hashing free the GIL), recorded in
    groups of RECORD_EVERY (one flush to disk and one transaction each), in the order given. A
    file that breaks epi-ml itself is reported, and the batch goes on. Memory follows the largest
    file times the workers, never the batch."""
    paths = [Path(p).absolute() for p in files]
    previous = last_sightings(ctx.engine, [str(p) for p in paths])
    outcomes: list[FileOutcome] = []
    group: list[PreparedFile] = []
    with ThreadPoolExecutor(max_workers=ctx.settings.ingest_workers) as pool:
        for prepared in pool.map(lambda p: _prepare(ctx, p, previous.get(str(p))), paths):
            group.append(prepared)
            if len(group) >= RECORD_EVERY:
                outcomes += _record_group(ctx, group)
                group = []
        outcomes += _record_group(ctx, group)
    return outcomes


def _prepare(ctx: IngestContext, path: Path, previous: Sighting | None) -> PreparedFile:
    try:
        return prepare_file(path, ctx, previous)
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the rest of the batch
        return PreparedFile(path, done=_crashed(path, exc))


def _record_group(ctx: IngestContext, group: list[PreparedFile]) -> list[FileOutcome]:
    try:
        return record_files(ctx, group)
    except Exception:  # noqa: BLE001 - one file at a time, to tell which one breaks
        outcomes = []
        for prepared in group:
            try:
                outcomes += record_files(ctx, [prepared])
            except Exception as exc:  # noqa: BLE001
                outcomes.append(_crashed(prepared.path, exc))
        return outcomes


def register_runs(ctx: IngestContext, tools: set[str]) -> list[RunChange]:
    changes: list[RunChange] = []
    for tool in sorted(tools):
        changes += register_tool_runs(ctx.engine, ctx.lake, tool, ctx.config_for(tool).timezone)
    return changes


def build_run(ctx: IngestContext, run_id: str) -> RunOutcome:
    """All stages of one run's partition, in-process (what the Dagster job runs step by step)."""
    try:
        collect_inputs(ctx, run_id)
        build_sensor_table(ctx, run_id)
        validation = validate_growth_run(ctx, run_id)
        if validation.status != "quarantined":
            summarize_run(ctx, run_id)
    except Exception as exc:  # noqa: BLE001
        finding = Finding(
            "run_failed",
            Severity.ERROR,
            f"building run {run_id} failed: {type(exc).__name__}: {exc}",
            hint="Its files are in the archive; rerun the run's partition once fixed.",
            details={"traceback": traceback.format_exc(limit=6)},
        )
        return RunOutcome(run_id, "failed", {"error": 1}, [finding])
    serious = [f for f in validation.findings if f.severity is not Severity.INFO]
    return RunOutcome(run_id, validation.status, validation.counts, serious)


def ingest_paths(ctx: IngestContext, paths: list[Path], *, build: bool = True) -> IngestReport:
    """The given files and folders (nothing waits to settle: the caller says they are complete)."""
    report = _ingest_and_register(ctx, expand_paths(paths), only_new=False)
    if build:
        touched = {c.run_id for c in report.runs}
        report.built = [build_run(ctx, run_id) for run_id in pending_run_ids(ctx) if run_id in touched]
    return report


@dataclass
class LandingBatch:
    report: IngestReport
    waiting: list[LandedFile]  # still being written: left for the next batch


def ingest_landing(
    ctx: IngestContext,
    *,
    measurements: bool = False,
    settle_s: float | None = None,
    now_ns: int | None = None,
) -> LandingBatch:
    """What is ready in the landing folder: tool logs and exports, or (`measurements=True`) the
    measurement tables. Runs are registered, not built (each run is its own partition).
    `settle_s`: how long a file must be unchanged (default: the settings')."""
    readiness = landing_batch(
        ctx.settings.landing_dir,
        cursor={},
        measurements=measurements,
        settle_s=ctx.settings.landing_settle_s if settle_s is None else settle_s,
        now_ns=now_ns,
    )
    report = _ingest_and_register(ctx, [f.path for f in readiness.ready], only_new=True)
    return LandingBatch(report, readiness.waiting)


def _ingest_and_register(ctx: IngestContext, files: list[Path], *, only_new: bool) -> IngestReport:
    """`only_new`: segment only the tools that got new content (a sensor's batch); otherwise
    every tool the files belong to (a user asking again gets the runs built again if pending)."""
    report = IngestReport(files=ingest_files(ctx, files))
    tools = {
        f.tool
        for f in report.files
        if f.tool and f.status != "quarantined" and not (only_new and f.seen_before)
    }
    report.runs = register_runs(ctx, tools)
    report.measurements = link_measurements(ctx)
    return report


def _crashed(path: Path, exc: Exception) -> FileOutcome:
    finding = Finding(
        "ingest_failed",
        Severity.ERROR,
        f"ingesting the file failed: {type(exc).__name__}: {exc}",
        hint="A bug in epi-ml; report it with the file. The rest of the batch went on.",
        file=str(path),
        details={"traceback": traceback.format_exc(limit=6)},
    )
    return FileOutcome(str(path), "quarantined", findings=[finding])
