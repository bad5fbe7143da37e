"""The recipe as validation needs it: which shutters should be open when."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl


@dataclass(frozen=True)
class ScheduleStep:
    """One recipe step (usually a layer): from start to end, exactly `open_sources` have their
    shutters open (`{"Ga", "As"}` for GaAs). Naive times are taken as UTC."""

    start: datetime
    end: datetime
    open_sources: frozenset[str]
    name: str = ""


Schedule = Iterable[ScheduleStep | tuple[datetime, datetime, Iterable[str]]]


def as_steps(schedule: Schedule) -> list[ScheduleStep]:
    """Accepts ScheduleStep objects or plain (start, end, open sources) tuples."""
    steps = []
    for item in schedule:
        if not isinstance(item, ScheduleStep):
            start, end, sources = item
            item = ScheduleStep(start, end, frozenset(sources))
        steps.append(
            ScheduleStep(_utc(item.start), _utc(item.end), frozenset(item.open_sources), item.name)
        )
    return steps


def steps_frame(steps: list[ScheduleStep], sources: Iterable[str]) -> pl.DataFrame:
    """One row per (step, source): step, name, key (= source), start, end, expected_open."""
    return pl.DataFrame(
        [
            {
                "step": i + 1,
                "name": step.name or f"step {i + 1}",
                "key": source,
                "start": step.start,
                "end": step.end,
                "expected_open": source in step.open_sources,
            }
            for i, step in enumerate(steps)
            for source in sorted(sources)
        ],
        schema={
            "step": pl.Int64,
            "name": pl.String,
            "key": pl.String,
            "start": pl.Datetime("us", "UTC"),
            "end": pl.Datetime("us", "UTC"),
            "expected_open": pl.Boolean,
        },
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
