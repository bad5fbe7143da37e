"""The landing folder: what has arrived, and what is ready to be ingested.

A sync (rsync, SMB, the twin) writes files while we look. A folder's new files are ready when
none of them changed for `settle_s` seconds, or when the folder's message log has just logged the
end of a run (an EPIC logger appends to its day files all day long: the run is complete, the day
is not). The cursor is the newest modification time handed on per folder, so a tick is a stat of
the tree and nothing is read twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from epi_ml.ingest.content import skip_reason
from epi_ml.ingest.segment import RUN_MESSAGE, TRANSFER_MESSAGE

MESSAGE_LOGS = ("Messages.txt",)
TAIL_BYTES = 16_384
FLUSH_GRACE_NS = 3_000_000_000  # loggers write the last rows a moment after the end message


@dataclass(frozen=True)
class LandedFile:
    path: Path
    size: int
    mtime_ns: int

    @property
    def folder(self) -> str:
        return str(self.path.parent)


@dataclass
class Readiness:
    ready: list[LandedFile] = field(default_factory=list)
    waiting: list[LandedFile] = field(default_factory=list)
    cursor: dict[str, int] = field(default_factory=dict)  # folder -> newest mtime handed on


def scan_landing(root: Path) -> list[LandedFile]:
    """Every file under `root` that could be tool data (hidden and temporary files left out)."""
    found: list[LandedFile] = []
    if not root.is_dir():
        return found
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                path = Path(entry.path)
                if skip_reason(path) is None:
                    stat = entry.stat()
                    found.append(LandedFile(path, stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda f: str(f.path))


def is_measurement_file(path: Path) -> bool:
    """Measurement tables (XRD, PL): a CSV or Parquet file with run_id, kind and value columns."""
    from epi_ml.readers import UnknownFormat, detect_format

    if path.suffix.lower() not in (".csv", ".parquet", ".pq", ".tsv"):
        return False
    try:
        return detect_format(path) == "measurements"
    except (UnknownFormat, OSError):
        return False


def ready_files(
    files: list[LandedFile],
    *,
    cursor: dict[str, int],
    now_ns: int,
    settle_s: float,
    wanted: Callable[[Path], bool] = lambda path: True,
) -> Readiness:
    """Split the `wanted` files changed since `cursor` into ready and waiting, and the cursor to
    keep. Files not wanted (the other sensor's) neither wait nor are read again."""
    by_folder: dict[str, list[LandedFile]] = {}
    for landed in files:
        if landed.mtime_ns > cursor.get(landed.folder, -1):
            by_folder.setdefault(landed.folder, []).append(landed)
    result = Readiness(cursor=dict(cursor))
    settle_ns = int(settle_s * 1e9)
    for folder, changed in sorted(by_folder.items()):
        mine = [f for f in changed if wanted(f.path)]
        quiet = all(now_ns - f.mtime_ns >= settle_ns for f in mine)
        if quiet or _run_just_ended(Path(folder), mine, cursor.get(folder, -1), now_ns):
            result.ready += mine
            result.cursor[folder] = max(f.mtime_ns for f in changed)
        else:
            result.waiting += mine
    existing = {f.folder for f in files}  # forget folders that are gone
    result.cursor = {k: v for k, v in result.cursor.items() if k in existing}
    return result


def landing_batch(
    root: Path, *, cursor: dict[str, int], measurements: bool, settle_s: float, now_ns: int | None = None
) -> Readiness:
    """What of the landing folder is ready for the log ingest or (`measurements`) for the
    measurement ingest, since `cursor` ({} = everything)."""
    return ready_files(
        scan_landing(root),
        cursor=cursor,
        now_ns=now_ns if now_ns is not None else time.time_ns(),
        settle_s=settle_s,
        wanted=lambda path: is_measurement_file(path) == measurements,
    )


def _run_just_ended(folder: Path, changed: list[LandedFile], since_ns: int, now_ns: int) -> bool:
    """The folder's message log changed since the cursor and its last line ends a run."""
    logs = [f for f in changed if f.path.name in MESSAGE_LOGS]
    if not logs or logs[0].mtime_ns <= since_ns or now_ns - logs[0].mtime_ns < FLUSH_GRACE_NS:
        return False
    return ends_a_run(last_line(logs[0].path))


def last_line(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def ends_a_run(line: str) -> bool:
    """`...,Recipe,Run MBE1-... end,-16777216` or `...,W1 moved from GC to MC_manip,...`."""
    parts = line.split(",")
    message = ",".join(parts[2:-1]) if len(parts) >= 4 else line
    run = RUN_MESSAGE.match(message.strip())
    if run and run["what"] in ("end", "aborted"):
        return True
    move = TRANSFER_MESSAGE.match(message.strip())
    return bool(move and move["source"] == "GC")
