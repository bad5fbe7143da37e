"""One received file -> what it holds, as a table the lake keeps, with the readers' findings.

Kinds of content (`ParsedFile.kind`) and their tables:
    sensors       canonical long rows (time, channel, value): EPIC channel logs, wide CSV/Parquet,
                  RHEED exports that say when they were recorded
    shutters      canonical long rows of `<source>.shutter` (EPIC Shutters.txt)
    messages      time, caller, message, color (EPIC Messages.txt, message tables)
    fitting       cell, fit, order, bep_to_flux, coeffs (EPIC Fitting.txt)
    calibration   cell, taken_at + the scan's points (flux-calibration tables)
    rheed         time_s + intensity windows (a RHEED export without a start time: placed by
                  the run id in its name)
    measurements  run_id, layer_index, kind, value, uncertainty, measured_at (XRD, PL)
    recipe        name, sha256, the recipe YAML as run (matched to the run by its file name)
Files that are not tool data (notes, licences, the twin's ground truth) are `skipped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.findings import Finding, Severity, has_errors
from epi_ml.ingest.tools import ToolConfig, run_id_in_name
from epi_ml.readers import (
    CalibrationTable,
    EpicChannel,
    ReadResult,
    RheedTrace,
    UnknownFormat,
    detect_format,
    read_any,
    read_calibration_table,
    read_epic_channel,
    read_rheed_export,
)
from epi_ml.readers.naming import map_tags

SENSOR_KINDS = ("sensors", "shutters")
# Not tool data: kept out of the pipeline with a note, never quarantined.
SKIPPED_NAMES = frozenset({"manifest.json", "license", "license.txt", "readme", "readme.md"})
SKIPPED_SUFFIXES = frozenset({".py", ".md", ".json", ".log", ".tmp", ".part", ".swp", ".lock"})
RECIPE_SUFFIXES = frozenset({".yaml", ".yml"})
# The twin's ground truth of live runs (MBE1/truth/*.json) is for tests and benchmarks only.
SKIPPED_FOLDERS = frozenset({"truth"})


@dataclass
class ParsedFile:
    format: str  # what detect_format called it (or "recipe", "skipped")
    kind: str  # see the module docstring; "" when nothing could be read
    table: pl.DataFrame | None
    findings: list[Finding] = field(default_factory=list)
    run_ref: str | None = None  # a run the file is named after
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.kind != "" and not has_errors(self.findings)

    @property
    def time_span(self) -> tuple[datetime | None, datetime | None]:
        if self.table is None or "time" not in self.table.columns or self.table.is_empty():
            return None, None
        times = self.table.get_column("time")
        return times.min(), times.max()  # type: ignore[return-value]

    @property
    def channels(self) -> list[str]:
        if self.kind not in SENSOR_KINDS or self.table is None:
            return []
        return sorted(self.table.get_column("channel").unique().to_list())


def skip_reason(path: Path) -> str | None:
    """Why a file is not tool data, or None when it is to be read."""
    name = path.name.lower()
    if name.startswith(".") or name.startswith("~$"):
        return "a hidden or temporary file"
    if name in SKIPPED_NAMES or name.startswith(("license", "readme")):
        return "documentation, not tool data"
    if any(part in SKIPPED_FOLDERS for part in path.parts[-3:-1]):
        return "the digital twin's ground truth, not tool data"
    if path.suffix.lower() in SKIPPED_SUFFIXES:
        return f"a {path.suffix} file is not tool data"
    return None


# Formats whose reader returns a ReadResult, and the kind of content they hold.
TABLE_KINDS = {
    "epic_shutters": "shutters",
    "epic_messages": "messages",
    "messages": "messages",
    "epic_fitting": "fitting",
    "wide_csv": "sensors",
    "wide_parquet": "sensors",
    "measurements": "measurements",
}


def parse_file(path: Path, *, config: ToolConfig, original_name: str | None = None) -> ParsedFile:
    """Read `path` (the archived copy) with the tool's settings. Never raises for bad content:
    what is wrong is in the findings. `original_name`: the name the file landed under."""
    name = Path(original_name or path.name)
    run_ref = run_id_in_name(name)
    if name.suffix.lower() in RECIPE_SUFFIXES:
        return _recipe(path, run_ref)
    try:
        fmt = detect_format(path)
    except UnknownFormat as exc:
        return ParsedFile("unknown", "", None, [_unknown(path, str(exc))], run_ref)
    tz, tags = config.timezone, config.tag_mapping()
    if fmt == "epic_channel":
        return _epic_channel(read_epic_channel(path, tz=tz, tag_map=tags), tags, fmt, run_ref)
    if fmt == "calibration":
        return _calibration(read_calibration_table(path, tz=tz), fmt, run_ref)
    if fmt == "rheed":
        return _rheed(read_rheed_export(path, tz=tz), fmt, run_ref)
    read = read_any(path, tz=tz, tag_map=tags)
    assert isinstance(read, ReadResult), fmt
    return ParsedFile(fmt, TABLE_KINDS[fmt], read.frame, list(read.findings), run_ref)


def _epic_channel(
    read: EpicChannel, tags: dict[str, str], fmt: str, run_ref: str | None
) -> ParsedFile:
    """One channel log under its canonical name (its findings too, the tag kept in details)."""
    names = map_tags([read.tag], tags, file=str(read.path), map_name="the tool's tag map")
    channel = names.channels[read.tag]
    table = read.frame.select("time", pl.lit(channel, pl.String).alias("channel"), "value")
    findings = [
        replace(f, channel=channel, details={**f.details, "tag": read.tag})
        if f.channel == read.tag
        else f
        for f in read.findings
    ]
    return ParsedFile(fmt, "sensors", table, findings + names.findings, run_ref, {"tag": read.tag})


def _calibration(read: CalibrationTable, fmt: str, run_ref: str | None) -> ParsedFile:
    table = read.points.with_columns(
        cell=pl.lit(read.cell, pl.String), taken_at=pl.lit(read.taken_at, SENSOR_SCHEMA["time"])
    )
    details = {"cell": read.cell, "taken_at": read.taken_at.isoformat() if read.taken_at else None}
    return ParsedFile(fmt, "calibration", table, list(read.findings), run_ref, details)


def _rheed(read: RheedTrace, fmt: str, run_ref: str | None) -> ParsedFile:
    findings = list(read.findings)
    windows = [c for c in read.frame.columns if c != "time_s"]
    if read.started_at is None or not windows:
        if read.started_at is None and run_ref is None and not has_errors(findings):
            findings.append(
                Finding(
                    "rheed_not_placed",
                    Severity.WARNING,
                    "the RHEED export says neither when it was recorded nor which run it is; it "
                    "is kept but cannot be matched to a run",
                    hint="Name the export after its run (<run id>_rheed.csv) or export it with "
                    "its start time.",
                    file=str(read.path),
                )
            )
        return ParsedFile(fmt, "rheed", read.frame, findings, run_ref)
    # Placed in time: the first window is the specular spot (RHEED.I), the others RHEED.I2, ...
    start = read.started_at
    names = {w: "RHEED.I" if i == 0 else f"RHEED.I{i + 1}" for i, w in enumerate(windows)}
    long = (
        read.frame.unpivot(index="time_s", on=windows, variable_name="window", value_name="value")
        .select(
            (pl.lit(start) + pl.duration(microseconds=(pl.col("time_s") * 1e6).round())).alias("time"),
            pl.col("window").replace_strict(names).alias("channel"),
            pl.col("value").cast(pl.Float64),
        )
        .cast(SENSOR_SCHEMA)  # type: ignore[arg-type]
    )
    return ParsedFile(fmt, "sensors", long, findings, run_ref, {"windows": names})


def _recipe(path: Path, run_ref: str | None) -> ParsedFile:
    from epi_ml.twin.recipe import RecipeError, parse_recipe  # the product's recipe format

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        recipe = parse_recipe(data, source=path.name)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecipeError) as exc:
        finding = Finding(
            "bad_recipe",
            Severity.ERROR,
            f"not a usable recipe: {exc}",
            hint="Check the YAML against the recipe format (docs/twin.md \"Recipes\").",
            file=str(path),
        )
        return ParsedFile("recipe", "", None, [finding], run_ref)
    findings = []
    if run_ref is None:
        findings.append(
            Finding(
                "recipe_not_matched",
                Severity.INFO,
                "the recipe file is not named after a run (<run id>.yaml); kept in the archive",
                file=str(path),
            )
        )
    details = {"recipe": recipe.name, "sha256": recipe.sha256}
    table = pl.DataFrame({"name": [recipe.name], "sha256": [recipe.sha256], "yaml": [recipe.to_yaml()]})
    return ParsedFile("recipe", "recipe", table, findings, run_ref, details)


def _unknown(path: Path, message: str) -> Finding:
    return Finding(
        "unknown_format",
        Severity.ERROR,
        message,
        hint="Check that this is a tool export; epi-ml reads the formats listed.",
        file=str(path),
    )
