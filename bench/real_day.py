"""The real EPIC day the ingest benchmarks read: the full day from shared/ (next to or inside the
checkout) when it is there, else the trimmed copy of the tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAYS = (
    ROOT / "shared" / "data" / "epic-mbe8-2023-06-12",
    ROOT.parent / "shared" / "data" / "epic-mbe8-2023-06-12",
    ROOT / "tests" / "data" / "epic-mbe8-2023-06-12-trimmed",
)
EVENT_FILES = {"shutters.txt", "messages.txt", "fitting.txt"}


def real_day() -> Path:
    return next(d for d in DAYS if d.is_dir())
