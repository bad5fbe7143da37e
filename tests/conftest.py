"""Shared fixtures. PostgreSQL tests use the server at EPI_ML_TEST_POSTGRES_URL (default: the local
server, database `test`); each test session gets its own database, each test its own schema.
With CI=true a PostgreSQL server that cannot be reached fails the run instead of skipping."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from epi_ml.settings import reset_settings_cache
from prereqs import IN_CI, require  # noqa: F401 - re-exported for the tests that import it here

POSTGRES_ADMIN_URL = os.environ.get(
    "EPI_ML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own EPI_ML_HOME (and so its own SQLite store and Dagster home)."""
    home = tmp_path / "epi-ml-home"
    monkeypatch.setenv("EPI_ML_HOME", str(home))
    monkeypatch.delenv("EPI_ML_DATABASE_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    reset_settings_cache()
    yield home
    reset_settings_cache()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        require(
            False,
            f"PostgreSQL not reachable at {make_url(POSTGRES_ADMIN_URL).render_as_string()} ({exc})",
            "start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or set EPI_ML_TEST_POSTGRES_URL",
        )
    name = f"epi_ml_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """A fresh, empty schema in the session's database; the URL puts it first on search_path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(postgres_database, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_database).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The same test against the embedded SQLite store and against PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")
