"""Small, race-safe writes shared by ingest, the twin loader and the CLI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from epi_ml.store.models import Tool


def insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: concurrent writers may both create the same row."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def ensure_tool(session: Session, tool_id: str, **attrs: Any) -> Tool:
    """The tool row, created with `attrs` if it does not exist yet (race-safe)."""
    insert_ignore(session, Tool, {"id": tool_id, **attrs})
    tool = session.get(Tool, tool_id)
    assert tool is not None
    return tool


def table_version(engine: Engine, model: type[Any]) -> str:
    """A version of an append-mostly table's content: its row count and newest id. Unchanged
    while nothing is added, so a re-run that adds nothing reports the same data version."""
    with Session(engine) as session:
        count, newest = session.execute(select(func.count(), func.max(model.id))).one()
    return f"{model.__tablename__}:{count}:{newest or 0}"
