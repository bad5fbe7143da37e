"""Which reader a file needs, from its first bytes (and its name where the content cannot tell)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from epi_ml.readers.calibration import FILE_NAME as CALIBRATION_NAME
from epi_ml.readers.delimited import sniff_separator, split_header
from epi_ml.readers.naming import is_canonical
from epi_ml.readers.source import UTF8_BOM, UTF16_BOMS
from epi_ml.readers.tables import PARQUET_SUFFIXES, find_time_column

FORMATS = (
    "epic_day",
    "epic_channel",
    "epic_shutters",
    "epic_messages",
    "epic_fitting",
    "wide_csv",
    "wide_parquet",
    "calibration",
    "rheed",
    "measurements",
    "messages",
)
EPIC_TITLES = (
    ("Shutter Log", "epic_shutters"),
    ("Message Log", "epic_messages"),
    ("Fitting Config", "epic_fitting"),
)
EPIC_ROW = re.compile(r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}(\.\d+)?[,;\t][^,;\t]*$")
# A RHEED export's intensity columns (a canonical channel like RHEED.I makes it a wide sensor file).
INTENSITY_NAME = re.compile(r"intensity|sensor|window|spec|rheed|^i\d*$", re.IGNORECASE)
# What a file that says nothing by its content is, by its name (the reader then reports why).
BY_SUFFIX = {".csv": "wide_csv", ".asc": "rheed", ".parquet": "wide_parquet", ".pq": "wide_parquet"}


class UnknownFormat(ValueError):
    """The file is not in a format epi-ml reads."""


def detect_format(path: str | Path) -> str:
    """One of FORMATS; raises UnknownFormat (with what the file starts with) when none fits."""
    path = Path(path)
    if path.is_dir():
        return "epic_day"
    if not path.is_file():
        raise UnknownFormat(f"{path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _parquet_kind(path)
    lines = _first_lines(path)
    found = _by_content(lines, path)
    if found:
        return found
    if path.suffix.lower() in BY_SUFFIX and not any(line.strip() for line in lines):
        return BY_SUFFIX[path.suffix.lower()]  # empty or binary: its reader says what is wrong
    if path.suffix.lower() == ".txt" and not any(line.strip() for line in lines):
        return "calibration" if CALIBRATION_NAME.match(path.name) else "epic_channel"
    first = next((line for line in lines if line.strip()), "")
    raise UnknownFormat(
        f"{path.name}: not a format epi-ml reads (it starts with {first[:80]!r}); readable "
        "formats: "
        "EPIC logs and day folders, wide CSV/Parquet (a time column + one column per channel), "
        "flux-calibration tables (<cell>\\tBFM.P\\tMBE.P), RHEED intensity exports, measurement "
        "CSVs (run_id,layer_index,kind,value,...)"
    )


def _table_kind(names: list[str]) -> str | None:
    """What a table with these columns holds, or None when its columns say nothing."""
    lowered = {n.strip().lower() for n in names}
    if {"run_id", "kind", "value"} <= lowered:
        return "measurements"
    time_column = find_time_column(names)
    if time_column is not None and lowered & {"message", "text"}:
        return "messages"
    return None


def _parquet_kind(path: Path) -> str:
    try:
        names = list(pl.read_parquet_schema(path))
    except Exception:  # noqa: BLE001 - unreadable: the wide reader reports why
        return "wide_parquet"
    return _table_kind(names) or "wide_parquet"


def _first_lines(path: Path, size: int = 8192) -> list[str]:
    with path.open("rb") as handle:
        head = handle.read(size)
    if head.startswith(UTF16_BOMS):
        text = head.decode("utf-16", errors="replace")
    elif b"\x00" in head[:1024]:
        return []  # binary: nothing to read here
    else:
        text = head.removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    return [
        line.rstrip("\r")
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:40]
    ]


def _by_content(lines: list[str], path: Path) -> str | None:
    content = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        return None
    first = content[0].strip()
    if first.lstrip("'").startswith("EPIC "):
        return next((kind for title, kind in EPIC_TITLES if title in first), "epic_channel")
    if first.lower().startswith("recorded at"):
        return "rheed"
    if EPIC_ROW.match(first):
        return "epic_channel"  # an EPIC log that lost its header
    separator = sniff_separator(content[:20], preferred="\t" if "\t" in first else ",")
    header = split_header(first, separator) if separator in first else re.split(r"\s{2,}", first)
    names = [n.strip().lower() for n in header]
    if table_kind := _table_kind(header):
        return table_kind
    if len(names) >= 3 and names[1] == "bfm.p":
        return "calibration"
    if CALIBRATION_NAME.match(path.name) and separator == "\t":
        return "calibration"  # a calibration file without header
    time_column = find_time_column(header)
    if time_column is not None:
        others = [n.strip() for n in header if n != time_column]
        intensities = others and all(
            INTENSITY_NAME.search(n) and not is_canonical(n) for n in others
        )
        return "rheed" if path.suffix.lower() == ".asc" or intensities else "wide_csv"
    return None
