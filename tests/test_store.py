"""The relational store on SQLite and PostgreSQL: migrations, round-trips, atomicity, concurrency."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from epi_ml.findings import Finding, Severity
from epi_ml.store import Lake, current_revision, head_revision, make_engine, read_session, upgrade
from epi_ml.store import write_session
from epi_ml.store.db import downgrade
from epi_ml.store.models import (
    Base,
    GrowthRun,
    IngestEvent,
    Layer,
    Measurement,
    ModelAlias,
    ModelVersion,
    Promotion,
)
from epi_ml.store.repo import ensure_tool

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _tables(engine) -> set[str]:  # type: ignore[no-untyped-def]
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_migrations_build_the_models_schema_and_round_trip(store_url: str) -> None:
    upgrade(store_url)
    engine = make_engine(store_url)
    assert current_revision(engine) == head_revision()
    assert _tables(engine) == set(Base.metadata.tables)
    with engine.connect() as conn:  # the migrations and the models agree, column for column
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []

    downgrade(store_url, "base")
    assert _tables(engine) == set()
    assert current_revision(engine) is None
    upgrade(store_url)
    assert _tables(engine) == set(Base.metadata.tables)
    engine.dispose()


def test_run_with_layers_measurements_and_models_round_trips(store_url: str) -> None:
    upgrade(store_url)
    engine = make_engine(store_url)
    finding = Finding("stuck_sensor", Severity.WARNING, "flat for 40 min", channel="Ga.T", start=T0)
    with write_session(engine) as s:
        ensure_tool(s, "MBE1", description="twin tool 1")
        run = GrowthRun(id="MBE1-20260105-01", tool_id="MBE1", started_at=T0, recipe_name="hemt")
        run.layers = [
            Layer(index=1, material="GaAs", target_thickness_nm=500.0, setpoints={"Ga.T_set": 940.0}),
            Layer(index=2, material="AlGaAs", target_thickness_nm=20.0, target_composition=0.3),
        ]
        s.add(run)
        s.add(Measurement(run_id=run.id, layer_index=2, kind="xrd_composition", value=0.301))
        s.add(
            IngestEvent(
                sha256="a" * 64, original_path="/landing/x.txt", archive_path="/archive/aa/x",
                size_bytes=10, format="epic_channel", status="accepted_with_warnings",
                findings=[finding.to_dict()], run_id=run.id, tool_id="MBE1",
            )
        )  # fmt: skip
        model = ModelVersion(
            name="thickness", version=1, kind="hybrid_torch", hyperparameters={"lr": 1e-3},
            metrics={"mae_nm": 0.8}, lineage={"runs": [run.id], "files": {"a" * 64: "x.txt"}},
        )  # fmt: skip
        s.add(model)
        s.flush()
        s.add(ModelAlias(name="thickness", alias="champion", model_version_id=model.id))
        s.add(Promotion(name="thickness", version=1, action="promote", alias="champion", passed=True,
                        reasons=["first model"], metrics={"mae_nm": 0.8}))  # fmt: skip

    with read_session(engine) as s:
        run = s.get(GrowthRun, "MBE1-20260105-01")
        assert run is not None
        assert run.started_at == T0 and run.started_at.tzinfo is not None
        assert [layer.material for layer in run.layers] == ["GaAs", "AlGaAs"]
        assert run.layers[0].setpoints == {"Ga.T_set": 940.0}
        event = s.scalars(select(IngestEvent)).one()
        assert Finding.from_dict(event.findings[0]) == finding
        alias = s.get(ModelAlias, ("thickness", "champion"))
        assert alias is not None
        assert s.get(ModelVersion, alias.model_version_id).lineage["runs"] == [run.id]
        assert s.scalar(select(func.count()).select_from(Measurement)) == 1
    engine.dispose()


def test_same_content_hash_is_refused_and_a_failed_transaction_leaves_nothing(store_url: str) -> None:
    upgrade(store_url)
    engine = make_engine(store_url)

    def event(path: str) -> IngestEvent:
        return IngestEvent(sha256="b" * 64, original_path=path, archive_path=path, size_bytes=1,
                           format="wide_csv", status="accepted")  # fmt: skip

    with write_session(engine) as s:
        s.add(event("/a"))
    with pytest.raises(IntegrityError):
        with write_session(engine) as s:
            ensure_tool(s, "MBE2")
            s.add(GrowthRun(id="MBE2-20260105-01", tool_id="MBE2"))
            s.add(event("/b"))  # same bytes again: the whole transaction must roll back
    with read_session(engine) as s:
        assert s.scalar(select(func.count()).select_from(IngestEvent)) == 1
        assert s.get(GrowthRun, "MBE2-20260105-01") is None
    engine.dispose()


def test_naive_datetimes_are_refused(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with pytest.raises(Exception, match="naive datetime"):
        with write_session(engine) as s:
            ensure_tool(s, "MBE1")
            s.add(GrowthRun(id="MBE1-20260105-01", tool_id="MBE1", started_at=datetime(2026, 1, 5)))
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


RUNS_PER_WRITER = 40


def _write_runs(url: str, writer: int, start_barrier) -> None:  # type: ignore[no-untyped-def]
    """One writer process: many small transactions, all touching the same tool row."""
    engine = make_engine(url)
    start_barrier.wait()
    for seq in range(RUNS_PER_WRITER):
        with write_session(engine) as s:
            ensure_tool(s, "MBE1")
            run = GrowthRun(
                id=f"MBE1-2026010{writer}-{seq:02d}", tool_id="MBE1",
                started_at=T0 + timedelta(hours=seq), status="ingested",
            )  # fmt: skip
            run.layers = [Layer(index=i, material="GaAs", target_thickness_nm=100.0) for i in (1, 2, 3)]
            s.add(run)
    engine.dispose()


def test_two_processes_writing_runs_at_once_lose_nothing(store_url: str) -> None:
    upgrade(store_url)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    writers = [ctx.Process(target=_write_runs, args=(store_url, w, barrier)) for w in (1, 2)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(timeout=180)
    assert [p.exitcode for p in writers] == [0, 0]

    engine = make_engine(store_url)
    with read_session(engine) as s:
        assert s.scalar(select(func.count()).select_from(GrowthRun)) == 2 * RUNS_PER_WRITER
        assert s.scalar(select(func.count()).select_from(Layer)) == 2 * RUNS_PER_WRITER * 3
        assert s.execute(text("select count(*) from tools")).scalar() == 1
    engine.dispose()


def test_alembic_command_line_builds_the_schema_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {"EPI_ML_DATABASE_URL": f"sqlite:///{db}", "PATH": str(Path(sys.executable).parent)}
    alembic = [sys.executable, "-m", "alembic"]
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"], ["check"]):
        done = subprocess.run(alembic + args, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    engine = make_engine(f"sqlite:///{db}")
    assert _tables(engine) == set(Base.metadata.tables)
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# Parquet lake
def test_lake_writes_are_atomic_and_readable(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    frame = pl.DataFrame({"channel": ["Ga.T", "Ga.T"], "value": [940.0, 940.1]})
    lake.write_run_table("MBE1-20260105-01", "sensors", frame)
    assert lake.read_run_table("MBE1-20260105-01", "sensors").equals(frame)
    assert lake.run_ids() == ["MBE1-20260105-01"]

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"half a parquet file")
        raise OSError("disk full")

    from epi_ml.store.lake import atomic_write

    target = lake.run_table_path("MBE1-20260105-01", "sensors")
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert lake.read_run_table("MBE1-20260105-01", "sensors").equals(frame)  # previous version intact
    assert [p.name for p in target.parent.iterdir()] == ["sensors.parquet"]  # no temp file left


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", ".hidden", "run id"])
def test_lake_refuses_names_that_escape_its_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid run id"):
        Lake(tmp_path).run_dir(bad)
