"""Alembic environment: the URL comes from the alembic config when set (programmatic use, tests),
else from epi-ml's settings (EPI_ML_DATABASE_URL), so `alembic upgrade head` needs no editing."""

from __future__ import annotations

from alembic import context

from epi_ml.settings import get_settings
from epi_ml.store.db import make_engine
from epi_ml.store.models import Base, UTCDateTime

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def render_item(type_, obj, autogen_context):  # type: ignore[no-untyped-def]
    """Write UTCDateTime as a plain timezone-aware DateTime: migrations must not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
