"""The live view: the run growing on a tool, read incrementally from the live buffer.

    run = current_run(engine, "MBE1")                  # the run in progress (or None)
    snap = snapshot(engine, run.run_id)                # trailing window of every channel
    new = updates(engine, run.run_id, snap.cursor, slow_cursor=snap.cursor)  # only what arrived since
    layers = layer_progress(ctx, run)                  # grown so far / predicted final per layer
    findings = live_findings(engine, run.run_id)       # validation of the recent samples

The page draws `snap` once and then only appends `new` (Dash extendData with a bounded number of
points per trace), so what is sent per update depends on the sample rate, not on how long the run
has been growing. Snapshots read a trailing window, never the whole run.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select

from epi_ml.channels import CELLS, GROUP_III, quantity_of, source_of, unit_of
from epi_ml.findings import Finding
from epi_ml.validation.report import most_severe_first
from epi_ml.live.buffer import READ_LIMIT, SAMPLE_SCHEMA, read_samples
from epi_ml.store import read_session
from epi_ml.store.models import GrowthRun, IngestEvent, Layer, LiveSample, Tool

log = logging.getLogger(__name__)

HISTORY_S = 600.0  # trailing window a page starts with
# What the browser draws: drawing is what costs (every update redraws a figure), so slow channels
# go to the screen at most SCREEN_HZ (the last value of each bucket) and keep SCREEN_POINTS; RHEED
# keeps every sample (its oscillations are the signal) and MAX_POINTS.
SCREEN_HZ = 2.0
SCREEN_POINTS = 1200  # 10 min at 2 Hz
MAX_POINTS = 6000  # RHEED: 10 min at 10 Hz
RATE_SPAN_S = 30.0  # a channel's rate (hence its trace's cap) is trusted once its samples span this
FULL_RATE_GROUPS = frozenset({"rheed"})
FINDINGS_WINDOW_S = 600.0  # the recent samples the live checks look at
FINDINGS_TTL_S = 5.0
RATE_WINDOW_S = 120.0
PLAN_RETRY_S = 30.0  # live checks are shared by every session and recomputed at most this often
# The checks that make sense on a run still growing (missing channels etc. wait for batch ingest).
LIVE_FINDING_CODES = frozenset(
    {
        "setpoint_deviation",
        "stuck_sensor",
        "gauge_over_range",
        "out_of_operating_range",
        "pressure_excursion",
        "spike",
        "non_finite_value",
        "impossible_value",
        "stuck_shutter",
        "shutter_late_close",
    }
)


# ------------------------------------------------------------------------------------------------
# Channel groups: one figure each on the page, in this order.
@dataclass(frozen=True)
class ChannelGroup:
    key: str
    title: str
    unit: str
    log_y: bool = False


GROUPS: tuple[ChannelGroup, ...] = (
    ChannelGroup("cells", "Cell temperatures", "°C"),
    ChannelGroup("power", "Cell heater power", "%"),
    ChannelGroup("substrate", "Substrate", "°C / rpm"),
    ChannelGroup("arsenic", "As cracker", "% / °C"),
    ChannelGroup("pressure", "Pressures", "Torr", log_y=True),
    ChannelGroup("rheed", "RHEED intensity", "a.u."),
    ChannelGroup("shutters", "Shutters (open = raised)", "0/1"),
    ChannelGroup("other", "Other channels", ""),
)
GROUP_KEYS = tuple(g.key for g in GROUPS)
# the shutters a tool logs (event-driven: a state holds until the next change)
SHUTTERS = tuple(f"{source}.shutter" for source in (*CELLS, "As", "sub"))


def group_of(channel: str) -> str:
    """Which figure a canonical channel belongs to."""
    source, quantity = source_of(channel), quantity_of(channel)
    if quantity == "shutter":
        return "shutters"
    if source == "RHEED":
        return "rheed"
    if source == "P" or channel == "BEP" or unit_of(channel) == "Torr":
        return "pressure"
    if source == "sub":
        return "substrate"
    if source == "As":
        return "arsenic"
    if quantity == "power":
        return "power"
    if quantity.startswith("T"):
        return "cells"
    return "other"


def max_points(group: str) -> int:
    """Points a figure of this group keeps per trace at most (the browser drops older ones).
    Shutters: their held states come one per redraw (2 Hz of wall time), not with the log."""
    if group in FULL_RATE_GROUPS:
        return MAX_POINTS
    return 2 * SCREEN_POINTS if group == "shutters" else SCREEN_POINTS


def trace_caps(window: pl.DataFrame, history_s: float = HISTORY_S) -> dict[str, int]:
    """Points each channel's trace keeps so that it spans `history_s` of the run, from its rate in
    `window` (stored samples, before for_screen): one count for all would show 20 min of a 1 Hz
    channel beside 10 min of a 2 Hz one, and scale their y axes to what is off screen. Left out:
    channels whose samples span less than RATE_SPAN_S (rate not known yet: their group's
    max_points) and shutters (the page follows the window on their figure instead)."""
    if window.is_empty():
        return {}
    t_s = pl.col("time").dt.epoch("ms") / 1000
    stats = window.group_by("channel").agg(n=pl.len(), span_s=t_s.max() - t_s.min())
    caps: dict[str, int] = {}
    for channel, n, span_s in stats.iter_rows():
        group = group_of(channel)
        if group == "shutters" or n < 2 or span_s < RATE_SPAN_S:
            continue
        rate = (n - 1) / span_s
        if group not in FULL_RATE_GROUPS:
            rate = min(rate, SCREEN_HZ)
        caps[channel] = min(max_points(group), math.ceil(rate * history_s) + 1)
    return caps


def recent_caps(engine: Engine, run_id: str, newest: datetime) -> dict[str, int]:
    """trace_caps from the run's last 2 x RATE_SPAN_S (for channels whose rate was not known yet
    when the page drew them: a run just started)."""
    return trace_caps(_read_window(engine, run_id, newest - timedelta(seconds=2 * RATE_SPAN_S)))


def label_of(channel: str) -> str:
    unit = unit_of(channel)
    return f"{channel} [{unit}]" if unit else channel


# ------------------------------------------------------------------------------------------------
# Runs
@dataclass(frozen=True)
class LiveRun:
    run_id: str
    tool_id: str
    status: str  # live (growing) or open (ended, waiting for batch ingest)
    started_at: datetime | None
    ended_at: datetime | None
    recipe_name: str | None
    wafer: str | None

    @property
    def growing(self) -> bool:
        return self.status == "live"


def live_tools(engine: Engine) -> list[str]:
    """Tools with a run growing now first, then tools with buffered samples."""
    with read_session(engine) as s:
        growing = list(
            s.scalars(select(GrowthRun.tool_id).where(GrowthRun.status == "live").distinct())
        )
        # one index seek per known tool, not a DISTINCT over the whole buffer
        has_samples = select(LiveSample.id).where(LiveSample.tool_id == Tool.id).limit(1).exists()
        buffered = list(s.scalars(select(Tool.id).where(has_samples)))
    return sorted(set(growing)) + sorted(set(buffered) - set(growing))


def current_run(engine: Engine, tool_id: str | None = None) -> LiveRun | None:
    """The newest run growing on the tool (any tool when None); else its newest run that still
    has samples in the buffer (ended, not yet ingested), so the page can show how it ended."""
    with read_session(engine) as s:
        query = select(GrowthRun).where(GrowthRun.status == "live")
        if tool_id:
            query = query.where(GrowthRun.tool_id == tool_id)
        row = s.scalars(query.order_by(GrowthRun.started_at.desc().nulls_last()).limit(1)).first()
        if row is None:
            recent = select(LiveSample.run_id).where(LiveSample.run_id.is_not(None))
            if tool_id:
                recent = recent.where(LiveSample.tool_id == tool_id)
            newest = s.scalar(recent.order_by(LiveSample.id.desc()).limit(1))
            row = s.get(GrowthRun, newest) if newest else None
        if row is None:
            return None
        return LiveRun(
            row.id, row.tool_id, row.status, row.started_at, row.ended_at, row.recipe_name, row.wafer
        )


# ------------------------------------------------------------------------------------------------
# Samples: a snapshot of the trailing window, then updates since a cursor
@dataclass
class Series:
    """Points of one channel: times in ms since the epoch (what a Plotly date axis takes)."""

    t_ms: list[float] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)


@dataclass
class Samples:
    cursor: int  # the largest sample id read: ask for what is newer next time
    channels: dict[str, Series]
    newest: datetime | None  # time of the newest sample read (the run's "now")
    caps: dict[str, int] = field(default_factory=dict)  # a snapshot's trace_caps

    @property
    def points(self) -> int:
        return sum(len(s.t_ms) for s in self.channels.values())


def snapshot(
    engine: Engine, run_id: str, *, tool_id: str | None = None, history_s: float = HISTORY_S,
    points: int | None = None,
) -> Samples:  # fmt: skip
    """The run's trailing `history_s` seconds as the screen draws it (`for_screen`; at most
    `points`, default its trace_caps or its group's max_points, newest per channel), with the
    shutters' states at its start (from the tool's log before the run when `tool_id` is given)."""
    with read_session(engine) as s:
        newest_time = s.scalar(select(func.max(LiveSample.time)).where(LiveSample.run_id == run_id))
        cursor = s.scalar(select(func.max(LiveSample.id)).where(LiveSample.run_id == run_id)) or 0
    if newest_time is None:
        return Samples(cursor=cursor, channels={}, newest=None)
    since = newest_time - timedelta(seconds=history_s)
    window = _read_window(engine, run_id, since, upto=cursor)
    caps = trace_caps(window, history_s)
    frame = for_screen(window).sort("channel", "time")
    limits = _per_channel(frame, lambda c: points or caps.get(c) or max_points(group_of(c)), pl.Int64)
    frame = frame.join(limits, on="channel").filter(
        pl.int_range(pl.len()).over("channel") >= pl.len().over("channel") - pl.col("_value")
    ).drop("_value")
    states = _states_at(engine, run_id, tool_id, since, upto=cursor)
    frame = pl.concat([states.select(list(SAMPLE_SCHEMA)), frame.select(list(SAMPLE_SCHEMA))])
    return Samples(cursor=cursor, channels=_series(frame), newest=_as_utc(newest_time), caps=caps)


def _states_at(engine: Engine, run_id: str, tool_id: str | None, moment: datetime, *, upto: int) -> pl.DataFrame:
    """Event-driven channels (shutters: logged on change only) as they stood at `moment`: their
    last sample before it, moved to `moment`, so their timeline starts with the window. The
    tool's samples before the run count too (a shutter may not move for hours); one index seek
    per shutter (ix_live_samples_tool_channel_time)."""
    if tool_id is None:
        with read_session(engine) as s:
            tool_id = s.scalar(select(GrowthRun.tool_id).where(GrowthRun.id == run_id))
    rows = []
    with read_session(engine) as s:
        for channel in SHUTTERS:
            row = s.execute(
                select(LiveSample.id, LiveSample.tool_id, LiveSample.run_id, LiveSample.channel,
                       LiveSample.time, LiveSample.value)
                .where(LiveSample.tool_id == tool_id, LiveSample.channel == channel,
                       LiveSample.time < moment, LiveSample.id <= upto)
                .order_by(LiveSample.time.desc())
                .limit(1)
            ).first()  # fmt: skip
            if row is not None:
                rows.append(tuple(row))
    frame = pl.DataFrame(rows, schema=SAMPLE_SCHEMA, orient="row")
    return frame.with_columns(time=pl.lit(moment).cast(SAMPLE_SCHEMA["time"]), run_id=pl.lit(run_id))


def updates(engine: Engine, run_id: str, cursor: int, slow_cursor: int | None = None,
            drawn_until_ms: float | None = None) -> Samples:  # fmt: skip
    """Samples of the run stored after `cursor`, per channel in time order: the full-rate groups
    (RHEED) every time; the other channels only when `slow_cursor` is given, what was stored
    after it (`for_screen`, nothing within 1/SCREEN_HZ after `drawn_until_ms`, the newest time
    drawn before). The page asks for the slow channels at most SCREEN_HZ: every redraw of a
    figure costs the browser, and their screen rate is SCREEN_HZ anyway."""
    start = cursor if slow_cursor is None else min(cursor, slow_cursor)
    frame = _read_all(engine, run_id=run_id, after_id=start)
    if frame.is_empty():
        return Samples(cursor=cursor, channels={}, newest=None)
    newest = frame.get_column("time").max()
    last_id = int(frame.get_column("id").max())  # type: ignore[arg-type]
    full = _per_channel(frame, lambda c: group_of(c) in FULL_RATE_GROUPS, pl.Boolean)
    frame = frame.join(full, on="channel")
    fast = frame.filter(pl.col("_value") & (pl.col("id") > cursor))
    parts = [fast] if slow_cursor is None else [fast, frame.filter(~pl.col("_value"))]
    shown = for_screen(pl.concat(parts).drop("_value"), after_ms=drawn_until_ms)
    return Samples(
        cursor=last_id,
        channels=_series(shown.sort("channel", "time")),
        newest=newest if isinstance(newest, datetime) else None,
    )


def _read_all(engine: Engine, *, run_id: str, after_id: int = 0, upto: int | None = None) -> pl.DataFrame:
    """Every sample of the run after `after_id` (read in chunks of the buffer's READ_LIMIT)."""
    parts = []
    while True:
        part = read_samples(engine, run_id=run_id, after_id=after_id)
        if part.is_empty():
            break
        if upto is not None:
            part = part.filter(pl.col("id") <= upto)
        parts.append(part)
        after_id = int(part.get_column("id").max())  # type: ignore[arg-type]
        if (upto is not None and after_id >= upto) or part.height < READ_LIMIT:
            break
    if not parts:
        return pl.DataFrame(schema=SAMPLE_SCHEMA)
    return pl.concat(parts)


def for_screen(frame: pl.DataFrame, after_ms: float | None = None) -> pl.DataFrame:
    """At most SCREEN_HZ per channel: the last sample of each 1/SCREEN_HZ counted back from the
    channel's newest, and after `after_ms` (the newest time already drawn) only what is at least
    1/SCREEN_HZ later, or the channel's newest: an update asked for once per 1/SCREEN_HZ draws
    one point, the newest, and a backlog one per 1/SCREEN_HZ. Every sample of the full-rate
    groups (RHEED) and of event-driven channels (shutters: each change counts)."""
    if frame.is_empty():
        return frame
    full = _per_channel(frame, lambda c: group_of(c) in FULL_RATE_GROUPS or group_of(c) == "shutters",
                        pl.Boolean)  # fmt: skip
    period_ms = int(1000 / SCREEN_HZ)
    t_ms = pl.col("time").dt.epoch("ms")
    newest_ms = t_ms.max().over("channel")
    frame = frame.join(full, on="channel").with_columns(_bucket=(newest_ms - t_ms) // period_ms)
    every = frame.filter(pl.col("_value"))
    slow = frame.filter(~pl.col("_value"))
    if after_ms is not None:
        slow = slow.filter((t_ms >= after_ms + period_ms) | (t_ms == newest_ms))
    slow = slow.sort("time").unique(["channel", "_bucket"], keep="last")
    return pl.concat([every, slow]).drop("_value", "_bucket")


def _per_channel(frame: pl.DataFrame, value: Any, dtype: pl.DataType) -> pl.DataFrame:
    """channel -> value(channel) for the channels of `frame` (a join, not a call per row)."""
    channels = frame.get_column("channel").unique().to_list()
    return pl.DataFrame({"channel": channels, "_value": [value(c) for c in channels]},
                        schema={"channel": pl.String, "_value": dtype})  # fmt: skip


def _read_window(engine: Engine, run_id: str, since: datetime, *, upto: int | None = None) -> pl.DataFrame:
    """The run's samples from `since` on. The first id at `since` is found on (run_id, time),
    the rows are read from it on (run_id, id): the cost is the window's, not the run's."""
    with read_session(engine) as s:
        first = s.scalar(
            select(func.min(LiveSample.id)).where(LiveSample.run_id == run_id, LiveSample.time >= since)
        )
    if first is None:
        return pl.DataFrame(schema=SAMPLE_SCHEMA)
    frame = _read_all(engine, run_id=run_id, after_id=first - 1, upto=upto)
    return frame.filter(pl.col("time") >= since)  # a late-arriving older sample stays out


def _series(frame: pl.DataFrame) -> dict[str, Series]:
    out: dict[str, Series] = {}
    if frame.is_empty():
        return out
    frame = frame.with_columns(
        t_ms=pl.col("time").dt.epoch("ms").cast(pl.Float64),
        value=pl.when(pl.col("value").is_finite()).then(pl.col("value")),  # JSON has no NaN
    )
    for (channel,), part in frame.group_by("channel", maintain_order=True):
        out[str(channel)] = Series(part.get_column("t_ms").to_list(), part.get_column("value").to_list())
    return out


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------------------
# Layers: target, grown so far, predicted final
@dataclass
class LayerProgress:
    index: int
    kind: str
    material: str
    label: str | None
    target_thickness_nm: float | None
    target_composition: float | None
    started_at: datetime | None
    ended_at: datetime | None
    growing: bool
    grown_nm: float | None = None  # thickness grown so far (the predicted rate x time in layer)
    predicted_nm: float | None = None  # predicted final thickness
    lower_nm: float | None = None  # its 90 % interval, when a model gives one
    upper_nm: float | None = None
    rate_nm_s: float | None = None


@dataclass
class LayerPlan:
    """Per recipe layer index: predicted rate, duration and final thickness (+ interval)."""

    source: str  # "model v3", "physics baseline", or why there is none
    layers: dict[int, dict[str, float | None]] = field(default_factory=dict)
    made_at: float = field(default_factory=time.monotonic)


def run_layers(engine: Engine, run_id: str) -> list[Layer]:
    with read_session(engine) as s:
        rows = list(s.scalars(select(Layer).where(Layer.run_id == run_id).order_by(Layer.index)))
        s.expunge_all()
    return rows


def layer_progress(layers: list[Layer], plan: LayerPlan, now: datetime | None) -> list[LayerProgress]:
    """Each growth layer begun so far, with the thickness grown by `now` (the newest sample)."""
    out = []
    for layer in layers:
        if layer.kind != "layer":
            continue
        planned = plan.layers.get(layer.index, {})
        rate = planned.get("rate_nm_s")
        growing = layer.ended_at is None
        end = now if growing else layer.ended_at
        grown = None
        if rate is not None and layer.started_at is not None and end is not None:
            grown = max(0.0, (end - layer.started_at).total_seconds()) * rate
        out.append(
            LayerProgress(
                index=layer.index,
                kind=layer.kind,
                material=layer.material,
                label=layer.label,
                target_thickness_nm=layer.target_thickness_nm,
                target_composition=layer.target_composition,
                started_at=layer.started_at,
                ended_at=layer.ended_at,
                growing=growing,
                grown_nm=grown,
                predicted_nm=planned.get("thickness_nm") if growing else (grown or planned.get("thickness_nm")),
                lower_nm=planned.get("lower_nm"),
                upper_nm=planned.get("upper_nm"),
                rate_nm_s=rate,
            )
        )
    return out


_plans: dict[tuple[str, str], LayerPlan] = {}
_plans_lock = threading.Lock()


def layer_plan(ctx: Any, run: LiveRun) -> LayerPlan:
    """The run's per-layer predictions before growth (cached per run and model): the champion's
    recipe-mode prediction with its interval when a model is registered, else the physics
    baseline from the calibration in force. Needs the run's recipe (by its file name)."""
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME

    champion = registry.model_for_alias(ctx.engine, MODEL_NAME, "champion")
    key = (run.run_id, f"v{champion.version}" if champion else "physics")
    with _plans_lock:
        cached = _plans.get(key)
        # a plan without layers (no recipe landed yet) is tried again now and then
        if cached and (cached.layers or time.monotonic() - cached.made_at < PLAN_RETRY_S):
            return cached
    plan = _compute_plan(ctx, run, champion)
    with _plans_lock:
        if len(_plans) > 64:  # a day of runs on a few tools; bounded
            _plans.clear()
        _plans[key] = plan
    return plan


def _compute_plan(ctx: Any, run: LiveRun, champion: Any) -> LayerPlan:
    from epi_ml.baseline import predict_recipe
    from epi_ml.features.build import run_context

    recipe = find_recipe(ctx, run.run_id)
    if recipe is None:
        return LayerPlan(f"no recipe file for {run.run_id} yet: no prediction")
    at = run.started_at or datetime.now(UTC)
    try:
        if champion is not None:
            from epi_ml.models.lifecycle import load_model
            from epi_ml.models.serve import predict_recipe_layers

            table = predict_recipe_layers(ctx, recipe, run.tool_id, load_model(champion), at=at)
            layers = {
                int(r["layer"]): {
                    "thickness_nm": r["thickness_nm"],
                    "lower_nm": r.get("thickness_nm_lower"),
                    "upper_nm": r.get("thickness_nm_upper"),
                    "rate_nm_s": r["thickness_nm"] / r["duration_s"] if r["duration_s"] else None,
                }
                for r in table.iter_rows(named=True)
            }
            return LayerPlan(f"model v{champion.version} (champion), 90 % interval", layers)
        context = run_context(ctx, run.tool_id, run.run_id, at)
        if not context.calibrations:
            return LayerPlan(f"{run.tool_id} has no cell calibration yet: no prediction")
        planned = predict_recipe(recipe, context.calibrations)
        layers = {
            layer.index: {
                "thickness_nm": layer.prediction.thickness_nm,
                "rate_nm_s": layer.prediction.growth_rate_nm_s,
            }
            for layer in planned.layers
        }
        return LayerPlan("physics baseline (no model promoted yet)", layers)
    except Exception as exc:  # noqa: BLE001 - the page says why, the live view goes on
        log.warning("no live prediction for %s: %s: %s", run.run_id, type(exc).__name__, exc)
        return LayerPlan(f"no prediction ({type(exc).__name__}: {exc})")


def find_recipe(ctx: Any, run_id: str) -> Any:
    """The run's recipe: ingested (lake) if it is, else its file in the landing folder."""
    from epi_ml.twin.recipe import RecipeError, load_recipe, parse_recipe

    import yaml

    with read_session(ctx.engine) as s:
        lake_path = s.scalar(
            select(IngestEvent.lake_path)
            .where(IngestEvent.kind == "recipe", IngestEvent.run_id == run_id)
            .order_by(IngestEvent.id.desc())
            .limit(1)
        )
    try:
        if lake_path and Path(lake_path).exists():
            table = pl.read_parquet(lake_path)
            column = next((c for c in ("yaml", "text", "recipe") if c in table.columns), None)
            if column:
                return parse_recipe(yaml.safe_load(table.get_column(column)[0]), source=run_id)
        landing = ctx.settings.landing_dir  # <landing>/<tool>/recipes or <landing>/<source>/<tool>/recipes
        for pattern in (f"*/recipes/{run_id}.yaml", f"*/*/recipes/{run_id}.yaml"):
            for path in landing.glob(pattern):
                return load_recipe(path)
    except (RecipeError, OSError, yaml.YAMLError) as exc:
        log.warning("recipe of %s unreadable: %s", run_id, exc)
    return None


# ------------------------------------------------------------------------------------------------
# RHEED growth rate of the layer growing now
_rates: dict[tuple[str, int], tuple[float, Any]] = {}


def live_growth_rate(engine: Engine, run_id: str, layer: LayerProgress | None, now: datetime | None) -> Any:
    """RHEED oscillation rate of the growing layer's first RATE_WINDOW_S (oscillations damp out
    after that; epi_ml.analysis.rheed), from 30 s into the layer, refreshed every 10 s until the
    window is complete; None before."""
    from epi_ml.analysis.rheed import growth_rate_in_window

    if layer is None or layer.started_at is None or now is None or not layer.growing:
        return None
    if (now - layer.started_at).total_seconds() < 30:
        return None
    key = (run_id, layer.index)
    cached = _rates.get(key)
    end = min(now, layer.started_at + timedelta(seconds=RATE_WINDOW_S))
    if cached and (cached[0] == float("inf") or time.monotonic() - cached[0] < 10):
        return cached[1]  # (inf: the window is complete, the estimate final)
    frame = _read_window(engine, run_id, layer.started_at)
    frame = frame.filter(pl.col("time") <= end, pl.col("channel").is_in(["RHEED.I", "sub.rpm"]))
    frame = frame.select("time", "channel", "value")
    try:
        estimate = growth_rate_in_window(
            frame, layer.started_at, end, material=_rate_material(layer.material),
            x=layer.target_composition,
        )  # fmt: skip
    except ValueError as exc:
        estimate = None
        log.debug("no RHEED rate for %s layer %s: %s", run_id, layer.index, exc)
    if len(_rates) > 256:
        _rates.clear()
    _rates[key] = (float("inf") if end < now else time.monotonic(), estimate)
    return estimate


def _rate_material(material: str) -> str:
    return material if material in ("GaAs", "AlGaAs", "InGaAs", "AlAs", "InAs") else "GaAs"


# ------------------------------------------------------------------------------------------------
# Findings on the recent samples (shared by every session watching the run)
@dataclass
class _Checked:
    """A run's live checks: when last run, the samples of the window kept in memory (only what
    is new is read each time), and the findings so far."""

    at: float
    cursor: int
    window: pl.DataFrame
    findings: list[Finding]


_checked: dict[str, _Checked] = {}
_checked_lock = threading.Lock()  # guards _checked and _refreshing
_refreshing: set[str] = set()  # runs whose checks are being run again in the background


def live_findings(engine: Engine, run_id: str, *, ttl_s: float = FINDINGS_TTL_S,
                  background: bool = True) -> list[Finding]:  # fmt: skip
    """Validation findings of the run's last FINDINGS_WINDOW_S seconds, accumulated over the run
    (a deviation that came and went stays listed), most severe first. The checks run again at
    most every `ttl_s`; once a run has been checked, in the background (`background`): the
    checks of a 10-minute window take about 0.3 s at 64 channels x 10 Hz (bench_dashboard), and
    no session's live update should wait for them. So a call returns the findings of the last
    check, at most `ttl_s` plus one check's time old."""
    with _checked_lock:
        state = _checked.get(run_id)
        if state is not None and (time.monotonic() - state.at < ttl_s or run_id in _refreshing):
            return state.findings
        if state is not None and background:
            _refreshing.add(run_id)
            threading.Thread(target=_check_in_background, args=(engine, run_id, state),
                             name=f"live-checks-{run_id}", daemon=True).start()  # fmt: skip
            return state.findings
        _refreshing.add(run_id)  # (the first check of a run: the caller waits for it)
    try:
        return _check(engine, run_id, state)
    finally:
        with _checked_lock:
            _refreshing.discard(run_id)


def _check_in_background(engine: Engine, run_id: str, state: _Checked) -> None:
    try:
        _check(engine, run_id, state)
    except Exception:  # noqa: BLE001 - the last findings stay; the next call tries again
        log.exception("live checks of %s failed; the findings shown are from the check before", run_id)
    finally:
        with _checked_lock:
            _refreshing.discard(run_id)


def _check(engine: Engine, run_id: str, state: _Checked | None) -> list[Finding]:
    """Read what is new since the last check, validate the window, keep the new findings. A
    check of a checked run starts only when none is running (`_refreshing`), so nothing else
    changes `state` meanwhile; first checks that meet each build a state of their own."""
    from epi_ml.validation import validate_run

    if state is None:
        with read_session(engine) as s:
            newest = s.scalar(select(func.max(LiveSample.time)).where(LiveSample.run_id == run_id))
        window = (
            _read_window(engine, run_id, newest - timedelta(seconds=FINDINGS_WINDOW_S))
            if newest is not None
            else pl.DataFrame(schema=SAMPLE_SCHEMA)
        )
        state = _Checked(0.0, int(window.get_column("id").max() or 0) if window.height else 0, window, [])
    else:
        new = _read_all(engine, run_id=run_id, after_id=state.cursor)
        if new.height:
            state.cursor = int(new.get_column("id").max())  # type: ignore[arg-type]
            state.window = pl.concat([state.window, new])
    findings = list(state.findings)
    if state.window.height:
        newest = state.window.get_column("time").max()
        state.window = state.window.filter(pl.col("time") >= newest - timedelta(seconds=FINDINGS_WINDOW_S))
        report = validate_run(state.window.select("time", "channel", "value"))
        keys = {(f.code, f.channel) for f in findings}
        for finding in report.findings:
            if finding.code in LIVE_FINDING_CODES and (finding.code, finding.channel) not in keys:
                findings.append(finding)
                keys.add((finding.code, finding.channel))
    state.findings = most_severe_first(findings)  # (a new list: callers may hold the old one)
    state.at = time.monotonic()
    with _checked_lock:
        if len(_checked) > 16 and run_id not in _checked:  # runs watched at once: a few tools
            _checked.pop(next(iter(_checked)))
        _checked[run_id] = state
    return state.findings


__all__ = [
    "GROUPS",
    "GROUP_III",
    "LiveRun",
    "Samples",
    "current_run",
    "group_of",
    "layer_plan",
    "layer_progress",
    "live_findings",
    "live_growth_rate",
    "live_tools",
    "snapshot",
    "updates",
]
