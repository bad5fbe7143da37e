"""Read models of the runs pages: the runs table with its spec verdicts, one channel of several
runs overlaid, and one run's detail (layers as targeted, measured and predicted; its findings;
its raw files).

    table = runs_table(engine)                         # one row per run, spec pass / fail
    shown = filter_runs(table, RunFilters(tools=["MBE1"]))
    overlay = overlay_channel(settings, engine, ["MBE1-20260105-01", ...], "sub.T")
    detail = run_detail(settings, engine, "MBE1-20260105-01")   # None: no such run
    path = raw_file_path(settings, engine, event_id)            # None: not served

Spec: the project defines no per-recipe tolerance, so a layer is in spec when its XRD thickness is
within ±2 % of the target and its XRD composition (ternaries) within ±0.01 of the target
(`SpecLimits`). A run passes when every measured layer with a target is in spec; runs without
such a measurement are "not measured".

Predictions: the champion of the `growth` model; without a champion the newest registered
version (and the page says so); without any model the physics baseline of the run's features
(`pred_thickness_nm`, `pred_composition`), said as "no model trained yet". The model reads the
run's feature rows exactly as the training set holds them (epi_ml.features.history), with the
run's sensor traces (in-situ mode).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, func, or_, select

from epi_ml.channels import unit_of
from epi_ml.settings import Settings
from epi_ml.store import Lake, read_session
from epi_ml.store.models import Channel, GrowthRun, IngestEvent, Layer, Measurement

MODEL_NAME = "growth"  # epi_ml.models.lifecycle.MODEL_NAME (not imported: it pulls in torch)
MAX_OVERLAY_POINTS = 2000
NOT_MEASURED, PASS, FAIL = "not measured", "pass", "fail"
SPEC_VERDICTS = (PASS, FAIL, NOT_MEASURED)
_EPS = 1e-9  # a deviation exactly at the tolerance is in spec


@dataclass(frozen=True)
class SpecLimits:
    """When a grown layer is in spec (measured against its target)."""

    thickness_rel: float = 0.02  # |XRD thickness − target| / target
    composition_abs: float = 0.01  # |XRD x − target x|

    @property
    def text(self) -> str:
        return (
            f"thickness within ±{self.thickness_rel * 100:g} % of target, "
            f"composition within ±{self.composition_abs:g}"
        )


DEFAULT_LIMITS = SpecLimits()

RUNS_SCHEMA: dict[str, Any] = {
    "run_id": pl.String,
    "tool": pl.String,
    "recipe": pl.String,
    "status": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    "ended_at": pl.Datetime("us", "UTC"),
    "layers": pl.Int64,
    "errors": pl.Int64,
    "warnings": pl.Int64,
    "measured_layers": pl.Int64,
    "out_of_spec_layers": pl.Int64,
    "spec": pl.String,
}


# ---------------------------------------------------------------------------------------------
# Spec verdicts
def layer_spec(frame: pl.DataFrame, limits: SpecLimits = DEFAULT_LIMITS) -> pl.DataFrame:
    """`frame` with target_thickness_nm, target_composition, xrd_thickness_nm, xrd_composition
    gets thickness_error_pct, composition_error, thickness_ok, composition_ok and in_spec (null
    where nothing could be judged: no target or no measurement)."""
    rel = (pl.col("xrd_thickness_nm") - pl.col("target_thickness_nm")) / pl.col("target_thickness_nm")
    judged_t = (pl.col("target_thickness_nm") > 0) & pl.col("xrd_thickness_nm").is_not_null()
    judged_x = pl.col("target_composition").is_not_null() & pl.col("xrd_composition").is_not_null()
    dx = pl.col("xrd_composition") - pl.col("target_composition")
    out = frame.with_columns(
        thickness_error_pct=pl.when(judged_t).then(rel * 100.0),
        composition_error=pl.when(judged_x).then(dx),
        thickness_ok=pl.when(judged_t).then(rel.abs() <= limits.thickness_rel + _EPS),
        composition_ok=pl.when(judged_x).then(dx.abs() <= limits.composition_abs + _EPS),
    )
    t, x = pl.col("thickness_ok"), pl.col("composition_ok")
    return out.with_columns(
        in_spec=pl.when(t.is_null() & x.is_null())
        .then(None)
        .otherwise(t.fill_null(True) & x.fill_null(True))
    )


def run_spec(layers: pl.DataFrame) -> pl.DataFrame:
    """Per run (`run_id`) from `layer_spec` rows: measured_layers (judged), out_of_spec_layers
    and spec = pass | fail | not measured."""
    per_run = layers.group_by("run_id").agg(
        measured_layers=pl.col("in_spec").is_not_null().sum().cast(pl.Int64),
        out_of_spec_layers=(pl.col("in_spec") == False).sum().cast(pl.Int64),  # noqa: E712
    )
    return per_run.with_columns(spec=_verdict(pl.col("measured_layers"), pl.col("out_of_spec_layers")))


def _verdict(measured: pl.Expr, out: pl.Expr) -> pl.Expr:
    return (
        pl.when(measured.fill_null(0) == 0)
        .then(pl.lit(NOT_MEASURED))
        .when(out > 0)
        .then(pl.lit(FAIL))
        .otherwise(pl.lit(PASS))
    )


def _measured_layers(session: Any, run_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Per (run_id, layer): the mean XRD thickness and composition and their uncertainties."""
    query = select(
        Measurement.run_id, Measurement.layer_index, Measurement.kind, Measurement.value,
        Measurement.uncertainty,
    ).where(
        Measurement.layer_index.is_not(None),
        Measurement.kind.in_(("xrd_thickness_nm", "xrd_composition")),
    )  # fmt: skip
    if run_ids is not None:
        query = query.where(Measurement.run_id.in_(list(run_ids)))
    rows = pl.DataFrame(
        session.execute(query).all(),
        schema={"run_id": pl.String, "layer": pl.Int64, "kind": pl.String, "value": pl.Float64,
                "uncertainty": pl.Float64},  # fmt: skip
        orient="row",
    )
    aggs = []
    for kind in ("xrd_thickness_nm", "xrd_composition"):
        of = pl.col("kind") == kind
        aggs += [
            pl.col("value").filter(of).mean().alias(kind),
            pl.col("uncertainty").filter(of).mean().alias(f"{kind}_unc"),
        ]
    return rows.group_by("run_id", "layer").agg(aggs)


# ---------------------------------------------------------------------------------------------
# The runs table
def runs_table(engine: Engine, limits: SpecLimits = DEFAULT_LIMITS) -> pl.DataFrame:
    """Every run in the store, newest first (RUNS_SCHEMA), with its spec verdict."""
    with read_session(engine) as s:
        runs = pl.DataFrame(
            s.execute(
                select(
                    GrowthRun.id, GrowthRun.tool_id, GrowthRun.recipe_name, GrowthRun.status,
                    GrowthRun.started_at, GrowthRun.ended_at, GrowthRun.n_errors, GrowthRun.n_warnings,
                )
            ).all(),
            schema={k: RUNS_SCHEMA[k] for k in
                    ("run_id", "tool", "recipe", "status", "started_at", "ended_at")}
            | {"errors": pl.Int64, "warnings": pl.Int64},
            orient="row",
        )  # fmt: skip
        targets = pl.DataFrame(
            s.execute(
                select(Layer.run_id, Layer.index, Layer.target_thickness_nm, Layer.target_composition)
                .where(Layer.kind == "layer")
            ).all(),
            schema={"run_id": pl.String, "layer": pl.Int64, "target_thickness_nm": pl.Float64,
                    "target_composition": pl.Float64},  # fmt: skip
            orient="row",
        )
        measured = _measured_layers(s)
    judged = layer_spec(targets.join(measured, on=["run_id", "layer"], how="left"), limits)
    counts = targets.group_by("run_id").agg(layers=pl.len().cast(pl.Int64))
    table = (
        runs.join(counts, on="run_id", how="left")
        .join(run_spec(judged), on="run_id", how="left")
        .with_columns(
            pl.col("layers", "measured_layers", "out_of_spec_layers").fill_null(0),
            pl.col("recipe").fill_null(""),
        )
        .with_columns(spec=_verdict(pl.col("measured_layers"), pl.col("out_of_spec_layers")))
    )
    return table.select(list(RUNS_SCHEMA)).cast(RUNS_SCHEMA).sort(
        "started_at", "run_id", descending=True, nulls_last=True
    )


@dataclass(frozen=True)
class RunFilters:
    """What the runs page filters on; empty means everything. Dates are UTC days, inclusive."""

    tools: Sequence[str] = ()
    statuses: Sequence[str] = ()
    recipes: Sequence[str] = ()
    start: date | None = None
    end: date | None = None
    specs: Sequence[str] = ()


def filter_runs(table: pl.DataFrame, filters: RunFilters) -> pl.DataFrame:
    keep = pl.lit(True)
    for column, wanted in (("tool", filters.tools), ("status", filters.statuses),
                           ("recipe", filters.recipes), ("spec", filters.specs)):  # fmt: skip
        if wanted:
            keep &= pl.col(column).is_in(list(wanted))
    day = pl.col("started_at").dt.date()
    if filters.start is not None:
        keep &= day >= filters.start
    if filters.end is not None:
        keep &= day <= filters.end
    return table.filter(keep)


@dataclass(frozen=True)
class FilterOptions:
    tools: list[str]
    statuses: list[str]
    recipes: list[str]
    first_day: date | None
    last_day: date | None


def filter_options(table: pl.DataFrame) -> FilterOptions:
    def values(column: str) -> list[str]:
        return sorted(v for v in table.get_column(column).unique().to_list() if v)

    days = table.get_column("started_at").drop_nulls().dt.date()
    return FilterOptions(
        values("tool"), values("status"), values("recipe"),
        days.min() if days.len() else None, days.max() if days.len() else None,  # type: ignore[arg-type]
    )  # fmt: skip


def grid_rows(table: pl.DataFrame, href: Any) -> list[dict[str, Any]]:
    """Rows of the runs grid: JSON-friendly, times as sortable text, `run` a markdown link made
    with `href(run_id)` (the page's link helper)."""
    out = []
    for row in table.iter_rows(named=True):
        out.append(
            {
                **{k: v for k, v in row.items() if k not in ("started_at", "ended_at")},
                "run": f"[{row['run_id']}]({href(row['run_id'])})",
                "started": _when(row["started_at"]),
                "ended": _when(row["ended_at"]),
                "duration_min": _minutes(row["started_at"], row["ended_at"]),
                "spec_detail": _spec_detail(row),
            }
        )
    return out


def _spec_detail(row: dict[str, Any]) -> str:
    if not row["measured_layers"]:
        return NOT_MEASURED
    ok = row["measured_layers"] - row["out_of_spec_layers"]
    return f"{row['spec']} ({ok}/{row['measured_layers']} layers in spec)"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds() / 60.0, 1) if start and end else None


# ---------------------------------------------------------------------------------------------
# Overlays
def channel_names(engine: Engine) -> list[str]:
    """Canonical channels any tool logs (for the overlay's channel picker)."""
    with read_session(engine) as s:
        return sorted(s.scalars(select(Channel.name).distinct()))


def downsample_minmax(
    x: np.ndarray, y: np.ndarray, max_points: int = MAX_OVERLAY_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points that keep each bucket's minimum and maximum (spikes and dips
    survive, unlike taking every n-th sample). NaNs are dropped; order is kept."""
    finite = np.isfinite(y) & np.isfinite(x)
    x, y = x[finite], y[finite]
    if len(x) <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, len(x), buckets + 1).astype(int)
    keep = np.empty(2 * buckets, dtype=np.int64)
    n = 0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        part = y[lo:hi]
        a, b = lo + int(np.argmin(part)), lo + int(np.argmax(part))
        for i in sorted({a, b}):
            keep[n] = i
            n += 1
    idx = keep[:n]
    return x[idx], y[idx]


@dataclass(frozen=True)
class OverlayTrace:
    run_id: str
    t_s: np.ndarray  # seconds since the run's start
    values: np.ndarray
    n_samples: int  # before downsampling


@dataclass
class Overlay:
    channel: str
    unit: str
    traces: list[OverlayTrace] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "RUN: why" for runs without the channel


def overlay_channel(
    settings: Settings, engine: Engine, run_ids: Sequence[str], channel: str,
    max_points: int = MAX_OVERLAY_POINTS,
) -> Overlay:  # fmt: skip
    """`channel` of each run on time since the run's start, downsampled to ≤ max_points each."""
    lake = Lake(settings.lake_dir)
    out = Overlay(channel, unit_of(channel))
    with read_session(engine) as s:
        query = select(GrowthRun.id, GrowthRun.started_at).where(GrowthRun.id.in_(list(run_ids)))
        starts = dict(s.execute(query).all())
    for run_id in run_ids:
        if run_id not in starts:
            out.missing.append(f"{run_id}: no such run")
            continue
        try:
            has_table = lake.has_run_table(run_id, "sensors")
        except ValueError:
            has_table = False
        if not has_table:
            out.missing.append(f"{run_id}: no sensor table yet (its partition has not been built)")
            continue
        frame = (
            lake.scan_run_table(run_id, "sensors")
            .filter(pl.col("channel") == channel)
            .select("time", "value")
            .sort("time")
            .collect()
        )
        if frame.is_empty():
            out.missing.append(f"{run_id}: no {channel} samples")
            continue
        t0 = starts[run_id] or frame.get_column("time")[0]
        t_s = ((frame.get_column("time") - t0).dt.total_microseconds() / 1e6).to_numpy().astype(np.float64)
        x, y = downsample_minmax(t_s, frame.get_column("value").to_numpy().astype(np.float64), max_points)
        out.traces.append(OverlayTrace(run_id, x.astype(np.float32), y.astype(np.float32), frame.height))
    return out


# ---------------------------------------------------------------------------------------------
# One run
@dataclass(frozen=True)
class RunHeader:
    run_id: str
    tool: str
    recipe: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    operator: str | None
    wafer: str | None
    campaign: str | None
    segmented_by: str
    n_errors: int
    n_warnings: int

    @property
    def duration_min(self) -> float | None:
        return _minutes(self.started_at, self.ended_at)


@dataclass(frozen=True)
class ModelUsed:
    """Which predictions the run's layers show, and a sentence that says so."""

    source: str  # champion | newest | physics
    note: str
    name: str | None = None
    version: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" if self.version is not None else "physics baseline"


@dataclass(frozen=True)
class FindingRow:
    severity: str
    code: str
    message: str
    hint: str
    channel: str | None
    file: str | None
    line: int | None
    start: datetime | None
    end: datetime | None
    t_s: float | None  # the finding's start, seconds since the run's start
    layer: int | None  # the layer its start falls in
    layer_label: str | None
    count: int


@dataclass
class RunDetail:
    header: RunHeader
    layers: pl.DataFrame  # LAYER_COLUMNS
    model: ModelUsed
    findings: list[FindingRow]
    raw_files: pl.DataFrame  # RAW_FILE_COLUMNS
    run_measurements: dict[str, float]  # measurements of the whole run (PL peak, ...)
    limits: SpecLimits = DEFAULT_LIMITS

    @property
    def spec(self) -> str:
        judged = self.layers.filter(pl.col("in_spec").is_not_null())
        if judged.is_empty():
            return NOT_MEASURED
        return FAIL if (judged.get_column("in_spec") == False).any() else PASS  # noqa: E712


LAYER_COLUMNS: dict[str, Any] = {
    "layer": pl.Int64, "kind": pl.String, "material": pl.String, "label": pl.String,
    "started_at": pl.Datetime("us", "UTC"), "ended_at": pl.Datetime("us", "UTC"),
    "target_thickness_nm": pl.Float64, "xrd_thickness_nm": pl.Float64, "xrd_thickness_nm_unc": pl.Float64,
    "physics_thickness_nm": pl.Float64, "pred_thickness_nm": pl.Float64,
    "pred_thickness_lower_nm": pl.Float64, "pred_thickness_upper_nm": pl.Float64,
    "target_composition": pl.Float64, "xrd_composition": pl.Float64, "xrd_composition_unc": pl.Float64,
    "physics_composition": pl.Float64, "pred_composition": pl.Float64,
    "pred_composition_lower": pl.Float64, "pred_composition_upper": pl.Float64,
    "thickness_error_pct": pl.Float64, "composition_error": pl.Float64,
    "thickness_ok": pl.Boolean, "composition_ok": pl.Boolean, "in_spec": pl.Boolean,
}  # fmt: skip
PREDICTION_COLUMNS = ("pred_thickness_nm", "pred_thickness_lower_nm", "pred_thickness_upper_nm",
                      "pred_composition", "pred_composition_lower", "pred_composition_upper")  # fmt: skip
RAW_FILE_COLUMNS: dict[str, Any] = {
    "event_id": pl.Int64, "name": pl.String, "original_path": pl.String, "kind": pl.String,
    "format": pl.String, "status": pl.String, "size_bytes": pl.Int64,
    "time_start": pl.Datetime("us", "UTC"), "time_end": pl.Datetime("us", "UTC"),
    "n_findings": pl.Int64, "used": pl.Boolean, "why": pl.String, "href": pl.String,
}  # fmt: skip


def merge_layers(
    layers: pl.DataFrame,
    measured: pl.DataFrame,
    physics: pl.DataFrame | None,
    predicted: pl.DataFrame | None,
    limits: SpecLimits = DEFAULT_LIMITS,
) -> pl.DataFrame:
    """One row per recipe step (LAYER_COLUMNS): the targets (`layers`: layer, kind, material,
    label, started_at, ended_at, target_thickness_nm, target_composition), the XRD results
    (`measured`: layer, xrd_thickness_nm, xrd_composition (+ _unc)), the physics baseline
    (`physics`: layer, pred_thickness_nm, pred_composition of the features table) and the model
    (`predicted`: layer + PREDICTION_COLUMNS). Without a model the predictions are the physics
    baseline, without an interval."""
    frame = layers.join(measured.drop("run_id", strict=False), on="layer", how="left")
    if physics is not None and not physics.is_empty():
        frame = frame.join(
            physics.select(
                "layer",
                pl.col("pred_thickness_nm").alias("physics_thickness_nm"),
                pl.col("pred_composition").cast(pl.Float64).fill_nan(None).alias("physics_composition"),
            ),
            on="layer", how="left",
        )  # fmt: skip
    if predicted is not None and not predicted.is_empty():
        frame = frame.join(predicted.select("layer", *PREDICTION_COLUMNS), on="layer", how="left")
    elif "physics_thickness_nm" in frame.columns:
        frame = frame.with_columns(
            pred_thickness_nm=pl.col("physics_thickness_nm"), pred_composition=pl.col("physics_composition")
        )
    for name, dtype in LAYER_COLUMNS.items():
        if name not in frame.columns and name not in ("thickness_error_pct", "composition_error",
                                                      "thickness_ok", "composition_ok", "in_spec"):  # fmt: skip
            frame = frame.with_columns(pl.lit(None, dtype).alias(name))
    frame = layer_spec(frame, limits)
    return frame.select(list(LAYER_COLUMNS)).cast(LAYER_COLUMNS).sort("layer")


def run_detail(
    settings: Settings, engine: Engine, run_id: str, *, limits: SpecLimits = DEFAULT_LIMITS,
    predict: bool = True,
) -> RunDetail | None:  # fmt: skip
    """Everything the run page shows; None when the store has no run `run_id`."""
    with read_session(engine) as s:
        run = s.get(GrowthRun, run_id)
        if run is None:
            return None
        header = RunHeader(
            run.id, run.tool_id, run.recipe_name or "", run.status, run.started_at, run.ended_at,
            run.operator, run.wafer, run.campaign_id, run.segmented_by, run.n_errors, run.n_warnings,
        )  # fmt: skip
        findings = list(run.findings or [])
        steps = pl.DataFrame(
            [
                {"layer": step.index, "kind": step.kind, "material": step.material, "label": step.label,
                 "started_at": step.started_at, "ended_at": step.ended_at,
                 "target_thickness_nm": step.target_thickness_nm,
                 "target_composition": step.target_composition}
                for step in run.layers
            ],
            schema={k: LAYER_COLUMNS[k] for k in ("layer", "kind", "material", "label", "started_at",
                                                   "ended_at", "target_thickness_nm", "target_composition")},
        )  # fmt: skip
        measured = _measured_layers(s, [run_id])
        whole = s.execute(
            select(Measurement.kind, func.avg(Measurement.value))
            .where(Measurement.run_id == run_id, Measurement.layer_index.is_(None))
            .group_by(Measurement.kind)
        ).all()
    physics = _features(settings, run_id)
    predicted, model = (None, ModelUsed("physics", "predictions not asked for"))
    if predict:
        predicted, model = predict_run_layers(settings, engine, run_id)
    layers = merge_layers(steps, measured, physics, predicted, limits)
    return RunDetail(
        header=header,
        layers=layers,
        model=model,
        findings=finding_rows(findings, header.started_at, layers),
        raw_files=raw_files(settings, engine, header),
        run_measurements={k: float(v) for k, v in whole},
        limits=limits,
    )


def _features(settings: Settings, run_id: str) -> pl.DataFrame | None:
    lake = Lake(settings.lake_dir)
    try:
        if not lake.has_run_table(run_id, "features"):
            return None
    except ValueError:  # not a name the lake can hold
        return None
    return lake.read_run_table(run_id, "features")


def finding_rows(
    findings: Sequence[dict[str, Any]], started_at: datetime | None, layers: pl.DataFrame
) -> list[FindingRow]:
    """The run's findings (Finding.to_dict), each placed in time (since the run's start) and in
    the recipe step its start falls in."""
    steps = [
        (r["layer"], r["started_at"], r["ended_at"], f"{r['layer']} {r['label'] or r['material']}")
        for r in layers.select("layer", "started_at", "ended_at", "label", "material").iter_rows(named=True)
        if r["started_at"] and r["ended_at"]
    ]
    rows = []
    for f in findings:
        start = _parse_time(f.get("start"))
        end = _parse_time(f.get("end"))
        layer = f.get("details", {}).get("layer") if isinstance(f.get("details"), dict) else None
        label = None
        if layer is None and start is not None:
            for index, lo, hi, text in steps:
                if lo <= start < hi:
                    layer, label = index, text
                    break
        elif layer is not None:
            label = next((text for index, _, _, text in steps if index == layer), str(layer))
        rows.append(
            FindingRow(
                severity=str(f.get("severity", "")), code=str(f.get("code", "")),
                message=str(f.get("message", "")), hint=str(f.get("hint") or ""),
                channel=f.get("channel"), file=f.get("file"), line=f.get("line"),
                start=start, end=end,
                t_s=(start - started_at).total_seconds() if start and started_at else None,
                layer=layer, layer_label=label, count=int(f.get("count") or 1),
            )
        )  # fmt: skip
    return rows


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Predictions of a grown run's layers
def choose_model(engine: Engine, name: str = MODEL_NAME) -> tuple[Any, ModelUsed]:
    """(RegisteredModel or None, what the page says about it)."""
    from epi_ml.models import registry

    champion = registry.model_for_alias(engine, name, registry.CHAMPION)
    if champion is not None:
        return champion, ModelUsed("champion", f"predicted by the champion, {champion.label}",
                                   champion.name, champion.version)  # fmt: skip
    versions = registry.list_models(engine, name)
    if versions:
        newest = versions[0]
        return newest, ModelUsed(
            "newest", f"no champion yet: predicted by the newest version, {newest.label} "
            "(not promoted by the gate)", newest.name, newest.version,
        )  # fmt: skip
    return None, ModelUsed("physics", "no model trained yet: the physics baseline (calibration in "
                           "force) is shown as the prediction, without an interval")  # fmt: skip


def predict_run_layers(
    settings: Settings, engine: Engine, run_id: str
) -> tuple[pl.DataFrame | None, ModelUsed]:
    """The chosen model's predictions of the run's growth layers (layer + PREDICTION_COLUMNS),
    or None with the reason in the ModelUsed note (the page then shows the physics baseline)."""
    chosen, used = choose_model(engine)
    if chosen is None:
        return None, used
    fallback = "; the physics baseline is shown instead"
    from epi_ml.features.core import FEATURES_VERSION

    if chosen.features_version not in (None, FEATURES_VERSION):
        return None, ModelUsed("physics", f"{chosen.label} reads features version "
                               f"{chosen.features_version}, not {FEATURES_VERSION}{fallback}")  # fmt: skip
    try:
        rows = run_feature_rows(settings, engine, run_id)
        if rows is None:
            return None, ModelUsed("physics", f"run {run_id} has no features yet (its partition "
                                   "has not been built): no prediction")  # fmt: skip
        from epi_ml.models.data import derived_columns, traces_for

        rows = derived_columns(rows).filter(
            (pl.col("kind") == "layer") & (pl.col("pred_thickness_nm") > 0) & pl.col("growth_s").is_not_null()
        )
        if rows.is_empty():
            return None, ModelUsed(used.source, f"{used.note}; the run has no growth layer to predict",
                                   used.name, used.version)  # fmt: skip
        model = _load_model(chosen, settings.device)
        lake = Lake(settings.lake_dir)
        traces = (
            lake.read_run_table(run_id, "traces").select(pl.lit(run_id).alias("run_id"), pl.all())
            if lake.has_run_table(run_id, "traces") else pl.DataFrame()
        )  # fmt: skip
        data = model.spec.encode(rows, traces_for(rows, traces) if not traces.is_empty() else None)
        table = model.predict(rows, data)
    except Exception as exc:  # noqa: BLE001 - the page must show the run, with the reason
        return None, ModelUsed("physics", f"{chosen.label} could not predict this run "
                               f"({type(exc).__name__}: {exc}){fallback}")  # fmt: skip
    predicted = table.select(
        pl.Series("layer", rows.get_column("layer").to_list(), dtype=pl.Int64),
        pl.col("thickness_nm").alias("pred_thickness_nm"),
        pl.col("thickness_lower_nm").alias("pred_thickness_lower_nm"),
        pl.col("thickness_upper_nm").alias("pred_thickness_upper_nm"),
        pl.col("composition").alias("pred_composition"),
        pl.col("composition_lower").alias("pred_composition_lower"),
        pl.col("composition_upper").alias("pred_composition_upper"),
    ).with_columns(pl.col(PREDICTION_COLUMNS).cast(pl.Float64).fill_nan(None))
    return predicted, used


_MODELS: dict[tuple[str | None, str | None, str], Any] = {}
_MODELS_LOCK = threading.Lock()
_MODELS_KEPT = 4


def _load_model(chosen: Any, device: str) -> Any:
    """A loaded model per artifact: the page is drawn on every visit, and loading verifies the
    artifact's digest and reads the weights, so it is done once per process."""
    from epi_ml.models.lifecycle import load_model

    key = (chosen.artifact_path, chosen.artifact_sha256, device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            while len(_MODELS) >= _MODELS_KEPT:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = load_model(chosen, device=device)
        return _MODELS[key]


def run_feature_rows(settings: Settings, engine: Engine, run_id: str) -> pl.DataFrame | None:
    """The run's feature rows with the sequence features, as the training set computes them
    (the tool's earlier runs from the training set, the refills and measurements of the store)."""
    from epi_ml.features.build import TRAINING_DATASET, TRAINING_NAME, history_inputs
    from epi_ml.features.core import feature_schema
    from epi_ml.features.history import with_history
    from epi_ml.ingest.files import IngestContext

    features = _features(settings, run_id)
    if features is None or features.is_empty():
        return None
    columns = [c for c in feature_schema() if c in features.columns]
    tool = features.get_column("tool")[0]
    lake = Lake(settings.lake_dir)
    path = lake.dataset_path(TRAINING_DATASET, TRAINING_NAME)
    frames = [features.select(columns)]
    if path.exists():
        earlier = pl.scan_parquet(path).filter((pl.col("tool") == tool) & (pl.col("run_id") != run_id))
        frames.insert(0, earlier.select(columns).collect())
    refills, measured = history_inputs(IngestContext(settings=settings, engine=engine))
    both = pl.concat(frames, how="vertical_relaxed")
    return with_history(both, refills, measured).filter(pl.col("run_id") == run_id).sort("layer")


# ---------------------------------------------------------------------------------------------
# Raw files
def raw_files(settings: Settings, engine: Engine, header: RunHeader) -> pl.DataFrame:
    """Every file received for the run (RAW_FILE_COLUMNS): those that name it, the tool's files
    whose time span overlaps the run, and the measurement files its results came from. `used`:
    the run's partition read it (lake/runs/<id>/inputs.json)."""
    used = _inputs_used(settings, header.run_id)
    with read_session(engine) as s:
        names_run = IngestEvent.run_id == header.run_id
        clauses = [names_run]
        if header.started_at is not None:
            end = header.ended_at or header.started_at + timedelta(days=1)
            clauses.append(
                (IngestEvent.tool_id == header.tool)
                & (IngestEvent.time_start <= end)
                & (IngestEvent.time_end >= header.started_at)
            )
        sources = select(Measurement.source_sha256).where(
            Measurement.run_id == header.run_id, Measurement.source_sha256.is_not(None)
        )
        clauses.append(IngestEvent.sha256.in_(sources))
        events = list(s.scalars(select(IngestEvent).where(or_(*clauses)).order_by(IngestEvent.id)))
        rows = []
        for e in events:
            why = ("names the run" if e.run_id == header.run_id
                   else "measurements of the run" if e.kind == "measurements" and e.tool_id is None
                   else "overlaps the run on its tool")  # fmt: skip
            rows.append(
                {
                    "event_id": e.id, "name": Path(e.original_path).name, "original_path": e.original_path,
                    "kind": e.kind, "format": e.format, "status": e.status, "size_bytes": e.size_bytes,
                    "time_start": e.time_start, "time_end": e.time_end,
                    "n_findings": len(e.findings or []), "used": e.sha256 in used, "why": why,
                    "href": file_href(e.id),
                }
            )  # fmt: skip
    return pl.DataFrame(rows, schema=RAW_FILE_COLUMNS)


def file_href(event_id: int) -> str:
    """The read-only download of an ingest event's raw bytes (dashboard/app.py serves it)."""
    return f"/files/{int(event_id)}"


def _inputs_used(settings: Settings, run_id: str) -> set[str]:
    try:
        path = Lake(settings.lake_dir).run_dir(run_id) / "inputs.json"
    except ValueError:
        return set()
    if not path.exists():
        return set()
    try:
        return {i["sha256"] for i in json.loads(path.read_text(encoding="utf-8")).get("inputs", [])}
    except (ValueError, KeyError, TypeError):
        return set()


def raw_file_path(settings: Settings, engine: Engine, event_id: int) -> Path | None:
    """The archived bytes of an ingest event, or None (no such event, file gone, or a path outside
    the home's archive / quarantine folders: nothing else is ever served). A home that was moved
    or copied still finds its files by their content address in its own archive."""
    from epi_ml.ingest.archive import Archive

    with read_session(engine) as s:
        event = s.get(IngestEvent, int(event_id))
        if event is None:
            return None
        recorded, sha256 = Path(event.archive_path), event.sha256
    roots = [settings.archive_dir.resolve(), settings.quarantine_dir.resolve()]
    for candidate in (recorded, Archive(settings.archive_dir).path_for(sha256, recorded.name)):
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            continue
        if any(resolved.is_relative_to(root) for root in roots) and resolved.is_file():
            return resolved
    return None


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def fmt(value: Any, digits: int = 1) -> str:
    """A number for a table cell ('' when absent)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"
