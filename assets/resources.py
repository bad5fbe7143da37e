"""Dagster resources: the epi-ml home folder and store, configured from the same settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from sqlalchemy import Engine

from epi_ml.ingest.batch import open_context
from epi_ml.ingest.files import IngestContext
from epi_ml.settings import Settings, get_settings
from epi_ml.store import Lake, engine_for


class EpiMlResource(dg.ConfigurableResource):
    """Where epi-ml keeps its state. Empty fields fall back to EPI_ML_* environment settings."""

    home: str = ""
    database_url: str = ""

    def settings(self) -> Settings:
        updates: dict[str, object] = {}
        if self.home:
            updates["home"] = Path(self.home)
        if self.database_url:
            updates["database_url"] = self.database_url
        # A new Settings so that defaults derived from the home (SQLite URL, ...) follow it.
        return Settings(**updates) if updates else get_settings()

    @property
    def engine(self) -> Engine:
        return engine_for(self.settings().database_url)

    @property
    def lake(self) -> Lake:
        return Lake(self.settings().lake_dir)

    def ingest_context(self) -> IngestContext:
        """Home, store (migrated to head) and tools.yaml, as epi-ml ingest uses them."""
        return open_context(self.settings())
