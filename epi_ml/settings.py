"""One settings object, read from environment variables (and a `.env` file when present).

| variable              | default                                  |
|-----------------------|------------------------------------------|
| EPI_ML_HOME           | ./.epi-ml                                |
| EPI_ML_DATABASE_URL   | sqlite:///<EPI_ML_HOME>/epi-ml.db        |
| DAGSTER_HOME          | <EPI_ML_HOME>/dagster                    |
| EPI_ML_DEVICE         | auto (cuda when available, else cpu)     |
| EPI_ML_LANDING_SETTLE_S | 30 (seconds a landed file must be quiet) |
| EPI_ML_INGEST_WORKERS | min(4, CPUs): files ingested at a time    |
| EPI_ML_DASH_USER      | (unset: writes need it when exposed)     |
| EPI_ML_DASH_PASSWORD  | (unset)                                  |

Everything the product keeps lives under the home folder, so one folder removes it all.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EPI_ML_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".epi-ml"), description="root of all state")
    database_url: str = Field(default="", description="SQLAlchemy URL; SQLite under home if empty")
    dagster_home: Path = Field(
        default=Path(""), validation_alias="DAGSTER_HOME", description="Dagster instance folder"
    )
    device: str = Field(default="auto", description="torch device: auto, cpu, cuda, cuda:1")
    ingest_workers: int = Field(
        default=min(4, os.cpu_count() or 1), ge=1, le=64,
        description="files ingested at a time (threads; memory grows with the largest file each)",
    )
    landing_settle_s: float = Field(
        default=30.0, ge=0, description="a landed file is ingested once unchanged this long"
    )
    dash_user: str | None = None
    dash_password: SecretStr | None = None
    dagster_url: str = Field(
        default="http://127.0.0.1:3000", description="Dagster UI address the dashboard links to"
    )

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'epi-ml.db'}"
        if not str(self.dagster_home) or str(self.dagster_home) == ".":
            self.dagster_home = self.home / "dagster"
        self.dagster_home = self.dagster_home.expanduser().resolve()
        return self

    # Folders under the home. Created on demand by `ensure_home`.
    @property
    def landing_dir(self) -> Path:
        """Where tool logs land (watched by the ingest sensor)."""
        return self.home / "landing"

    @property
    def archive_dir(self) -> Path:
        """Raw bytes of every ingested file, content-addressed, never changed."""
        return self.home / "archive"

    @property
    def quarantine_dir(self) -> Path:
        """Reasons for quarantined inputs (the bytes stay in the archive)."""
        return self.home / "quarantine"

    @property
    def lake_dir(self) -> Path:
        """Parquet lake: time series, one file set per run."""
        return self.home / "lake"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def ensure_home(self) -> None:
        for folder in (
            self.home,
            self.landing_dir,
            self.archive_dir,
            self.quarantine_dir,
            self.lake_dir,
            self.models_dir,
            self.reports_dir,
            self.dagster_home,
        ):
            folder.mkdir(parents=True, exist_ok=True)

    def export_dagster_home(self) -> None:
        """Point Dagster at the instance under our home (child processes inherit it)."""
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """For tests and commands that change the environment."""
    get_settings.cache_clear()
