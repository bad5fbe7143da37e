"""Which run is growing on each tool, from the messages the live sources have seen so far.

    tools = LiveTools(engine, configs)
    tool = tools.get("MBE1")
    tool.add_messages(frame)          # time, message: from Messages.txt or the MQTT messages topic
    events = tool.settle()            # growth_runs rows and sample labels brought up to date
    run_ids = tool.run_ids(times)     # the run open at each sample time (None: no run)

The runs are cut by `epi_ml.ingest.segment.segment_tool_logs`, the function batch ingest uses, on
every message seen so far: live and batch agree on ids and windows by construction. A run that
starts gets a `growth_runs` row with status `live` (and its layer rows as they begin and end); when it ends (or is aborted) its `ended_at` is
set and its status becomes `open`, waiting for batch ingest to land it. Rows batch ingest has
taken further (landed, ingested, validated, quarantined) are never touched.

Run marks can arrive after the samples they enclose, and a wafer-in message alone first looks like
a run without a recipe (it may get another id once the recipe's `Run ... start` follows): when a
run's window changes its samples are labelled again, and a run that turns out not to exist is
withdrawn (its row deleted while still live/open, its labels cleared).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from epi_ml.ingest.runs import replace_layers
from epi_ml.ingest.segment import RunSegment, segment_tool_logs
from epi_ml.ingest.tools import ToolConfig
from epi_ml.live.buffer import assign_run, drop_run, unassign_run
from epi_ml.readers.naming import map_tags
from epi_ml.store import read_session, write_session
from epi_ml.store.models import GrowthRun
from epi_ml.store.repo import ensure_tool, insert_ignore

log = logging.getLogger(__name__)

LIVE, OPEN = "live", "open"
# Statuses batch ingest owns: the live sources leave these rows alone.
FINAL_STATUSES = frozenset({"landed", "ingested", "validated", "quarantined"})
# Messages kept per tool, counted back from the newest one: longer than any run (DBR ~4.3 h) and
# than the day a transfer-only run's sequence number depends on.
MESSAGE_HISTORY = timedelta(days=3)
FAILURE_LOG_EVERY_S = 60.0
MESSAGE_SCHEMA = {"time": pl.Datetime("us", "UTC"), "caller": pl.String, "message": pl.String}


@dataclass(frozen=True)
class RunEvent:
    """A change of a tool's runs. `kind`: started (first seen, still growing), ended (its end is
    known; also a run first seen complete), changed (window or recipe details), withdrawn."""

    kind: str
    tool_id: str
    run_id: str
    start: datetime
    end: datetime | None
    status: str  # the row's status after the change ("" when withdrawn)
    segmented_by: str


@dataclass(frozen=True)
class _Applied:
    start: datetime
    end: datetime | None
    segmented_by: str
    recipe: str | None
    operator: str | None
    wafer: str | None
    layers: tuple[tuple[int, datetime, datetime | None], ...] = ()

    @classmethod
    def of(cls, segment: RunSegment) -> _Applied:
        return cls(
            segment.start,
            segment.end,
            segment.segmented_by,
            segment.recipe,
            segment.operator,
            segment.wafer,
            tuple((layer.index, layer.start, layer.end) for layer in segment.layers),
        )


def runs_taken_over(engine: Engine, run_ids: list[str]) -> set[str]:
    """Those of `run_ids` that batch ingest has taken over: complete in the files and landed,
    built, validated or quarantined. Their samples need no buffer (a tailer started over old
    logs must not fill it with history)."""
    if not run_ids:
        return set()
    with read_session(engine) as session:
        rows = session.scalars(
            select(GrowthRun.id).where(GrowthRun.id.in_(run_ids), GrowthRun.status.in_(FINAL_STATUSES))
        )
        return set(rows)


def upsert_live_run(engine: Engine, segment: RunSegment, config: ToolConfig) -> str:
    """Create or update the run's row from what the live logs say; returns its status after."""
    status = LIVE if segment.end is None else OPEN
    with write_session(engine) as session:
        ensure_tool(session, segment.tool, vendor=config.vendor, timezone=config.timezone)
        insert_ignore(
            session,
            GrowthRun,
            {
                "id": segment.run_id,
                "tool_id": segment.tool,
                "status": status,
                "started_at": segment.start,
                "ended_at": segment.end,
                "segmented_by": segment.segmented_by,
            },
        )
        run = session.get(GrowthRun, segment.run_id, populate_existing=True)
        assert run is not None
        if run.status in FINAL_STATUSES:
            return run.status
        run.status = status
        run.started_at = segment.start
        run.ended_at = segment.end
        run.segmented_by = segment.segmented_by
        run.recipe_name = segment.recipe or run.recipe_name
        run.operator = segment.operator or run.operator
        run.wafer = segment.wafer or run.wafer
        # the layers grown so far (the one growing has no end yet): the dashboard's live view
        replace_layers(session, segment.run_id, segment.layers)
        return status


def withdraw_live_run(engine: Engine, run_id: str) -> bool:
    """Delete a run the live logs no longer show (a wafer-in taken for a run of its own before the
    recipe named it), if it is still live or open; its sample labels are cleared either way."""
    deleted = False
    try:
        with write_session(engine) as session:
            status = session.scalar(select(GrowthRun.status).where(GrowthRun.id == run_id))
            if status in (LIVE, OPEN):
                session.execute(delete(GrowthRun).where(GrowthRun.id == run_id))
                deleted = True
    except IntegrityError:  # something refers to it already (an alarm): keep the row
        log.warning("run %s is no longer in the live logs but is referenced; row kept", run_id)
    unassign_run(engine, run_id)
    return deleted


class LiveTool:
    """One tool as the live sources see it: its settings (time zone, tag map) and its runs.
    Thread-safe: the tailer and the MQTT listener may feed the same tool."""

    def __init__(self, engine: Engine, tool_id: str, config: ToolConfig | None = None) -> None:
        self.engine, self.tool_id = engine, tool_id
        self.config = config or ToolConfig()
        self.tz = self.config.timezone
        self._tags = self.config.tag_mapping()
        self._channels: dict[str, str] = {}
        self._messages = pl.DataFrame(schema=MESSAGE_SCHEMA)
        self._segments: list[RunSegment] = []
        self._applied: dict[str, _Applied] = {}
        self._dirty = False
        self._failures, self._failure_logged_at = 0, -math.inf  # settle's failed tries, last logged
        self._lock = threading.RLock()

    # -- names ---------------------------------------------------------------------------------
    def channel(self, tag: str, *, where: str | None = None) -> str:
        """The canonical channel of a vendor tag (`Ga.PID.MV` -> `Ga.T`); a canonical name passes
        through, an unknown tag is kept as `raw:<tag>` (logged once per tool and tag)."""
        channel = self._channels.get(tag)
        if channel is None:
            names = map_tags(
                [tag], self._tags, file=where, map_name=f"the tag map of {self.tool_id}"
            )
            channel = names.channels[tag]
            for finding in names.findings:
                log.warning("%s: %s", where or self.tool_id, finding.message)
            self._channels[tag] = channel
        return channel

    # -- runs ----------------------------------------------------------------------------------
    def add_messages(self, messages: pl.DataFrame) -> None:
        """Messages (time UTC, message; caller optional), in any order; repeats are ignored."""
        if messages.is_empty():
            return
        if "caller" not in messages.columns:
            messages = messages.with_columns(caller=pl.lit("", dtype=pl.String))
        frame = messages.select(list(MESSAGE_SCHEMA)).cast(MESSAGE_SCHEMA)  # type: ignore[arg-type]
        with self._lock:
            merged = pl.concat([self._messages, frame]).unique(maintain_order=True)
            newest = merged.get_column("time").max()
            if isinstance(newest, datetime):
                merged = merged.filter(pl.col("time") >= newest - MESSAGE_HISTORY)
            if merged.height != self._messages.height or not merged.equals(self._messages):
                self._messages = merged
                self._segments = segment_tool_logs(
                    self.tool_id, merged.sort("time", maintain_order=True), None, tz=self.tz
                )
                self._dirty = True

    @property
    def segments(self) -> list[RunSegment]:
        with self._lock:
            return list(self._segments)

    def open_run(self) -> RunSegment | None:
        """The run growing now (the last one, if it has no end yet)."""
        with self._lock:
            last = self._segments[-1] if self._segments else None
            return last if last is not None and last.end is None else None

    def run_ids(self, times: pl.Series) -> pl.Series:
        """The id of the run whose window holds each time (inclusive), else null."""
        with self._lock:
            segments = list(self._segments)
        if times.is_empty() or not segments:
            return pl.Series("run_id", [None] * len(times), dtype=pl.String)
        first, last = times.min(), times.max()
        if not isinstance(first, datetime) or not isinstance(last, datetime):
            return pl.Series("run_id", [None] * len(times), dtype=pl.String)
        near = [s for s in segments if s.start <= last and (s.end is None or s.end >= first)]
        if not near:
            return pl.Series("run_id", [None] * len(times), dtype=pl.String)
        t = pl.col("t")
        label: pl.Expr = pl.lit(None, dtype=pl.String)
        for segment in reversed(near):  # windows do not overlap; the order only makes it one chain
            if segment.end is None:
                inside = t >= segment.start
            else:
                inside = t.is_between(segment.start, segment.end)
            label = pl.when(inside).then(pl.lit(segment.run_id)).otherwise(label)
        return times.to_frame("t").select(label.alias("run_id")).to_series()

    def settle(self) -> list[RunEvent]:
        """Write the runs' changes to the store (rows and sample labels). If the store fails, the
        rest waits for the next call (logged): nothing is marked done before it is stored."""
        with self._lock:
            if not self._dirty:
                return []
            events: list[RunEvent] = []
            try:
                self._withdraw_vanished(events)
                self._write_changed(events)
            except Exception as exc:  # noqa: BLE001 - the store may be down for a moment
                self._failures += 1
                # the tailer retries several times a second: say it once, then once a minute
                if time.monotonic() - self._failure_logged_at >= FAILURE_LOG_EVERY_S:
                    self._failure_logged_at = time.monotonic()
                    log.warning(
                        "%s: runs not written (%s: %s); trying again with the next samples (%d tries so far)",
                        self.tool_id,
                        type(exc).__name__,
                        exc,
                        self._failures,
                    )
            else:
                if self._failures:
                    log.info("%s: runs written again after %d failed tries", self.tool_id, self._failures)
                self._dirty, self._failures, self._failure_logged_at = False, 0, -math.inf
            return events

    def _withdraw_vanished(self, events: list[RunEvent]) -> None:
        current = {s.run_id for s in self._segments}
        horizon = self._messages.get_column("time").min()
        for run_id in [r for r in self._applied if r not in current]:
            applied = self._applied[run_id]
            if not (isinstance(horizon, datetime) and applied.start < horizon):
                withdraw_live_run(self.engine, run_id)
                events.append(self._event("withdrawn", run_id, applied, ""))
            del self._applied[run_id]  # else only forgotten: its messages aged out

    def _write_changed(self, events: list[RunEvent]) -> None:
        for segment in self._segments:
            before = self._applied.get(segment.run_id)
            now = _Applied.of(segment)
            if before == now:
                continue
            status = upsert_live_run(self.engine, segment, self.config)
            assign_run(self.engine, self.tool_id, segment.run_id, segment.start, segment.end)
            if status in FINAL_STATUSES:  # batch ingest has the run: no buffer for it
                drop_run(self.engine, segment.run_id)
            self._applied[segment.run_id] = now
            if before is None:
                kind = "started" if segment.end is None else "ended"
            else:
                kind = "ended" if before.end is None and segment.end is not None else "changed"
            events.append(self._event(kind, segment.run_id, now, status))

    def _event(self, kind: str, run_id: str, applied: _Applied, status: str) -> RunEvent:
        return RunEvent(
            kind, self.tool_id, run_id, applied.start, applied.end, status, applied.segmented_by
        )


class LiveTools:
    """The live tools of one process, created on first sight, shared by its live sources."""

    def __init__(
        self,
        engine: Engine,
        configs: dict[str, ToolConfig] | None = None,
        *,
        on_run: Callable[[RunEvent], None] | None = None,
    ) -> None:
        self.engine = engine
        self.configs = configs or {}
        self.on_run = on_run
        self._tools: dict[str, LiveTool] = {}
        self._lock = threading.Lock()

    def get(self, tool_id: str) -> LiveTool:
        with self._lock:
            tool = self._tools.get(tool_id)
            if tool is None:
                tool = LiveTool(self.engine, tool_id, self.configs.get(tool_id))
                self._tools[tool_id] = tool
            return tool

    def __iter__(self) -> Iterator[LiveTool]:
        with self._lock:
            return iter(list(self._tools.values()))

    def settle(self, tool_ids: set[str] | None = None) -> list[RunEvent]:
        """Settle the runs of the given tools (default: all); events go to `on_run` too."""
        events: list[RunEvent] = []
        for tool in self:
            if tool_ids is None or tool.tool_id in tool_ids:
                events += tool.settle()
        if self.on_run is not None:
            for event in events:
                self.on_run(event)
        return events


__all__ = [
    "FINAL_STATUSES",
    "LiveTool",
    "LiveTools",
    "RunEvent",
    "upsert_live_run",
    "withdraw_live_run",
]
