"""Shared helpers of the ingest tests: a small twin campaign, copies of it into a home's landing
folder, and cutting EPIC day files back to what a logger had written at some moment."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from epi_ml.ingest.batch import open_context
from epi_ml.ingest.files import IngestContext
from epi_ml.settings import get_settings, reset_settings_cache
from epi_ml.store import read_session
from epi_ml.store.models import GrowthRun

REAL_DAY = Path(__file__).parent / "data" / "epic-mbe8-2023-06-12-trimmed"
CAMPAIGN_SEED = 11  # 3 runs on MBE1: two on 2026-01-05 (same day files), one on 2026-01-06


def make_campaign(out: Path, runs: int = 3) -> dict:
    from epi_ml.twin import simulate_campaign

    return simulate_campaign(out, runs=runs, seed=CAMPAIGN_SEED, tools=1, workers=1)


def land(campaign: Path, home: Path) -> Path:
    """The campaign copied to `<home>/landing/twin`, as the twin asset writes it."""
    target = home / "landing" / "twin"
    shutil.copytree(campaign, target)
    return target


def context(database_url: str | None = None, monkeypatch=None) -> IngestContext:  # type: ignore[no-untyped-def]
    if database_url and monkeypatch is not None:
        monkeypatch.setenv("EPI_ML_DATABASE_URL", database_url)
    reset_settings_cache()
    return open_context(get_settings())


def runs(ctx: IngestContext) -> dict[str, GrowthRun]:
    with read_session(ctx.engine) as session:
        found = {r.id: r for r in session.scalars(select(GrowthRun))}
        session.expunge_all()
    return found


def epic_time(row: bytes) -> datetime | None:
    try:
        return datetime.strptime(row[:23].decode(), "%d/%m/%Y %H:%M:%S.%f").replace(tzinfo=UTC)
    except (ValueError, UnicodeDecodeError):
        return None


def cut_day(folder: Path, until: datetime) -> None:
    """Every file of an EPIC day folder as it was at `until` (rows after it removed): what a
    logger that appends all day has written by then, a byte prefix of the final file."""
    for path in folder.iterdir():
        data = path.read_bytes()
        lines = data.split(b"\r\n")
        kept = [line for line in lines if (t := epic_time(line)) is None or t <= until]
        while kept and kept[-1] == b"":
            kept.pop()
        path.write_bytes(b"\r\n".join(kept) + b"\r\n")
