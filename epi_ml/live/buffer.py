"""The live buffer (table `live_samples`): samples of runs in progress, for the dashboard.

    append_samples(engine, frame)                    # tailer / MQTT listener, one transaction
    new = read_samples(engine, run_id=run, after_id=last_id)   # dashboard, incremental
    latest_values(engine, "MBE1")                    # the current reading of every channel

A bounded buffer, not the record: the run's partition writes the lake from the files, and
`drop_run` empties a run's buffer once that is done; `trim` drops what nobody will look at
again (samples of no run, and of runs no longer live, received before a cut-off). Ids grow with
every insert, so a reader that remembers the last id it saw gets exactly the rows added since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import Engine, delete, func, insert, or_, select, update

from epi_ml.store import read_session, write_session
from epi_ml.store.models import GrowthRun, LiveSample

TIME_TYPE = pl.Datetime("us", "UTC")
SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "tool_id": pl.String(),
    "run_id": pl.String(),
    "channel": pl.String(),
    "time": TIME_TYPE,
    "value": pl.Float64(),
}
# What append_samples needs from each row (a frame or mappings); run_id may be missing / None.
ROW_COLUMNS = ("tool_id", "run_id", "channel", "time", "value")
READ_LIMIT = 200_000  # rows per read_samples call; the caller asks again from the last id
INSERT_CHUNK = 20_000  # rows per INSERT statement batch (bounded memory on the driver side)
KEPT_STATUSES = ("live",)  # trim never drops the samples of a run still growing


def append_samples(
    engine: Engine,
    rows: pl.DataFrame | Iterable[Mapping[str, Any]],
    *,
    received_at: datetime | None = None,
) -> int:
    """Insert samples (tool_id, run_id, channel, time (UTC-aware), value) in one transaction;
    returns how many. Either all rows are stored or none (a failed batch can be retried)."""
    records = _records(rows)
    if not records:
        return 0
    stamp = received_at or datetime.now(UTC)
    for record in records:
        record["received_at"] = stamp
    with write_session(engine) as session:
        for start in range(0, len(records), INSERT_CHUNK):
            session.execute(insert(LiveSample), records[start : start + INSERT_CHUNK])
    return len(records)


def read_samples(
    engine: Engine,
    *,
    run_id: str | None = None,
    tool_id: str | None = None,
    after_id: int = 0,
    channels: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int = READ_LIMIT,
) -> pl.DataFrame:
    """Samples with id > `after_id`, in id (arrival) order: id, tool_id, run_id, channel, time
    (UTC), value. Poll with the largest id returned so far to get only what is new."""
    query = select(
        LiveSample.id,
        LiveSample.tool_id,
        LiveSample.run_id,
        LiveSample.channel,
        LiveSample.time,
        LiveSample.value,
    ).where(LiveSample.id > after_id)
    if run_id is not None:
        query = query.where(LiveSample.run_id == run_id)
    if tool_id is not None:
        query = query.where(LiveSample.tool_id == tool_id)
    if channels is not None:
        query = query.where(LiveSample.channel.in_(list(channels)))
    if since is not None:
        query = query.where(LiveSample.time >= since)
    query = query.order_by(LiveSample.id).limit(limit)
    with read_session(engine) as session:
        rows = session.execute(query).all()
    return _frame(rows)


def latest_values(engine: Engine, tool_id: str) -> pl.DataFrame:
    """The newest sample (by time) of every channel of a tool: channel, time, value, run_id."""
    newest = (
        select(LiveSample.channel, func.max(LiveSample.time).label("time"))
        .where(LiveSample.tool_id == tool_id)
        .group_by(LiveSample.channel)
        .subquery()
    )
    query = (
        select(
            LiveSample.id,
            LiveSample.tool_id,
            LiveSample.run_id,
            LiveSample.channel,
            LiveSample.time,
            LiveSample.value,
        )
        .join(
            newest,
            (LiveSample.channel == newest.c.channel) & (LiveSample.time == newest.c.time),
        )
        .where(LiveSample.tool_id == tool_id)
        .order_by(LiveSample.channel, LiveSample.id.desc())
    )
    with read_session(engine) as session:
        rows = session.execute(query).all()
    # Two samples of one channel at the same time (a replayed log): the one stored last wins.
    return (
        _frame(rows)
        .unique("channel", keep="first", maintain_order=True)
        .select("channel", "time", "value", "run_id")
    )


def latest_times(engine: Engine, tool_id: str) -> dict[str, datetime]:
    """channel -> time of its newest buffered sample, for a tool (where a replay resumes)."""
    query = (
        select(LiveSample.channel, func.max(LiveSample.time))
        .where(LiveSample.tool_id == tool_id)
        .group_by(LiveSample.channel)
    )
    with read_session(engine) as session:
        return {channel: time for channel, time in session.execute(query).all()}


def assign_run(
    engine: Engine, tool_id: str, run_id: str, start: datetime, end: datetime | None
) -> int:
    """Label the tool's samples in [start, end] (end None: still open) with `run_id`, and clear
    the label of its samples outside that window. Run marks may be read after the samples they
    enclose (another file, another poll), so labels are settled again whenever a window changes."""
    inside = (LiveSample.tool_id == tool_id) & (LiveSample.time >= start)
    outside = LiveSample.time < start
    if end is not None:
        inside &= LiveSample.time <= end
        outside = or_(outside, LiveSample.time > end)
    with write_session(engine) as session:
        cleared = session.execute(
            update(LiveSample)
            .where(LiveSample.run_id == run_id, outside)
            .values(run_id=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        labelled = session.execute(
            update(LiveSample)
            .where(inside, or_(LiveSample.run_id.is_(None), LiveSample.run_id != run_id))
            .values(run_id=run_id)
            .execution_options(synchronize_session=False)
        ).rowcount
    return int(cleared or 0) + int(labelled or 0)


def unassign_run(engine: Engine, run_id: str) -> int:
    """Clear the label `run_id` from every sample (the run turned out not to exist)."""
    with write_session(engine) as session:
        result = session.execute(
            update(LiveSample)
            .where(LiveSample.run_id == run_id)
            .values(run_id=None)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)


def drop_run(engine: Engine, run_id: str) -> int:
    """Delete a run's buffered samples (its sensor table is in the lake now)."""
    with write_session(engine) as session:
        result = session.execute(delete(LiveSample).where(LiveSample.run_id == run_id))
    return int(result.rowcount or 0)


def trim(engine: Engine, older_than: timedelta, *, now: datetime | None = None) -> int:
    """Delete samples received more than `older_than` ago, unless their run is still live:
    samples of no run (idle chamber), of ended runs and of runs already ingested."""
    cutoff = (now or datetime.now(UTC)) - older_than
    live_runs = select(GrowthRun.id).where(GrowthRun.status.in_(KEPT_STATUSES))
    with write_session(engine) as session:
        result = session.execute(
            delete(LiveSample)
            .where(
                LiveSample.received_at < cutoff,
                or_(LiveSample.run_id.is_(None), LiveSample.run_id.not_in(live_runs)),
            )
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)


def count_samples(engine: Engine, *, run_id: str | None = None, tool_id: str | None = None) -> int:
    query = select(func.count()).select_from(LiveSample)
    if run_id is not None:
        query = query.where(LiveSample.run_id == run_id)
    if tool_id is not None:
        query = query.where(LiveSample.tool_id == tool_id)
    with read_session(engine) as session:
        return int(session.execute(query).scalar_one())


# ---------------------------------------------------------------------------------------------
def _records(rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(rows, pl.DataFrame):
        if rows.is_empty():
            return []
        if "run_id" not in rows.columns:
            rows = rows.with_columns(run_id=pl.lit(None, dtype=pl.String))
        return rows.select(ROW_COLUMNS).to_dicts()
    return [{name: row.get(name) for name in ROW_COLUMNS} for row in rows]


def _frame(rows: Sequence[Any]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=SAMPLE_SCHEMA)
    columns = list(zip(*rows, strict=True))
    return pl.DataFrame(
        {name: list(values) for name, values in zip(SAMPLE_SCHEMA, columns, strict=True)},
        schema=SAMPLE_SCHEMA,
    )


__all__ = [
    "SAMPLE_SCHEMA",
    "append_samples",
    "assign_run",
    "count_samples",
    "drop_run",
    "latest_times",
    "latest_values",
    "read_samples",
    "trim",
    "unassign_run",
]
