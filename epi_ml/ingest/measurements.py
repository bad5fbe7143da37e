"""Measurements (XRD, PL, ...) into the store, matched to their runs by run id.

Measurement files often arrive before the logs of their runs (or name a run with a typo): rows of
runs the store does not know yet wait in the lake (the file's table) and are stored as soon as the
run appears; `link_measurements` is run after every batch. Idempotent: a row already stored (same
run, layer, kind and time) is not stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from epi_ml.ingest.files import IngestContext
from epi_ml.store import read_session, write_session
from epi_ml.store.models import GrowthRun, IngestEvent, Measurement
from epi_ml.store.repo import insert_ignore


@dataclass
class MeasurementLink:
    stored: int = 0  # rows stored by this call
    waiting: dict[str, int] = field(default_factory=dict)  # run id the store lacks -> rows

    def to_dict(self) -> dict[str, object]:
        return {"stored": self.stored, "waiting_for_runs": self.waiting}


def link_measurements(ctx: IngestContext) -> MeasurementLink:
    link = MeasurementLink()
    with read_session(ctx.engine) as session:
        events = session.execute(
            select(IngestEvent.sha256, IngestEvent.lake_path, IngestEvent.rows, IngestEvent.received_at)
            .where(IngestEvent.kind == "measurements", IngestEvent.status != "quarantined")
            .order_by(IngestEvent.id)
        ).all()
        stored = dict(
            session.execute(
                select(Measurement.source_sha256, func.count()).group_by(Measurement.source_sha256)
            ).all()
        )
        runs = set(session.scalars(select(GrowthRun.id)))
    for sha, lake_path, rows, received_at in events:
        if not lake_path or stored.get(sha, 0) >= rows:
            continue  # every row of the file is in the store
        frame = pl.read_parquet(lake_path)
        known = frame.filter(pl.col("run_id").is_in(list(runs)))
        for run_id, count in (
            frame.filter(~pl.col("run_id").is_in(list(runs))).group_by("run_id").len().iter_rows()
        ):
            link.waiting[run_id] = link.waiting.get(run_id, 0) + count
        if known.is_empty():
            continue
        with write_session(ctx.engine) as session:
            before = _count(session, sha)
            for row in known.iter_rows(named=True):
                values = {
                    "run_id": row["run_id"],
                    "layer_index": row["layer_index"],
                    "kind": row["kind"],
                    "value": row["value"],
                    "uncertainty": row.get("uncertainty"),
                    "unit": row.get("unit") or _unit(row["kind"]),
                    "measured_at": row.get("measured_at") or received_at,
                    "source_sha256": sha,
                }
                if row["layer_index"] is None and _whole_run_stored(session, values):
                    continue  # NULL layer: the unique constraint cannot see the duplicate
                insert_ignore(session, Measurement, values)
            link.stored += _count(session, sha) - before
    return link


def _count(session: Session, sha: str) -> int:
    return session.scalar(
        select(func.count()).select_from(Measurement).where(Measurement.source_sha256 == sha)
    )


def _whole_run_stored(session: Session, values: dict[str, object]) -> bool:
    return (
        session.scalar(
            select(func.count())
            .select_from(Measurement)
            .where(
                Measurement.run_id == values["run_id"],
                Measurement.layer_index.is_(None),
                Measurement.kind == values["kind"],
                Measurement.measured_at == values["measured_at"],
            )
        )
        > 0
    )


def _unit(kind: str) -> str:
    return "nm" if kind.endswith("_nm") else ""
