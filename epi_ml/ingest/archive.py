"""The archive: raw bytes of every file received, by SHA-256, never changed.

`archive/<aa>/<sha256>/<original name>` keeps the name for humans and the hash for identity; the
same bytes received twice land on the same path (a no-op). Files are copied atomically, so a crash
never leaves a partial archive entry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
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
    prefix_sha256: str | None = None  # hash of the first `prefix_bytes` bytes, when asked for


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

    def copy_in(
        self, source: Path, prefix_bytes: int | None = None, *, sync: bool = True
    ) -> ArchivedFile:
        """Copy `source` into the archive in one pass, hashing what is copied: a log the tool is
        still appending to is archived as the bytes read, and those are the bytes the hash names.
        `prefix_bytes`: also hash the first that many bytes (to tell an appended log from a
        rewritten one). `sync=False`: the caller flushes a batch at once (store.lake.make_durable)."""
        source = Path(source)
        self.root.mkdir(parents=True, exist_ok=True)
        digest, prefix = hashlib.sha256(), hashlib.sha256()
        limit = prefix_bytes if prefix_bytes is not None else -1
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming.", suffix=".tmp", dir=self.root)
        tmp, size = Path(tmp_name), 0
        try:
            with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    if size < limit:
                        prefix.update(chunk[: limit - size])
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                if sync:
                    os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            prefix_sha = prefix.hexdigest() if 0 <= limit <= size else None
            target = self.path_for(sha256, source.name)
            kept = [p for p in target.parent.glob("*") if not p.name.startswith(".")]
            if kept:
                tmp.unlink()
                return ArchivedFile(sha256, kept[0], size, True, prefix_sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return ArchivedFile(sha256, target, size, False, prefix_sha)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

