"""What the tool was doing, derived from the run's own channels: when a cell was growing, when a
gas source was flowing, what a channel's setpoint was. Checks use this to tell normal behaviour
(a flat reading of an idle cell, a pressure rise while arsenic flows) from faults."""

from __future__ import annotations

import polars as pl

from epi_ml.validation.intervals import intersect, state_intervals, union
from epi_ml.validation.samples import RunSamples

ANY_CELL = "*"  # activity key: any cell growing

SHUTTER_OPEN = pl.col("value") >= 0.5


def shutter_intervals(run: RunSamples) -> pl.DataFrame:
    """Shutter state spans: key = source (`Ga`), state = open. Unreadable samples are skipped."""
    shutters = run.table.filter(pl.col("channel").str.ends_with(".shutter") & pl.col("usable"))
    return state_intervals(shutters, SHUTTER_OPEN, until=run.end).with_columns(
        key=pl.col("key").str.replace(r"\.shutter$", "")
    )


def growth_activity(run: RunSamples) -> pl.DataFrame:
    """Spans in which a cell was growing: its shutter open and the cell at least
    `active_cell_min_T` hot (key = source), and their union (key = ANY_CELL)."""
    channels = set(run.channels)
    cells = [
        source
        for source in {c.removesuffix(".shutter") for c in channels if c.endswith(".shutter")}
        if source != "sub" and f"{source}.T" in channels
    ]
    if not cells:
        return _empty_intervals(run)
    opened = shutter_intervals(run).filter(pl.col("state")).drop("state")
    temperatures = run.table.filter(
        pl.col("channel").is_in([f"{cell}.T" for cell in cells]) & pl.col("usable")
    )
    hot = (
        state_intervals(
            temperatures, pl.col("value") >= run.limits.active_cell_min_T, until=run.end
        )
        .filter(pl.col("state"))
        .with_columns(key=pl.col("key").str.replace(r"\.T$", ""))
        .drop("state")
    )
    per_cell = union(intersect(opened, hot))
    return pl.concat([per_cell, union(per_cell.with_columns(key=pl.lit(ANY_CELL)))])


def gas_flow(run: RunSamples) -> pl.DataFrame:
    """Spans in which a gas source (As, N, ...) was open, by shutter or valve, each stretched by
    the pump-down time after it closed (key = ANY_CELL)."""
    limits = run.limits
    sources = list(limits.gas_sources)
    shutters = shutter_intervals(run).filter(pl.col("key").is_in(sources) & pl.col("state"))
    valves = run.table.filter(
        pl.col("channel").is_in([f"{s}.valve" for s in sources]) & pl.col("usable")
    )
    valve_open = state_intervals(
        valves, pl.col("value") > limits.gas_valve_open_pct, until=run.end
    ).filter(pl.col("state"))
    flowing = pl.concat([shutters.drop("state"), valve_open.drop("state")])
    return union(
        flowing.with_columns(
            key=pl.lit(ANY_CELL), end=pl.col("end") + pl.duration(seconds=limits.gas_pumpdown_s)
        )
    )


def setpoint_spans(run: RunSamples) -> pl.DataFrame:
    """Spans of constant setpoint, keyed by the measured channel (`Ga.T` for `Ga.T_set`):
    key, start, end, state (= the setpoint). Ramping setpoints give one span per sample."""
    present = set(run.channels)
    setpoints = run.table.filter(
        pl.col("channel").is_in(
            [c for c in present if c.endswith("_set") and c.removesuffix("_set") in present]
        )
        & pl.col("usable")
    )
    return state_intervals(setpoints, pl.col("value"), until=run.end).with_columns(
        key=pl.col("key").str.replace(r"_set$", "")
    )


def with_setpoints(run: RunSamples, channels: list[str]) -> pl.DataFrame:
    """Usable samples of those `channels` that have a `<channel>_set` partner, each with the
    setpoint in force (`setpoint`) and when it was set (`setpoint_since`)."""
    spans = setpoint_spans(run).select(
        pl.col("key").alias("channel"),
        pl.col("start").alias("setpoint_since"),
        pl.col("state").alias("setpoint"),
    )
    measured = run.table.filter(
        pl.col("channel").is_in(spans.get_column("channel").unique().to_list())
        & pl.col("channel").is_in(channels)
        & pl.col("usable")
    )
    return (
        measured.sort("time")
        .join_asof(
            spans.sort("setpoint_since"),
            left_on="time",
            right_on="setpoint_since",
            by="channel",
            strategy="backward",
            check_sortedness=False,  # both sorted by time just above
        )
        .sort("channel", "time")
    )


def _empty_intervals(run: RunSamples, **extra: type[pl.DataType]) -> pl.DataFrame:
    time_type = run.table.schema["time"]
    return pl.DataFrame(schema={"key": pl.String, "start": time_type, "end": time_type, **extra})
