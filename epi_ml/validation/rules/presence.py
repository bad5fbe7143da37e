"""Is every channel there, with values, under a name we know?"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.samples import UNPLACED, RunSamples


def incomplete_rows(sensors: pl.DataFrame) -> list[Finding]:
    """Rows without a time or a channel: they cannot be placed, so the other checks skip them."""
    count = sensors.select(UNPLACED.sum()).item()
    if not count:
        return []
    return [
        Finding(
            "incomplete_row",
            Severity.ERROR,
            f"{count} row(s) without a time or a channel name",
            hint="The reader produced rows it could not place (a timestamp that did not parse?); "
            "check the reader's findings and the raw file.",
            count=count,
        )
    ]


def empty_run(run: RunSamples) -> list[Finding]:
    if not run.table.is_empty():
        return []
    return [
        Finding(
            "empty_run",
            Severity.ERROR,
            "the run has no samples at all",
            hint="The upload held no readable channel; check the readers' findings and the files.",
        )
    ]


def missing_channels(run: RunSamples, expected: Iterable[str]) -> list[Finding]:
    return [
        Finding(
            "missing_channel",
            Severity.ERROR,
            f"expected channel {name} has no samples in this run",
            hint="Check that the tool logged it (its file is in the upload) and that the tag map "
            "names it; the run is quarantined until the channel is supplied or no longer expected.",
            channel=name,
        )
        for name in sorted(set(expected) - set(run.channels))
    ]


def empty_channels(run: RunSamples, expected: Iterable[str]) -> list[Finding]:
    """Channels whose every value is missing, NaN or infinite."""
    expected = set(expected)
    empty = (
        run.table.group_by("channel")
        .agg(pl.col("finite").any().alias("any_finite"), pl.len().alias("rows"))
        .filter(~pl.col("any_finite"))
        .sort("channel")
    )
    return [
        Finding(
            "empty_channel",
            Severity.ERROR if row["channel"] in expected else Severity.WARNING,
            f"{row['rows']} row(s) but no readable value",
            hint="The logger wrote the channel without numbers (sensor off or unconfigured); "
            "check the raw file.",
            channel=row["channel"],
            count=row["rows"],
        )
        for row in empty.iter_rows(named=True)
    ]


def unknown_tags(run: RunSamples) -> list[Finding]:
    return [
        Finding(
            "unknown_tag",
            Severity.INFO,
            f"vendor tag {name.removeprefix('raw:')!r} has no canonical name; kept as it is",
            hint="Add the tag to the tool's tag map (epi_ml/readers/tagmaps.py) to use it.",
            channel=name,
        )
        for name in run.channels
        if name.startswith("raw:")
    ]
