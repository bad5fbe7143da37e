"""Engines, sessions and schema migrations for the relational store.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write transactions start
with BEGIN IMMEDIATE so that concurrent writer processes queue for the lock instead of failing
half-way with "database is locked". PostgreSQL needs none of that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60


def make_engine(url: str) -> Engine:
    """An engine for `url`, with the SQLite pragmas the product relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite so that BEGIN below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front (waiting up to the busy timeout); a deferred
        # transaction that upgrades to a writer later can fail at once with SQLITE_BUSY.
        mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One shared engine (and connection pool) per URL in a process."""
    return make_engine(url)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A transaction that commits on success and rolls back on any error (nothing half-written)."""
    with Session(engine.execution_options(sqlite_write=True), expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session
        session.rollback()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# ---------------------------------------------------------------------------------------------
# Migrations (Alembic). `alembic upgrade head` at the repository root does the same.
def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_connection(engine: Engine) -> str:
    """Server version string; raises when the database cannot be reached."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return "SQLite " + conn.execute(text("select sqlite_version()")).scalar_one()
        return str(conn.execute(text("select version()")).scalar_one()).split(",")[0]


def redact(url: str) -> str:
    """The URL without its password, for messages and `epi-ml doctor`."""
    return make_url(url).render_as_string(hide_password=True)
