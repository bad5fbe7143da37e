"""Did the shutters do what the recipe says, and what the log says?"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.context import shutter_intervals
from epi_ml.validation.episodes import duration, when
from epi_ml.validation.intervals import intersect, seconds
from epi_ml.validation.samples import RunSamples
from epi_ml.validation.schedule import ScheduleStep, steps_frame
from epi_ml.validation.shutter_load import (
    LateClose,
    OpenEstimate,
    ShutterEvidence,
    shutter_evidence,
)


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


def stuck_shutters(run: RunSamples, steps: list[ScheduleStep]) -> list[Finding]:
    """Shutters the log has open that did not physically open, and closes that came late, from
    each group-III cell's heat load (epi_ml.validation.shutter_load): a cell draws more heater
    power while its shutter is really open. A shutter open for less than half of a layer it was
    logged open in means the layer did not grow as logged (ERROR, one finding per cell: the
    layers in its details); for part of it, a WARNING; a cell still drawing open-shutter power
    after the commanded close (a late close, with the seconds) is a WARNING."""
    if not steps or run.end is None:
        return []
    evidence = shutter_evidence(
        run.table.filter(pl.col("usable")).select("time", "channel", "value"),
        [(step.start, step.end) for step in steps],
        active_cell_min_t=run.limits.active_cell_min_T,
    )
    findings = []
    for cell in sorted({e.cell for e in evidence.estimates}):
        for stuck in (True, False):
            hits = [
                e for e in evidence.estimates
                if e.cell == cell and (e.stuck if stuck else e.partly_open)
            ]  # fmt: skip
            if hits:
                findings.append(_stuck_finding(cell, stuck, hits, steps, evidence))
    for cell in sorted({late.cell for late in evidence.late_closes}):
        lates = [late for late in evidence.late_closes if late.cell == cell]
        findings.append(_late_finding(cell, lates, steps))
    return findings


def _stuck_finding(
    cell: str,
    stuck: bool,
    hits: list[OpenEstimate],
    steps: list[ScheduleStep],
    evidence: ShutterEvidence,
) -> Finding:
    layers = [
        {
            "step": e.window + 1,
            "step_name": steps[e.window].name or f"step {e.window + 1}",
            "logged_open_s": round(e.commanded_open_s, 1),
            "open_fraction": round(float(e.fraction or 0.0), 3),
            "vs_closed_level": round(float(e.open_fraction or 0.0), 3),
            "vs_open_neighbours": None if e.local_fraction is None else round(e.local_fraction, 3),
            "sigma": round(float(e.sigma or 0.0), 3),
            "power_step_pct": round(float(e.power_step_pct or 0.0), 3),
        }
        for e in hits
    ]
    names = ", ".join(
        f"{layer['step_name']} (open ≈ {max(0.0, layer['open_fraction']):.0%} of "
        f"{duration(layer['logged_open_s'])})"
        for layer in layers
    )
    first, last = steps[hits[0].window], steps[hits[-1].window]
    step_pct = evidence.power_step_pct.get(cell, 0.0)
    return Finding(
        "stuck_shutter",
        Severity.ERROR if stuck else Severity.WARNING,
        f"{cell} shutter logged open but the cell drew {'no' if stuck else 'too little'} "
        f"open-shutter power (its heater step while open is {step_pct:.2f} % in this run): "
        f"{names}",
        hint=(
            "The shutter did not open (stuck or a failed actuator): those layers grew without "
            f"{cell}, so they are not what the log says. Check the shutter and the layers' XRD "
            "before the run is used."
            if stuck
            else f"The shutter was open for only part of the layer: less {cell} grew than logged "
            "(the layer features count the estimated open time)."
        ),
        channel=f"{cell}.shutter",
        start=first.start,
        end=last.end,
        count=len(hits),
        details={"layers": layers, "power_step_pct": round(step_pct, 3)},
    )


def _late_finding(cell: str, lates: list[LateClose], steps: list[ScheduleStep]) -> Finding:
    closes = [
        {
            "closed_at": late.closed_at.isoformat(),
            "late_s": round(late.seconds, 1),
            "at_least": late.at_least,
            "sigma_s": round(late.sigma, 1),
            "step": None if late.window is None else late.window + 1,
            "step_name": None if late.window is None else steps[late.window].name,
        }
        for late in lates
    ]
    words = ", ".join(
        f"{'at least' if c['at_least'] else '≈'} {c['late_s']:.0f} s after "
        f"{c['step_name'] or 'the close at ' + c['closed_at']}"
        for c in closes
    )
    return Finding(
        "shutter_late_close",
        Severity.WARNING,
        f"{cell} kept drawing open-shutter power after the commanded close: {words}",
        hint=f"The shutter closed late (sticking): that much more {cell} went into the next layer "
        "or interrupt (the layer features count it). Check the shutter's actuator.",
        channel=f"{cell}.shutter",
        start=lates[0].closed_at,
        end=lates[-1].closed_at + timedelta(seconds=lates[-1].seconds),
        count=len(lates),
        details={"closes": closes},
    )
