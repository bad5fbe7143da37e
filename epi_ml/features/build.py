"""Features from the store and the lake: one run's layer features, and the training set.

    table = build_run_features(ctx, run_id)   # lake/runs/<id>/features.parquet
    dataset = build_training_set(ctx)          # lake/training/training_set.parquet

A run's context is read as it stood when the run began: the calibration in force (the latest scan
before its start, rates from the Fitting.txt in force; epi_ml.calibration), the latest As valve
scan (for the V/III ratio), each cell's last refill. The training set is every validated run's
features, with the sequence features (epi_ml.features.history) and the measurements as targets:
per layer `xrd_thickness_nm`, `xrd_composition` (+ `_unc`), per run `pl_peak_nm`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from sqlalchemy import select

from epi_ml.features.core import FEATURES_VERSION, RunContext, feature_schema, layer_features
from epi_ml.features.history import MEASUREMENT_SCHEMA, REFILL_SCHEMA, with_history
from epi_ml.features.traces import TRACE_SCHEMA, layer_traces
from epi_ml.ingest.files import IngestContext
from epi_ml.ingest.run_stages import RunNotReady, window_of
from epi_ml.store import read_session
from epi_ml.store.models import Cell, GrowthRun, IngestEvent, Layer, Measurement

FEATURES_TABLE = "features"
TRACES_TABLE = "traces"
TRAINING_DATASET, TRAINING_NAME, TRACES_NAME = "training", "training_set", "traces"
TARGETS = ("xrd_thickness_nm", "xrd_composition", "pl_peak_nm")
VALVED = "As"


@dataclass(frozen=True)
class TrainingSet:
    frame: pl.DataFrame
    path: Path
    sha256: str
    runs: int
    measured_layers: int
    traces_path: Path


def build_run_features(ctx: IngestContext, run_id: str, history: pl.DataFrame | None = None) -> pl.DataFrame:
    """The run's layer features and sensor traces (epi_ml.features.traces), written to the lake.
    `history`: the calibration history (epi_ml.calibration.calibration_history), when the caller
    already has it."""
    with read_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        if run is None or run.started_at is None:
            raise RunNotReady(f"no growth run {run_id!r} with a start in the store")
        layers = [
            window_of(layer)
            for layer in session.scalars(select(Layer).where(Layer.run_id == run_id).order_by(Layer.index))
            if layer.started_at and layer.ended_at
        ]
        session.expunge_all()
    if not ctx.lake.has_run_table(run_id, "sensors"):
        raise RunNotReady(f"run {run_id} has no sensor table yet; build its partition first")
    sensors = ctx.lake.read_run_table(run_id, "sensors")
    context = run_context(ctx, run.tool_id, run_id, run.started_at, history)
    table = layer_features(sensors, layers, context)
    ctx.lake.write_run_table(run_id, TRACES_TABLE, layer_traces(sensors, layers))
    ctx.lake.write_run_table(run_id, FEATURES_TABLE, table)
    return table


def run_context(
    ctx: IngestContext, tool: str, run_id: str, at: datetime, history: pl.DataFrame | None = None
) -> RunContext:
    from epi_ml.calibration import calibration_history, latest_calibrations

    history = calibration_history(ctx) if history is None else history
    calibrations = latest_calibrations(history, tool, at)
    scans = history.filter(
        (pl.col("tool") == tool) & (pl.col("source") == "scan") & (pl.col("taken_at") <= at)
    )
    last = scans.get_column("taken_at").max() if not scans.is_empty() else None
    return RunContext(
        run_id=run_id,
        tool=tool,
        started_at=at,
        calibrations=calibrations,
        as_valve_curve=as_valve_curve(ctx, tool, at),
        last_calibration_at=last,  # type: ignore[arg-type]
        refilled_at=_refills_before(ctx, tool, at),
    )


def as_valve_curve(
    ctx: IngestContext, tool: str, at: datetime
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The latest As valve scan before `at`: valve % and net BEP (beam minus background)."""
    with read_session(ctx.engine) as session:
        paths = session.scalars(
            select(IngestEvent.lake_path).where(
                IngestEvent.tool_id == tool,
                IngestEvent.kind == "calibration",
                IngestEvent.status != "quarantined",
            )
        ).all()
    best: tuple[datetime, pl.DataFrame] | None = None
    for path in paths:
        if not path:
            continue
        scan = pl.read_parquet(path)
        if scan.is_empty() or "valve_pct" not in scan.columns or scan["cell"][0] != VALVED:
            continue
        taken = scan["taken_at"][0]
        if taken is not None and taken <= at and (best is None or taken > best[0]):
            best = (taken, scan)
    if best is None:
        return None
    scan = best[1].with_columns(net=pl.col("bep") - pl.col("background").fill_null(0.0))
    scan = scan.filter(pl.col("net") > 0).sort("valve_pct")
    if scan.height < 2:
        return None
    return tuple(scan["valve_pct"].to_list()), tuple(scan["net"].to_list())


def _refills_before(ctx: IngestContext, tool: str, at: datetime) -> dict[str, datetime]:
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(Cell.source, Cell.installed_at).where(Cell.tool_id == tool, Cell.installed_at <= at)
        ).all()
    latest: dict[str, datetime] = {}
    for source, installed in rows:
        if source not in latest or installed > latest[source]:
            latest[source] = installed
    return latest


def build_training_set(ctx: IngestContext) -> TrainingSet:
    """Every validated run's features + sequence features + measurements, in the lake; their
    sensor traces beside it (`training/traces.parquet`, keyed by run_id and layer)."""
    with read_session(ctx.engine) as session:
        run_ids = session.scalars(select(GrowthRun.id).where(GrowthRun.status == "validated")).all()
    table = training_frame(ctx, list(run_ids))
    traces = _traces(ctx, table.get_column("run_id").unique().sort().to_list())
    traces_path = ctx.lake.write_dataset(TRAINING_DATASET, TRACES_NAME, traces)
    path = ctx.lake.write_dataset(TRAINING_DATASET, TRAINING_NAME, table)
    measured_layers = table.filter(pl.col("xrd_thickness_nm").is_not_null()).height
    return TrainingSet(
        table, path, file_sha256(path), table.get_column("run_id").n_unique(), measured_layers,
        traces_path,
    )  # fmt: skip


def training_frame(ctx: IngestContext, run_ids: list[str]) -> pl.DataFrame:
    """The training-set rows of these runs (their features, rebuilt where stale, + sequence
    features + measurements), written nowhere: `build_training_set` with the validated runs, or
    an evaluation that also wants the runs a validation quarantined."""
    refills, measured = history_inputs(ctx)
    rebuild_stale_features(ctx, run_ids)
    paths = [ctx.lake.run_table_path(r, FEATURES_TABLE) for r in run_ids]
    frames = [pl.read_parquet(p) for p in paths if p.exists()]
    features = pl.concat(frames) if frames else pl.DataFrame(schema=feature_schema())
    features = features.filter(pl.col("features_version") == FEATURES_VERSION)
    return _with_targets(with_history(features, refills, measured), measured).sort("tool", "start", "layer")


def run_traces(ctx: IngestContext, run_ids: list[str]) -> pl.DataFrame:
    """The sensor traces of these runs, keyed by run_id and layer (as `training/traces.parquet`)."""
    return _traces(ctx, run_ids)


def rebuild_stale_features(ctx: IngestContext, run_ids: list[str]) -> list[str]:
    """Runs whose features were built by another FEATURES_VERSION (an upgrade) are rebuilt from
    their sensor tables, so the training set never silently loses them. Returns their ids."""
    stale = []
    for run_id in run_ids:
        path = ctx.lake.run_table_path(run_id, FEATURES_TABLE)
        if not path.exists() or not ctx.lake.has_run_table(run_id, "sensors"):
            continue  # never built: its partition builds it
        versions = pl.read_parquet(path, columns=["features_version"]).get_column("features_version")
        if set(versions.unique().to_list()) - {FEATURES_VERSION} or not ctx.lake.has_run_table(run_id, TRACES_TABLE):
            stale.append(run_id)
    if stale:
        from epi_ml.calibration import calibration_history

        history = calibration_history(ctx)
        for run_id in stale:
            build_run_features(ctx, run_id, history)
    return stale


def _traces(ctx: IngestContext, run_ids: list[str]) -> pl.DataFrame:
    frames = [
        ctx.lake.read_run_table(r, TRACES_TABLE).select(pl.lit(r).alias("run_id"), pl.all())
        for r in run_ids
        if ctx.lake.has_run_table(r, TRACES_TABLE)
    ]
    schema = {"run_id": pl.String, **TRACE_SCHEMA}
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def history_inputs(ctx: IngestContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the sequence features read from the store: every refill, every measurement."""
    with read_session(ctx.engine) as session:
        refills = pl.DataFrame(
            session.execute(select(Cell.tool_id, Cell.source, Cell.installed_at)).all(),
            schema=list(REFILL_SCHEMA),
            orient="row",
        )
        measured = pl.DataFrame(
            session.execute(
                select(Measurement.run_id, Measurement.layer_index, Measurement.kind,
                       Measurement.value, Measurement.uncertainty, Measurement.measured_at)  # fmt: skip
            ).all(),
            schema=MEASUREMENT_SCHEMA,
            orient="row",
        )
    return refills, measured


def _with_targets(features: pl.DataFrame, measured: pl.DataFrame) -> pl.DataFrame:
    """Measurements of a layer as its targets; those of a whole run (no layer) as `<kind>_run`."""
    of_layers = measured.filter(pl.col("layer_index").is_not_null())
    per_layer = _pivot(of_layers, ["run_id", "layer_index"], TARGETS).rename({"layer_index": "layer"})
    of_runs = measured.filter(pl.col("layer_index").is_null())
    per_run = _pivot(of_runs, ["run_id"], TARGETS)
    per_run = per_run.rename({c: f"{c}_run" for c in per_run.columns if c != "run_id"})
    return features.join(per_layer, on=["run_id", "layer"], how="left").join(
        per_run, on="run_id", how="left"
    )


def _pivot(measured: pl.DataFrame, keys: list[str], kinds: tuple[str, ...]) -> pl.DataFrame:
    """One row per key: `<kind>` = the mean of its measurements, `<kind>_unc` their uncertainty."""
    columns = [
        agg
        for kind in kinds
        for agg in (
            pl.col("value").filter(pl.col("kind") == kind).mean().alias(kind),
            pl.col("uncertainty").filter(pl.col("kind") == kind).mean().alias(f"{kind}_unc"),
        )
    ]
    return measured.group_by(keys).agg(columns)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
