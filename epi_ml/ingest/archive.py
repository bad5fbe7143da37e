"""The archive: raw bytes of every file received, by SHA-256, never changed.

`archive/<aa>/<sha256>/<original name>` keeps the name for humans and the hash for identity; the
same bytes received twice land on the same path (a no-op). Files are copied atomically, so a crash
never leaves a partial archive entry.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from epi_ml.store.lake import atomic_write

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ArchivedFile:
    sha256: str
    path: Path  # where the bytes are kept
    size_bytes: int
    already_there: bool


class Archive:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, name: str) -> Path:
        return self.root / sha256[:2] / sha256 / Path(name).name

    def keep(self, source: Path, sha256: str | None = None) -> ArchivedFile:
        """Copy `source` into the archive (unless the same bytes are already there)."""
        source = Path(source)
        sha256 = sha256 or sha256_file(source)
        target = self.path_for(sha256, source.name)
        size = source.stat().st_size
        existing = list(target.parent.glob("*")) if target.parent.exists() else []
        kept = [p for p in existing if not p.name.startswith(".")]
        if kept:
            return ArchivedFile(sha256, kept[0], size, already_there=True)
        atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
        return ArchivedFile(sha256, target, size, already_there=False)
