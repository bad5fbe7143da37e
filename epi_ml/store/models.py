"""Relational metadata of the product (SQLAlchemy 2.x). Time series live in the Parquet lake, not here.

Tables, by concept:
- equipment:  tools, cells (with their refill history), channels (vendor tag -> canonical name)
- growth:     campaigns, growth_runs, layers (recipe steps), measurements (XRD, PL, ...)
- ingest:     ingest_events (one per file received: content hash, status, findings), alarms
- models:     model_versions, model_aliases, promotions (append-only ledger), predictions
- monitoring: drift_reports, reports
Every change to these tables goes through an Alembic migration (epi_ml/store/migrations).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations behave the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: epi-ml stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# 64-bit ids for tables that grow by the million (SQLite auto-increments only INTEGER keys).
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


# ---------------------------------------------------------------------------------------------
# Equipment
class Tool(Base):
    """An MBE system (e.g. `MBE1`), with the log format and tag map used to read it."""

    __tablename__ = "tools"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64), default="EPIC")
    log_format: Mapped[str] = mapped_column(String(32), default="epic")
    tag_map: Mapped[str] = mapped_column(String(64), default="epic")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cells: Mapped[list[Cell]] = relationship(back_populates="tool")


class Cell(Base):
    """An effusion cell or cracker of a tool; a refill starts a new row (the refill epoch)."""

    __tablename__ = "cells"
    __table_args__ = (UniqueConstraint("tool_id", "source", "installed_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))  # Ga, Al, In, Si, Be, As
    kind: Mapped[str] = mapped_column(String(32))  # group_iii, dopant, cracker
    charge_g: Mapped[float | None] = mapped_column(Float)  # material loaded at refill
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)  # refill / bake-out time
    retired_at: Mapped[datetime | None]

    tool: Mapped[Tool] = relationship(back_populates="cells")


class Channel(Base):
    """A logged channel of a tool: vendor tag -> canonical name and unit."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("tool_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))  # canonical, e.g. Ga.T
    vendor_tag: Mapped[str | None] = mapped_column(String(128))  # e.g. Ga.PID.MV
    unit: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(32), default="")


# ---------------------------------------------------------------------------------------------
# Growth
class Campaign(Base):
    """A series of runs (a project, a qualification, a simulated campaign of the twin)."""

    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GrowthRun(Base):
    """One growth run (one wafer); its id is `<tool>-<YYYYMMDD>-<seq>` and its Dagster partition key."""

    __tablename__ = "growth_runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tool_id: Mapped[str] = mapped_column(ForeignKey("tools.id"), index=True)
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    recipe_name: Mapped[str | None] = mapped_column(String(256))
    recipe_sha256: Mapped[str | None] = mapped_column(String(64))
    operator: Mapped[str | None] = mapped_column(String(128))
    wafer: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime | None] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    # What marked the run in the tool's logs: "recipe" (Run ... start/end messages) or
    # "transfer" (wafer moved into / out of the growth chamber; layers from the shutter log).
    segmented_by: Mapped[str] = mapped_column(String(16), default="recipe")
    # live (growing, seen by the tailer) | open (no end in the logs yet) | landed (complete,
    # waiting for its partition) | ingested (sensor table written) | validated | quarantined
    status: Mapped[str] = mapped_column(String(32), default="landed", index=True)
    # Hash of the run's inputs (files and segmentation) now, and of those its partition was last
    # materialized from: when they differ the run is pending.
    input_fingerprint: Mapped[str | None] = mapped_column(String(64))
    ingested_fingerprint: Mapped[str | None] = mapped_column(String(64))
    lake_path: Mapped[str | None] = mapped_column(String(1024))  # folder of the run in the lake
    n_errors: Mapped[int] = mapped_column(Integer, default=0)
    n_warnings: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[list[Any]] = mapped_column(default=list)  # most severe first (Finding.to_dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    layers: Mapped[list[Layer]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Layer.index"
    )


class Layer(Base):
    """A recipe step of a run: material, targets and the set points it was grown with."""

    __tablename__ = "layers"
    __table_args__ = (UniqueConstraint("run_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("growth_runs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)  # 1-based position in the recipe
    kind: Mapped[str] = mapped_column(String(16), default="layer")  # layer | interrupt
    material: Mapped[str] = mapped_column(String(64))  # GaAs, AlGaAs, InGaAs, AlAs, interrupt
    label: Mapped[str | None] = mapped_column(String(128))
    open_sources: Mapped[list[Any]] = mapped_column(default=list)  # shutters open: ["Ga", "As"]
    target_thickness_nm: Mapped[float | None] = mapped_column(Float)
    target_composition: Mapped[float | None] = mapped_column(Float)  # x of AlxGa1-xAs, InxGa1-xAs
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    setpoints: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"Ga.T_set": 940.0, ...}

    run: Mapped[GrowthRun] = relationship(back_populates="layers")


class Measurement(Base):
    """An ex-situ measurement of a run or one of its layers (XRD thickness, composition, PL peak)."""

    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("run_id", "layer_index", "kind", "measured_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("growth_runs.id", ondelete="CASCADE"), index=True)
    layer_index: Mapped[int | None] = mapped_column(Integer)  # None = whole run (e.g. PL)
    kind: Mapped[str] = mapped_column(String(64))  # xrd_thickness_nm, xrd_composition, pl_peak_nm
    value: Mapped[float] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32), default="")
    measured_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_sha256: Mapped[str | None] = mapped_column(String(64))  # the file it came from


# ---------------------------------------------------------------------------------------------
# Ingest
class IngestEvent(Base):
    """One distinct content received. The same bytes (content hash) twice is a no-op, so the hash
    is unique; where the bytes were seen is in `file_sightings`."""

    __tablename__ = "ingest_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    original_path: Mapped[str] = mapped_column(String(2048))  # where it was first seen
    archive_path: Mapped[str] = mapped_column(String(2048))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(32))  # epic_channel, wide_csv, calibration, ...
    # What the content is: sensors, shutters, messages, fitting, calibration, rheed, measurements,
    # recipe; "" when it could not be read.
    kind: Mapped[str] = mapped_column(String(32), default="", index=True)
    # accepted | accepted_with_warnings | quarantined | skipped
    status: Mapped[str] = mapped_column(String(32), index=True)
    findings: Mapped[list[Any]] = mapped_column(default=list)  # Finding.to_dict() entries
    tool_id: Mapped[str | None] = mapped_column(ForeignKey("tools.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)  # a run the file names
    time_start: Mapped[datetime | None]  # first and last sample time of the content (UTC)
    time_end: Mapped[datetime | None]
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    channels: Mapped[list[Any]] = mapped_column(default=list)  # canonical channels it holds
    lake_path: Mapped[str | None] = mapped_column(String(2048))  # the content as read (Parquet)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class FileSighting(Base):
    """A path where the bytes of an ingest event were seen, with the size and modification time
    they had: a file seen again unchanged is skipped without hashing it, and a log that grows
    (the logger appends) is a chain of sightings at one path, each extending the previous."""

    __tablename__ = "file_sightings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("ingest_events.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(2048), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    # The previous sighting at this path holds a prefix of these bytes (an appended log).
    extends_previous: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class LiveSample(Base):
    """Samples of runs in progress, written by the live tailer / MQTT listener within a second of
    being logged, for the dashboard. A bounded buffer, not the record: the run's partition writes
    the lake, and the buffer of a run is dropped once its sensor table is in the lake."""

    __tablename__ = "live_samples"
    # the dashboard's reads cost the same at the end of a long run as at its start (migration 0003)
    __table_args__ = (
        Index("ix_live_samples_tool_channel_time", "tool_id", "channel", "time"),
        Index("ix_live_samples_run_id_id", "run_id", "id"),
        Index("ix_live_samples_run_id_time", "run_id", "time"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tool_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(128))
    time: Mapped[datetime] = mapped_column(index=True)
    value: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alarm(Base):
    """A condition an engineer must see: from validation of live data, drift, calibration."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tool_id: Mapped[str | None] = mapped_column(ForeignKey("tools.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("growth_runs.id"), index=True)
    channel: Mapped[str | None] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]


# ---------------------------------------------------------------------------------------------
# Models
class ModelVersion(Base):
    """A trained model: integer version per name, artifact on disk, full lineage."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))  # physics, gbm, hybrid_torch
    artifact_path: Mapped[str | None] = mapped_column(String(2048))
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(128))  # "cpu" or the CUDA device name
    features_version: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(64))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"runs": [...], "files": {sha256: path}, "training_set_sha256": ...}
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """`champion` / `challenger` pointers of a model name to one of its versions."""

    __tablename__ = "model_aliases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Promotion(Base):
    """Append-only ledger of every gate decision, promotion and rollback, with its reasons."""

    __tablename__ = "promotions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))  # gate_pass, gate_fail, promote, rollback
    alias: Mapped[str | None] = mapped_column(String(64))
    previous_version: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decided_by: Mapped[str] = mapped_column(String(128), default="system")
    decided_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Prediction(Base):
    """A model's prediction for a layer or run, with its interval."""

    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("growth_runs.id"), index=True)
    layer_index: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(64))  # thickness_nm, composition, growth_rate_nm_s
    value: Mapped[float] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    coverage: Mapped[float | None] = mapped_column(Float)  # nominal coverage of [lower, upper]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ---------------------------------------------------------------------------------------------
# Monitoring
class DriftReport(Base):
    """A drift test of a feature, channel or residual over a window, against a reference."""

    __tablename__ = "drift_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tool_id: Mapped[str | None] = mapped_column(ForeignKey("tools.id"), index=True)
    subject: Mapped[str] = mapped_column(String(128))  # feature, channel or residual name
    method: Mapped[str] = mapped_column(String(64))  # psi, ks, wasserstein, cusum, ...
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    statistic: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    drifted: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(Base):
    """A rendered report (weekly growth report), kept as a file under the home."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("kind", "period_start"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # weekly
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    path: Mapped[str] = mapped_column(String(2048))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
