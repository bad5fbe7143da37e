"""The store: relational metadata (SQLAlchemy, SQLite or PostgreSQL) + the Parquet lake."""

from epi_ml.store.db import (
    check_connection,
    current_revision,
    engine_for,
    head_revision,
    make_engine,
    read_session,
    redact,
    upgrade,
    write_session,
)
from epi_ml.store.lake import Lake

__all__ = [
    "Lake",
    "check_connection",
    "current_revision",
    "engine_for",
    "head_revision",
    "make_engine",
    "read_session",
    "redact",
    "upgrade",
    "write_session",
]
