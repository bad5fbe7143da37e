"""What `/calibration` shows for a tool: each cell's calibration history (Arrhenius fits and the
scan points they were fitted on), its flux at the working temperature over time with refills,
the calibration in force with the next recommended one, and the stored drift alarms.

    ctx = read_context(settings)                       # no migration, no folders created
    view = calibration_view(ctx, tool=None)            # CalibrationView (first tool by default)

Everything comes from the store and the lake through `epi_ml.calibration` (the same history the
`cell_calibrations` asset writes), so the page shows what features and models use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import polars as pl
from sqlalchemy import select

from epi_ml.calibration.cells import FITTING, SCAN, CellCalibration, drift_series
from epi_ml.calibration.history import calibration_history, latest_calibrations
from epi_ml.calibration.schedule import (
    MAX_INTERVAL_DAYS,
    TOLERANCE,
    NextCalibration,
    chain_of,
    next_calibration,
)
from epi_ml.channels import CELLS
from epi_ml.features.build import TRAINING_DATASET, TRAINING_NAME
from epi_ml.ingest.files import IngestContext
from epi_ml.ingest.tools import load_tool_configs
from epi_ml.physics import c_to_k
from epi_ml.settings import Settings
from epi_ml.store import engine_for, read_session
from epi_ml.store.models import Alarm, Cell, IngestEvent

DRIFT_CODE = "calibration_drift"
POINTS_SCHEMA = {
    "cell": pl.String,
    "taken_at": pl.Datetime("us", "UTC"),
    "T_C": pl.Float64,
    "inv_t_k": pl.Float64,  # 1000 / T (K)
    "net_bep": pl.Float64,  # BFM minus background (Torr): what the fit used
}
LINES_SCHEMA = {
    "cell": pl.String,
    "taken_at": pl.Datetime("us", "UTC"),
    "source": pl.String,
    "T_C": pl.Float64,
    "inv_t_k": pl.Float64,
    "bep": pl.Float64,
}
FLUX_SCHEMA = {
    "cell": pl.String,
    "taken_at": pl.Datetime("us", "UTC"),
    "source": pl.String,
    "at_c": pl.Float64,
    "bep_at": pl.Float64,  # BEP (Torr) the calibration gives at the working temperature
    "compared": pl.Boolean,  # in the chain that drift and the schedule compare
}
REFILLS_SCHEMA = {"cell": pl.String, "installed_at": pl.Datetime("us", "UTC"), "charge_g": pl.Float64}
ALARMS_SCHEMA = {
    "id": pl.Int64,
    "channel": pl.String,
    "severity": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "message": pl.String,
    "acknowledged_by": pl.String,
}
LINE_MARGIN_C = 40.0  # a Fitting.txt line (no scan range) is drawn this far around the working T


@dataclass
class CalibrationView:
    """One tool's calibrations, per cell (frames keyed by `cell`)."""

    tools: list[str]
    tool: str | None
    cells: list[str]
    history: pl.DataFrame  # the tool's calibration_history rows (HISTORY_SCHEMA)
    points: pl.DataFrame  # POINTS_SCHEMA: the scans' points
    lines: pl.DataFrame  # LINES_SCHEMA: each calibration's fitted line
    flux: pl.DataFrame  # FLUX_SCHEMA: each calibration's BEP at the working temperature
    refills: pl.DataFrame  # REFILLS_SCHEMA
    alarms: pl.DataFrame  # ALARMS_SCHEMA: stored drift alarms, newest first
    latest: pl.DataFrame  # one row per cell: in force, last drift, next calibration
    schedule: dict[str, NextCalibration] = field(default_factory=dict)
    working_c: dict[str, float] = field(default_factory=dict)
    working_basis: dict[str, str] = field(default_factory=dict)  # "runs" | "scan range"
    tolerance: float = TOLERANCE
    max_interval_days: float = MAX_INTERVAL_DAYS
    now: datetime | None = None

    @property
    def empty(self) -> bool:
        return self.history.is_empty()


def read_context(settings: Settings) -> IngestContext:
    """An ingest context for reading: the home's store, lake and tool settings, nothing created
    or migrated (a page that reads must not change the store)."""
    return IngestContext(
        settings=settings,
        engine=engine_for(settings.database_url),
        configs=load_tool_configs(settings.home),
        landing_root=settings.landing_dir,
    )


def cell_order(cells: list[str]) -> list[str]:
    """Group-III cells first (Ga, Al, In), then dopants, then anything else by name."""
    known = [c for c in CELLS if c in cells]
    return known + sorted(c for c in cells if c not in CELLS)


def calibration_view(
    ctx: IngestContext,
    tool: str | None = None,
    *,
    now: datetime | None = None,
    tolerance: float = TOLERANCE,
    max_interval_days: float = MAX_INTERVAL_DAYS,
    history: pl.DataFrame | None = None,
) -> CalibrationView:
    """The page's data for `tool` (default: the first tool with calibrations)."""
    now = now or datetime.now(UTC)
    history = calibration_history(ctx) if history is None else history
    tools = sorted({t for t in history.get_column("tool").to_list() if t is not None})
    if tool not in tools:
        tool = tools[0] if tools else None
    mine = history.filter(pl.col("tool") == tool) if tool else history.clear()
    cells = cell_order(mine.get_column("cell").unique().to_list())
    calibrations = [CellCalibration.from_row(r) for r in mine.iter_rows(named=True)]
    refills = tool_refills(ctx, tool) if tool else pl.DataFrame(schema=REFILLS_SCHEMA)
    working_c, basis = working_temperatures(ctx, tool, calibrations)
    schedule: dict[str, NextCalibration] = {}
    for cell in cells:
        of_cell = [c for c in calibrations if c.cell == cell]
        times = refills.filter(pl.col("cell") == cell).get_column("installed_at").to_list()
        found = next_calibration(
            of_cell, working_c[cell], refills=times, tolerance=tolerance,
            max_interval_days=max_interval_days, now=now,
        )  # fmt: skip
        if found is not None:
            schedule[cell] = found
    return CalibrationView(
        tools=tools,
        tool=tool,
        cells=cells,
        history=mine,
        points=scan_points(ctx, mine),
        lines=fitted_lines(calibrations, working_c),
        flux=flux_at_working_temperature(calibrations, working_c),
        refills=refills,
        alarms=drift_alarms(ctx, tool) if tool else pl.DataFrame(schema=ALARMS_SCHEMA),
        latest=latest_table(mine, tool, working_c, schedule, now),
        schedule=schedule,
        working_c=working_c,
        working_basis=basis,
        tolerance=tolerance,
        max_interval_days=max_interval_days,
        now=now,
    )


# ---------------------------------------------------------------------------------------------
# Pieces
def working_temperatures(
    ctx: IngestContext, tool: str | None, calibrations: list[CellCalibration]
) -> tuple[dict[str, float], dict[str, str]]:
    """Per cell, the temperature its flux is followed at: the median cell temperature of the
    tool's grown layers with that cell's shutter open (the training set), else the latest
    calibration's mid-range (where drift_alerts compares by default)."""
    grown: dict[str, float] = {}
    path = ctx.lake.dataset_path(TRAINING_DATASET, TRAINING_NAME)
    if tool and path.exists():
        frame = pl.read_parquet(path)
        if "tool" in frame.columns:
            frame = frame.filter(pl.col("tool") == tool)
            for cell in {c.cell for c in calibrations}:
                t_col, open_col = f"{cell}_T_mean", f"open_{cell}_s"
                if t_col in frame.columns and open_col in frame.columns:
                    median = frame.filter(pl.col(open_col) > 0).get_column(t_col).median()
                    if median is not None and math.isfinite(float(median)):  # type: ignore[arg-type]
                        grown[cell] = float(median)  # type: ignore[arg-type]
    temperatures: dict[str, float] = {}
    basis: dict[str, str] = {}
    for cell in {c.cell for c in calibrations}:
        if cell in grown:
            temperatures[cell], basis[cell] = grown[cell], "runs"
            continue
        chain = chain_of(c for c in calibrations if c.cell == cell)
        latest = chain[-1] if chain else [c for c in calibrations if c.cell == cell][-1]
        temperatures[cell], basis[cell] = float(latest.mid_range_c), "scan range"
    return temperatures, basis


def scan_points(ctx: IngestContext, history: pl.DataFrame) -> pl.DataFrame:
    """The points of the history's scans (net BEP = BFM − background where it is positive), read
    from their lake tables (the ingest event of each scan's SHA-256)."""
    scans = history.filter((pl.col("source") == SCAN) & pl.col("sha256").is_not_null())
    if scans.is_empty():
        return pl.DataFrame(schema=POINTS_SCHEMA)
    hashes = scans.get_column("sha256").unique().to_list()
    with read_session(ctx.engine) as session:
        paths = dict(
            session.execute(
                select(IngestEvent.sha256, IngestEvent.lake_path).where(IngestEvent.sha256.in_(hashes))
            ).all()
        )
    frames = []
    for row in scans.iter_rows(named=True):
        lake_path = paths.get(row["sha256"])
        try:
            table = pl.read_parquet(lake_path) if lake_path else None
        except OSError:
            table = None
        if table is None or "T_C" not in table.columns or "bep" not in table.columns:
            continue
        net = pl.col("bep") - (
            pl.when(pl.col("background") > 0).then(pl.col("background")).otherwise(0.0)
            if "background" in table.columns
            else pl.lit(0.0)
        )
        frames.append(
            table.select(
                pl.lit(row["cell"]).alias("cell"),
                pl.lit(row["taken_at"]).cast(POINTS_SCHEMA["taken_at"]).alias("taken_at"),
                pl.col("T_C").cast(pl.Float64),
                (1000.0 / (pl.col("T_C").cast(pl.Float64) + 273.15)).alias("inv_t_k"),
                net.cast(pl.Float64).alias("net_bep"),
            ).filter(pl.col("net_bep") > 0)
        )
    return pl.concat(frames) if frames else pl.DataFrame(schema=POINTS_SCHEMA)


def fitted_lines(
    calibrations: list[CellCalibration], working_c: dict[str, float], n: int = 12
) -> pl.DataFrame:
    """Each calibration's Arrhenius line: over its scan range, or (a Fitting.txt) over the cell's
    scan range when it has scans, else ±LINE_MARGIN_C around the working temperature."""
    ranges: dict[str, tuple[float, float]] = {}
    for c in calibrations:
        if c.t_min_c is not None and c.t_max_c is not None:
            low, high = ranges.get(c.cell, (c.t_min_c, c.t_max_c))
            ranges[c.cell] = (min(low, c.t_min_c), max(high, c.t_max_c))
    rows = []
    for c in calibrations:
        if c.t_min_c is not None and c.t_max_c is not None:
            low, high = c.t_min_c, c.t_max_c
        elif c.cell in ranges:
            low, high = ranges[c.cell]
        else:
            at = working_c.get(c.cell, c.mid_range_c)
            low, high = at - LINE_MARGIN_C, at + LINE_MARGIN_C
        temps = np.linspace(low, high, n)
        for t, bep in zip(temps, np.atleast_1d(c.bep(temps)), strict=True):
            rows.append((c.cell, c.taken_at, c.source, float(t), 1000.0 / float(c_to_k(t)), float(bep)))
    return pl.DataFrame(rows, schema=LINES_SCHEMA, orient="row")


def flux_at_working_temperature(
    calibrations: list[CellCalibration], working_c: dict[str, float]
) -> pl.DataFrame:
    """Each dated calibration's BEP at its cell's working temperature, in time order; `compared`
    marks the chain drift is measured on (scans, or Fitting.txt changes for a cell without)."""
    rows = []
    for cell in sorted({c.cell for c in calibrations}):
        of_cell = [c for c in calibrations if c.cell == cell and c.taken_at is not None]
        chain = {id(c) for c in chain_of(of_cell)}
        at = working_c[cell]
        for c in sorted(of_cell, key=lambda c: (c.taken_at, c.source)):  # type: ignore[arg-type, return-value]
            rows.append((cell, c.taken_at, c.source, at, float(c.bep(at)), id(c) in chain))
    return pl.DataFrame(rows, schema=FLUX_SCHEMA, orient="row")


def tool_refills(ctx: IngestContext, tool: str) -> pl.DataFrame:
    """The tool's cell refills (the store's `cells` rows), oldest first."""
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(Cell.source, Cell.installed_at, Cell.charge_g)
            .where(Cell.tool_id == tool)
            .order_by(Cell.installed_at)
        ).all()
    frame = pl.DataFrame([tuple(r) for r in rows], schema=REFILLS_SCHEMA, orient="row")
    return frame


def drift_alarms(ctx: IngestContext, tool: str) -> pl.DataFrame:
    """The tool's stored drift alarms (`record_drift_alarms`), newest first."""
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(Alarm.id, Alarm.channel, Alarm.severity, Alarm.started_at, Alarm.message,
                   Alarm.acknowledged_by)  # fmt: skip
            .where(Alarm.tool_id == tool, Alarm.code == DRIFT_CODE)
            .order_by(Alarm.started_at.desc(), Alarm.id.desc())
        ).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=ALARMS_SCHEMA, orient="row")


def latest_table(
    history: pl.DataFrame,
    tool: str | None,
    working_c: dict[str, float],
    schedule: dict[str, NextCalibration],
    now: datetime,
) -> pl.DataFrame:
    """One row per cell: the calibration in force (latest_calibrations), its BEP and rate at the
    working temperature, the drift since the calibration before it, and the next calibration."""
    schema = {
        "cell": pl.String, "source": pl.String, "taken_at": pl.Datetime("us", "UTC"),
        "activation_ev": pl.Float64, "r2": pl.Float64, "at_c": pl.Float64, "bep_at": pl.Float64,
        "rate_ml_s": pl.Float64, "percent_per_c": pl.Float64, "last_drift": pl.Float64,
        "hold_c": pl.Float64, "next_at": pl.Datetime("us", "UTC"), "basis": pl.String,
        "reason": pl.String, "overdue": pl.Boolean, "file": pl.String,
    }  # fmt: skip
    if tool is None or history.is_empty():
        return pl.DataFrame(schema=schema)
    in_force = latest_calibrations(history, tool)
    calibrations = [CellCalibration.from_row(r) for r in history.iter_rows(named=True)]
    last_drift = {d.cell: d for d in drift_series(calibrations, working_c)}
    rows = []
    for cell in cell_order(list(in_force)):
        c, at, d, nxt = in_force[cell], working_c[cell], last_drift.get(cell), schedule.get(cell)
        rate = c.rate_ml_s(at)
        rows.append({
            "cell": cell, "source": c.source, "taken_at": c.taken_at, "activation_ev": c.activation_ev,
            "r2": None if math.isnan(c.r2) else c.r2, "at_c": at, "bep_at": float(c.bep(at)),
            "rate_ml_s": rate, "percent_per_c": c.percent_per_c(at),
            "last_drift": d.drift if d else None, "hold_c": d.hold_c if d else None,
            "next_at": nxt.due_at if nxt else None, "basis": nxt.basis if nxt else None,
            "reason": nxt.reason if nxt else None, "overdue": nxt.overdue(now) if nxt else None,
            "file": c.file,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


__all__ = [
    "FITTING",
    "SCAN",
    "CalibrationView",
    "calibration_view",
    "cell_order",
    "drift_alarms",
    "fitted_lines",
    "flux_at_working_temperature",
    "latest_table",
    "read_context",
    "scan_points",
    "tool_refills",
    "working_temperatures",
]
