"""Growth runs from a tool's ingested files: segmentation, the files each run is read from, and
the fingerprint that says when a run must be materialized again.

    changes = register_tool_runs(context, "MBE1")   # after new files of MBE1 were ingested
    inputs = select_inputs(engine, "MBE1", run_id, start, end)

A run's inputs are the ingested files of its tool whose samples overlap its window (shutter logs
from a day and a half before, for the state the shutters were in when the run began) and the files
named after it (recipe, RHEED export, per-run tables). A log that grows is seen as a chain of
versions at one path, each extending the one before: a run takes the earliest version that
already covers it, so the day's later runs appending to the same files leave it untouched. A file
rewritten in place starts a new chain, and runs read from it are pending again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.orm import Session

from epi_ml.ingest.equipment import register_refills
from epi_ml.ingest.segment import LayerSegment, RunSegment, segment_tool_logs
from epi_ml.store import Lake, write_session
from epi_ml.store.lake import atomic_write
from epi_ml.store.models import FileSighting, GrowthRun, IngestEvent, Layer

TIMED_KINDS = ("sensors", "shutters", "messages")
SHUTTER_LOOKBACK = timedelta(hours=36)
PENDING = "landed"
DONE = ("validated", "quarantined")


@dataclass(frozen=True)
class RunInput:
    event_id: int
    sha256: str
    kind: str
    path: str  # where it landed
    lake_path: str | None
    archive_path: str
    time_start: datetime | None
    time_end: datetime | None
    findings: tuple[dict[str, Any], ...] = ()  # what the readers found in the file

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "kind": self.kind,
            "path": self.path,
            "archive_path": self.archive_path,
            "lake_path": self.lake_path,
            "time_start": self.time_start.isoformat() if self.time_start else None,
            "time_end": self.time_end.isoformat() if self.time_end else None,
            "findings": list(self.findings),
        }


@dataclass(frozen=True)
class RunChange:
    run_id: str
    status: str  # the run's status after registration
    new: bool
    pending: bool  # complete and its inputs changed since its partition was materialized


def fingerprint(segment: dict[str, Any], inputs: list[RunInput]) -> str:
    body = json.dumps({"segment": segment, "inputs": sorted(i.sha256 for i in inputs)}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def register_tool_runs(engine: Engine, lake: Lake, tool_id: str, tz: str = "UTC") -> list[RunChange]:
    """Segment the tool's logs and bring its growth runs (and their layers) up to date."""
    messages = _tool_table(engine, tool_id, "messages")
    register_refills(engine, tool_id, messages)
    shutters = _tool_table(engine, tool_id, "shutters")
    segments = segment_tool_logs(tool_id, messages, shutters, tz=tz)
    changes = []
    for segment in segments:
        end = segment.end or segment.start
        inputs = select_inputs(engine, tool_id, segment.run_id, segment.start, end)
        changes.append(_upsert_run(engine, lake, segment, inputs))
    return changes


def select_inputs(
    engine: Engine, tool_id: str, run_id: str, start: datetime, end: datetime
) -> list[RunInput]:
    with Session(engine) as session:
        window = or_(
            (IngestEvent.kind.in_(("sensors", "messages")))
            & (IngestEvent.time_end >= start)
            & (IngestEvent.time_start <= end),
            (IngestEvent.kind == "shutters")
            & (IngestEvent.time_end >= start - SHUTTER_LOOKBACK)
            & (IngestEvent.time_start <= end),
        )
        candidates = session.scalars(
            select(IngestEvent).where(
                IngestEvent.status != "quarantined",
                or_(
                    (IngestEvent.tool_id == tool_id) & window,
                    (IngestEvent.run_id == run_id) & (IngestEvent.kind != ""),
                ),
            )
        ).all()
        latest = _latest_chains(session, [c.id for c in candidates])
        chosen = _choose_versions(candidates, latest, end)
        return [_as_input(event) for event in sorted(chosen, key=lambda e: e.id)]


def run_segment_path(lake: Lake, run_id: str) -> Path:
    return lake.run_dir(run_id) / "segment.json"


def load_segment(lake: Lake, run_id: str) -> dict[str, Any]:
    path = run_segment_path(lake, run_id)
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
def _tool_table(engine: Engine, tool_id: str, kind: str) -> pl.DataFrame:
    """Every message (or shutter event) of the tool, from the current version of each log."""
    with Session(engine) as session:
        events = session.scalars(
            select(IngestEvent).where(
                IngestEvent.tool_id == tool_id,
                IngestEvent.kind == kind,
                IngestEvent.status != "quarantined",
            )
        ).all()
        chains = _latest_chains(session, [e.id for e in events])
        current = {chain[-1] for chain in chains.values() if chain}
        paths = [e.lake_path for e in events if e.id in current and e.lake_path]
    frames = [frame for frame in map(pl.read_parquet, paths) if not frame.is_empty()]
    if not frames:
        return pl.DataFrame(schema={"time": pl.Datetime("us", "UTC"), "message": pl.String})
    return pl.concat(frames, how="vertical_relaxed")


def _latest_chains(session: Session, event_ids: list[int]) -> dict[str, list[int]]:
    """path -> the event ids of the latest chain of versions seen there, oldest first."""
    if not event_ids:
        return {}
    paths = select(FileSighting.path).where(FileSighting.event_id.in_(event_ids)).distinct()
    sightings = session.execute(
        select(FileSighting.path, FileSighting.event_id, FileSighting.extends_previous)
        .where(FileSighting.path.in_(paths))
        .order_by(FileSighting.id)
    ).all()
    chains: dict[str, list[int]] = {}
    for path, event_id, extends in sightings:
        chain = chains.setdefault(path, [])
        if not extends:
            chain.clear()
        if event_id not in chain:
            chain.append(event_id)
    return chains


def _choose_versions(
    candidates: Sequence[IngestEvent], chains: dict[str, list[int]], end: datetime
) -> list[IngestEvent]:
    """Per path, the version of the log the run is read from: the earliest one that already
    holds everything the newest one holds up to the run's end (appended logs are prefixes of
    each other, so that version gives the run exactly the same rows)."""
    by_id = {e.id: e for e in candidates}
    chosen: dict[int, IngestEvent] = {}
    for chain in chains.values():
        in_window = [by_id[i] for i in chain if i in by_id]
        if not in_window:
            continue
        pick = in_window[-1]
        if len(in_window) > 1 and pick.lake_path:
            last = _last_time_until(pick.lake_path, end)
            pick = next((e for e in in_window if e.time_end and last and e.time_end >= last), pick)
        chosen[pick.id] = pick
    # Events no longer in any latest chain were replaced by a rewrite of their file: left out.
    return list(chosen.values())


def _last_time_until(lake_path: str, end: datetime) -> datetime | None:
    times = pl.scan_parquet(lake_path).filter(pl.col("time") <= end).select(pl.col("time").max())
    return times.collect().item()


def _as_input(event: IngestEvent) -> RunInput:
    return RunInput(
        event_id=event.id,
        sha256=event.sha256,
        kind=event.kind,
        path=event.original_path,
        lake_path=event.lake_path,
        archive_path=event.archive_path,
        time_start=event.time_start,
        time_end=event.time_end,
        findings=tuple(event.findings),
    )


def _upsert_run(engine: Engine, lake: Lake, segment: RunSegment, inputs: list[RunInput]) -> RunChange:
    seg = segment.to_dict()
    current = fingerprint(seg, inputs)
    recipe_sha = _recipe_sha(inputs)
    body = json.dumps(
        {**seg, "findings": [f.to_dict() for f in segment.findings]}, indent=1, default=str
    )
    atomic_write(run_segment_path(lake, segment.run_id), lambda tmp: tmp.write_text(body, encoding="utf-8"))
    with write_session(engine) as session:
        run = session.get(GrowthRun, segment.run_id)
        new = run is None
        if run is None:
            run = GrowthRun(id=segment.run_id, tool_id=segment.tool, status="open")
            session.add(run)
        changed = run.input_fingerprint != current
        run.tool_id = segment.tool
        run.recipe_name = segment.recipe
        run.recipe_sha256 = recipe_sha
        run.operator = segment.operator
        run.wafer = segment.wafer
        run.started_at = segment.start
        run.ended_at = segment.end
        run.segmented_by = segment.segmented_by
        run.input_fingerprint = current
        if not segment.complete:
            run.status = "live" if run.status == "live" else "open"
        elif run.ingested_fingerprint != current:
            run.status = PENDING
        if changed or new:
            replace_layers(session, segment.run_id, segment.layers)
        return RunChange(segment.run_id, run.status, new, run.status == PENDING)


def replace_layers(session: Session, run_id: str, layers: tuple[LayerSegment, ...]) -> None:
    """The run's layer rows, as the segment cuts them (batch ingest, and live runs as they grow)."""
    session.execute(delete(Layer).where(Layer.run_id == run_id))
    for layer in layers:
        session.add(
            Layer(
                run_id=run_id,
                index=layer.index,
                kind=layer.kind,
                material=layer.material,
                label=layer.label,
                target_thickness_nm=layer.target_thickness_nm,
                target_composition=layer.target_composition,
                started_at=layer.start,
                ended_at=layer.end,
                open_sources=sorted(layer.open_sources),
                setpoints={},
            )
        )


def _recipe_sha(inputs: list[RunInput]) -> str | None:
    """The hash of the recipe the run was grown from (its file is named after the run)."""
    recipes = [i for i in inputs if i.kind == "recipe" and i.lake_path]
    if not recipes:
        return None
    return str(pl.read_parquet(recipes[-1].lake_path).get_column("sha256")[0])
