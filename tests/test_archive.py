"""The raw-file archive: content-addressed, idempotent, atomic."""

from __future__ import annotations

from pathlib import Path

from epi_ml.ingest.archive import Archive, sha256_file


def test_same_bytes_are_kept_once_and_never_changed(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    first = tmp_path / "Ga.PID.MV.txt"
    first.write_bytes(b"'EPIC Ga.PID.MV Log File\r\n\r\n'Date,Ga.PID.MV\r\n")
    kept = archive.keep(first)
    assert not kept.already_there
    assert kept.sha256 == sha256_file(first)
    assert kept.path.read_bytes() == first.read_bytes()

    copy = tmp_path / "renamed.txt"  # same bytes under another name: still one entry
    copy.write_bytes(first.read_bytes())
    again = archive.keep(copy)
    assert again.already_there and again.path == kept.path

    first.write_bytes(b"changed at the source")  # the archive keeps what was received
    assert kept.path.read_bytes().startswith(b"'EPIC")
    changed = archive.keep(first)
    assert changed.sha256 != kept.sha256 and not changed.already_there
    assert len(list((tmp_path / "archive").rglob("*.txt"))) == 2
