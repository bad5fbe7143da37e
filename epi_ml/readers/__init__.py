"""Readers: real tool formats -> the canonical long sensor table (epi_ml.channels.SENSOR_SCHEMA).

    detect_format(path)        "epic_day", "epic_channel", "wide_csv", "calibration", ... (FORMATS)
    read_any(path, tz=...)     the reader detect_format picks; an unknown format is an ERROR finding
    read_epic_day(folder)      EpicDay: sensors, shutters, messages, fittings, findings, files
    read_epic_channel(path)    EpicChannel: tag, frame (time, value), findings
    read_wide(path)            ReadResult: sensors (long table), findings
    read_calibration_table(p)  CalibrationTable: cell, taken_at, points, findings
    read_rheed_export(path)    RheedTrace: frame (time_s + windows), started_at, findings
    read_measurements(path)    ReadResult: frame (run_id, layer_index, kind, value, ...), findings
    read_messages(path)        ReadResult: frame (time, caller, message, color) from CSV/Parquet

No reader raises on a bad file: what is wrong is a Finding (epi_ml.findings) with file, line,
channel and what to do; ERROR means the input is unusable, WARNING that part of it was left out or
guessed, INFO where something worth knowing is (rows kept for validation to judge). Bad arguments
(an unknown time zone) are the caller's error and raise ValueError.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.readers.calibration import CalibrationTable, read_calibration_table
from epi_ml.readers.detect import FORMATS, UnknownFormat, detect_format
from epi_ml.readers.epic import EpicChannel, EpicDay, read_epic_channel, read_epic_day
from epi_ml.readers.epic_events import read_epic_messages, read_epic_shutters
from epi_ml.readers.epic_fitting import EpicFitting, read_epic_fitting
from epi_ml.readers.measurements import MEASUREMENT_SCHEMA, read_measurements
from epi_ml.readers.messages import read_messages
from epi_ml.readers.result import ReadResult
from epi_ml.readers.rheed import RheedTrace, read_rheed_export
from epi_ml.readers.timestamps import DateOrder
from epi_ml.readers.wide import read_wide

__all__ = [
    "FORMATS",
    "MEASUREMENT_SCHEMA",
    "CalibrationTable",
    "EpicChannel",
    "EpicDay",
    "EpicFitting",
    "ReadResult",
    "RheedTrace",
    "UnknownFormat",
    "detect_format",
    "read_any",
    "read_calibration_table",
    "read_epic_channel",
    "read_epic_day",
    "read_epic_fitting",
    "read_epic_messages",
    "read_epic_shutters",
    "read_measurements",
    "read_messages",
    "read_rheed_export",
    "read_wide",
]

AnyRead = EpicDay | EpicChannel | ReadResult | CalibrationTable | RheedTrace


def read_any(
    path: str | Path,
    *,
    tz: str = "UTC",
    tag_map: Mapping[str, str] | None = None,
    date_order: DateOrder | None = None,
) -> AnyRead:
    """Read `path` with the reader its format needs. `tz`: the zone of times written without one;
    `tag_map`: vendor tag -> channel for sensor files; `date_order`: "dmy"/"mdy" for slashed dates
    the file itself cannot settle. A file in no known format gives a ReadResult with an ERROR."""
    try:
        kind = detect_format(path)
    except UnknownFormat as exc:
        finding = Finding(
            "unknown_format",
            Severity.ERROR,
            str(exc),
            hint="Check that this is a tool export; epi-ml reads the formats listed.",
            file=str(path),
        )
        return ReadResult(pl.DataFrame(), [finding], Path(path))
    if kind == "epic_day":
        return read_epic_day(path, tag_map=tag_map, tz=tz)
    if kind == "epic_channel":
        return read_epic_channel(path, tz=tz, tag_map=tag_map)
    if kind == "epic_shutters":
        return read_epic_shutters(path, tz=tz)
    if kind == "epic_messages":
        return read_epic_messages(path, tz=tz)
    if kind == "epic_fitting":
        fittings, findings = read_epic_fitting(path)
        frame = pl.DataFrame(
            [vars(f) for f in fittings.values()],
            schema={
                "cell": pl.String,
                "fit": pl.String,
                "order": pl.Int64,
                "bep_to_flux": pl.Float64,
                "coeffs": pl.List(pl.Float64),
            },
        )
        return ReadResult(frame, findings, Path(path))
    if kind in ("wide_csv", "wide_parquet"):
        return read_wide(path, tag_map=tag_map, tz=tz, date_order=date_order)
    if kind == "calibration":
        return read_calibration_table(path, tz=tz)
    if kind == "rheed":
        return read_rheed_export(path, tz=tz, date_order=date_order)
    if kind == "messages":
        return read_messages(path, tz=tz, date_order=date_order)
    return read_measurements(path, tz=tz, date_order=date_order)
