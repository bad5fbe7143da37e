"""Did the shutters do what the recipe says?"""

from __future__ import annotations

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.context import shutter_intervals
from epi_ml.validation.episodes import duration, when
from epi_ml.validation.intervals import intersect, seconds
from epi_ml.validation.samples import RunSamples
from epi_ml.validation.schedule import ScheduleStep, steps_frame


def shutter_schedule_mismatches(run: RunSamples, steps: list[ScheduleStep]) -> list[Finding]:
    """Inside each recipe step, shutters open that the recipe has closed or closed that it has
    open. Checked: the recipe's sources and every logged shutter of a cell (a source with a `.T`
    channel), so a stray open shutter is caught too. Edges within shutter_edge_tolerance_s of a
    step boundary are timing jitter; a mismatch over shutter_error_fraction of the step means the
    layer is not what the recipe says (ERROR), a shorter one is a late or early edge (WARNING)."""
    if not steps or run.end is None:
        return []
    limits = run.limits
    states = shutter_intervals(run)
    logged = set(states.get_column("key").unique())
    channels = set(run.channels)
    in_recipe = set().union(*(step.open_sources for step in steps))
    checked = (logged & in_recipe) | {s for s in logged if s != "sub" and f"{s}.T" in channels}
    edge = pl.duration(microseconds=int(limits.shutter_edge_tolerance_s * 1e6))
    expected = (
        steps_frame(steps, checked)
        .with_columns(step_s=seconds(), start=pl.col("start") + edge, end=pl.col("end") - edge)
        .filter(pl.col("end") > pl.col("start"))
    )
    wrong = (
        intersect(expected, states)
        .filter(pl.col("state") != pl.col("expected_open"))
        .group_by("step", "name", "key", "expected_open", "step_s")
        .agg(
            pl.col("start").min(),
            pl.col("end").max(),
            seconds().sum().alias("wrong_s"),
            pl.len().alias("pieces"),
        )
        .sort("step", "key")
    )
    findings = []
    for row in wrong.iter_rows(named=True):
        severe = row["wrong_s"] >= limits.shutter_error_fraction * row["step_s"]
        should, was = ("open", "closed") if row["expected_open"] else ("closed", "open")
        findings.append(
            Finding(
                "shutter_mismatch",
                Severity.ERROR if severe else Severity.WARNING,
                f"{row['key']} shutter was {was} for {duration(row['wrong_s'])} of "
                f"{row['name']} ({duration(row['step_s'])}) where the recipe has it {should}: "
                f"{when(row['start'], row['end'])}",
                hint=(
                    "The grown structure differs from the recipe, so the recipe is not a valid "
                    "label for this run: check the shutter log and the recipe."
                    if severe
                    else "A late or early shutter edge, too short to change the layer much."
                ),
                channel=f"{row['key']}.shutter",
                start=row["start"],
                end=row["end"],
                count=row["pieces"],
                details={
                    "step": row["step"],
                    "step_name": row["name"],
                    "expected_open": row["expected_open"],
                    "mismatch_s": row["wrong_s"],
                    "step_s": row["step_s"],
                },
            )
        )
    return findings
