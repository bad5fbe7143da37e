"""The per-layer features of a growth run: one function, one version, for training, the dashboard
and the weekly report alike.

    table = layer_features(sensors, layers, context)      # one row per layer, FEATURE_SCHEMA order

From the run's own sensor table: how long each shutter was open in the layer, as logged and as
the cell's heat load says it physically was (a stuck or late shutter); per group-III cell
the mean, spread and slope of its thermocouple, its offset from the set point, its power, and the
dip the opening shutter caused (the flux transient); As valve; substrate thermocouple, pyrometer
and rotation; chamber and flux-gauge pressure; the RHEED growth rate where the specular spot
oscillates. From the tool's calibrations and refills as they stood when the run began
(`RunContext`): each cell's BEP and flux at its temperature, the material it deposited, hence the
V/III BEP ratio and the physics baseline's rate, thickness and composition; time since the last
calibration and since each cell's refill. What depends on the other runs (charge used since the
refill, the previous run's residual) is added over the run sequence: `epi_ml.features.history`.

Change anything that changes a value and FEATURES_VERSION must change: models record the version
they were trained on and refuse features of another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from epi_ml.channels import GROUP_III
from epi_ml.features.windows import LayerWindow, in_windows, window_statistics, windows_frame
from epi_ml.validation.intervals import state_intervals
from epi_ml.validation.shutter_load import ShutterEvidence, shutter_evidence

# 2: the sensor traces (epi_ml.features.traces) came with the features; 3: the shutters' physical
# open time from the cells' heat load (epi_ml.validation.shutter_load) sets the physics baseline
FEATURES_VERSION = "3"
SHUTTER_SOURCES = ("Ga", "Al", "In", "Si", "Be", "As")
TRANSIENT_S = 60.0  # the opening shutter's flux transient settles within about a minute
RHEED_MIN_S = 10.0  # shorter layers hold too few oscillations to read
# Oscillations damp out within tens of monolayers: a layer's first two minutes hold all of them
# (reading longer windows costs time and finds nothing more; docs/rheed.md).
RHEED_WINDOW = timedelta(seconds=120)
# channel -> feature prefix, for the channels summarised per layer
SUMMARISED = {
    **{f"{c}.T": f"{c}_T" for c in GROUP_III},
    **{f"{c}.T_set": f"{c}_T_set" for c in GROUP_III},
    **{f"{c}.power": f"{c}_power" for c in GROUP_III},
    "As.valve": "as_valve",
    "sub.T": "sub_T",
    "sub.T_pyro": "sub_pyro",
    "sub.rpm": "sub_rpm",
    "P.chamber": "p_chamber",
    "BEP": "bfm",
}


@dataclass(frozen=True)
class RunContext:
    """What the features need from the tool's history, as it stood when the run began."""

    run_id: str
    tool: str
    started_at: datetime
    calibrations: Mapping[str, Any] = field(default_factory=dict)  # cell -> CellCalibration
    as_valve_curve: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # valve %, BEP
    last_calibration_at: datetime | None = None
    refilled_at: Mapping[str, datetime] = field(default_factory=dict)  # cell -> its last refill


def layer_features(
    sensors: pl.DataFrame, layers: Sequence[LayerWindow], context: RunContext
) -> pl.DataFrame:
    """One row per layer (interrupts included) with the columns of `feature_columns()`."""
    if not layers:
        return pl.DataFrame(schema=feature_schema())
    windows = windows_frame(layers)
    samples = sensors.filter(pl.col("value").is_finite())
    stats = _summaries(samples, windows)
    open_s = _shutter_open_seconds(samples, windows)
    evidence = shutter_evidence(samples, [(layer.start, layer.end) for layer in layers])
    transients = _transients(samples, windows, layers)
    rows = []
    for position, layer in enumerate(layers):
        row: dict[str, Any] = {
            "run_id": context.run_id,
            "tool": context.tool,
            "layer": layer.index,
            "kind": layer.kind,
            "material": layer.material,
            "label": layer.label,
            "start": layer.start,
            "end": layer.end,
            "duration_s": layer.duration_s,
            "target_thickness_nm": layer.target_thickness_nm,
            "target_composition": layer.target_composition,
        }
        row.update(stats.get(layer.index, {}))
        row.update({f"open_{s}_s": open_s.get((layer.index, s), 0.0) for s in SHUTTER_SOURCES})
        row.update(_physically_open(row, evidence, position))
        row.update(transients.get(layer.index, {}))
        row.update(_history(row, layer, context))
        row.update(_rheed(sensors, layer))
        row.update(_baseline(row, layer, context))
        row["features_version"] = FEATURES_VERSION
        rows.append(row)
    return pl.DataFrame(rows, schema=feature_schema(), strict=False)


def feature_schema() -> dict[str, pl.DataType]:
    """Every column, in order, with its type (the table has them all, null where not known)."""
    time = pl.Datetime("us", "UTC")
    schema: dict[str, pl.DataType] = {
        "run_id": pl.String(), "tool": pl.String(), "layer": pl.Int64(), "kind": pl.String(),
        "material": pl.String(), "label": pl.String(), "start": time, "end": time,
        "duration_s": pl.Float64(), "target_thickness_nm": pl.Float64(),
        "target_composition": pl.Float64(),
    }  # fmt: skip
    numbers = []
    for prefix in SUMMARISED.values():
        numbers += [f"{prefix}_mean", f"{prefix}_std", f"{prefix}_slope_per_min"]
    numbers += [f"open_{s}_s" for s in SHUTTER_SOURCES]
    numbers += [f"open_{c}_actual_s" for c in GROUP_III]
    numbers += [f"{c}_open_fraction" for c in GROUP_III]
    for c in GROUP_III:
        numbers += [f"{c}_T_dev", f"{c}_T_dip", f"{c}_power_step", f"{c}_bep", f"{c}_flux_ml_s",
                    f"{c}_deposited_ml", f"{c}_days_since_refill"]  # fmt: skip
    numbers += [
        "as_bep", "v_iii", "hours_since_calibration",
        "rheed_rate_ml_s", "rheed_rate_unc_ml_s",
        "growth_s", "pred_rate_ml_s", "pred_rate_nm_s", "pred_thickness_nm", "pred_composition",
    ]  # fmt: skip
    schema.update({name: pl.Float64() for name in numbers})
    schema["features_version"] = pl.String()
    return schema


def feature_columns() -> list[str]:
    return list(feature_schema())


# ---------------------------------------------------------------------------------------------
def _summaries(samples: pl.DataFrame, windows: pl.DataFrame) -> dict[int, dict[str, float]]:
    wanted = samples.filter(pl.col("channel").is_in(list(SUMMARISED)))
    stats = window_statistics(in_windows(wanted, windows))
    out: dict[int, dict[str, float]] = {}
    for row in stats.iter_rows(named=True):
        prefix = SUMMARISED[row["channel"]]
        values = out.setdefault(row["layer"], {})
        values[f"{prefix}_mean"] = row["mean"]
        values[f"{prefix}_std"] = row["std"]
        slope = row["slope_per_s"]
        values[f"{prefix}_slope_per_min"] = None if slope is None else slope * 60.0
    for values in out.values():
        for c in GROUP_III:
            t, t_set = values.get(f"{c}_T_mean"), values.get(f"{c}_T_set_mean")
            values[f"{c}_T_dev"] = None if t is None or t_set is None else t - t_set
    return out


def _shutter_open_seconds(samples: pl.DataFrame, windows: pl.DataFrame) -> dict[tuple[int, str], float]:
    """Seconds each shutter was open inside each layer, from the shutter log (what was commanded)."""
    shutters = samples.filter(pl.col("channel").str.ends_with(".shutter")).sort("channel", "time")
    if shutters.is_empty() or windows.is_empty():
        return {}
    until = windows.get_column("end").max()
    opened = state_intervals(shutters, pl.col("value") >= 0.5, until=until).filter(pl.col("state"))
    overlap = opened.join_where(
        windows.rename({"start": "w_start", "end": "w_end"}),
        pl.col("start") < pl.col("w_end"),
        pl.col("end") > pl.col("w_start"),
    ).with_columns(
        seconds=(
            pl.min_horizontal("end", "w_end") - pl.max_horizontal("start", "w_start")
        ).dt.total_microseconds()
        / 1e6,
        source=pl.col("key").str.replace(r"\.shutter$", ""),
    )
    summed = overlap.group_by("layer", "source").agg(pl.col("seconds").sum())
    return {(r["layer"], r["source"]): r["seconds"] for r in summed.iter_rows(named=True)}


def _physically_open(
    row: dict[str, Any], evidence: ShutterEvidence, position: int
) -> dict[str, Any]:
    """Per group-III cell: `<c>_open_fraction`, the heat-load estimate of the share of its logged
    open time the shutter was physically open (null where it cannot be judged), and
    `open_<c>_actual_s`, the seconds the features count it open: the logged time, corrected only
    where a stuck or late shutter was found (epi_ml.validation.shutter_load)."""
    values: dict[str, Any] = {}
    for c in GROUP_III:
        found = evidence.estimate(position, c)
        values[f"{c}_open_fraction"] = None if found is None else found.fraction
        logged = row.get(f"open_{c}_s", 0.0)
        actual = evidence.open_seconds(position, c) if evidence.changed(position, c) else logged
        values[f"open_{c}_actual_s"] = actual if abs(actual - logged) > 0.5 else logged
    return values


def _transients(
    samples: pl.DataFrame, windows: pl.DataFrame, layers: Sequence[LayerWindow]
) -> dict[int, dict[str, float]]:
    """Per cell opened with the layer: the thermocouple's dip below its set point in the first
    minute (the shutter's heat-load transient) and the controller's power step."""
    channels = [f"{c}.{q}" for c in GROUP_III for q in ("T", "T_set", "power")]
    joined = in_windows(samples.filter(pl.col("channel").is_in(channels)), windows)
    if joined.is_empty():
        return {}
    early = pl.col("t_s") <= TRANSIENT_S
    stats = joined.group_by("layer", "channel").agg(
        pl.col("value").filter(early).min().alias("early_min"),
        pl.col("value").filter(early).mean().alias("early_mean"),
        pl.col("value").filter(~early).mean().alias("late_mean"),
        pl.col("value").mean().alias("mean"),
    )
    by = {(r["layer"], r["channel"]): r for r in stats.iter_rows(named=True)}
    out: dict[int, dict[str, float]] = {}
    for layer in layers:
        if layer.kind != "layer" or layer.duration_s <= TRANSIENT_S:
            continue
        values = out.setdefault(layer.index, {})
        for c in GROUP_III:
            if c not in layer.open_sources:
                continue
            t, t_set, power = (by.get((layer.index, f"{c}.{q}")) for q in ("T", "T_set", "power"))
            if t and t_set and t["early_min"] is not None:
                values[f"{c}_T_dip"] = t_set["mean"] - t["early_min"]
            if power and power["early_mean"] is not None and power["late_mean"] is not None:
                values[f"{c}_power_step"] = power["early_mean"] - power["late_mean"]
    return out


def _history(row: dict[str, Any], layer: LayerWindow, context: RunContext) -> dict[str, Any]:
    """What the tool's calibrations and refills say about this layer's cells."""
    values: dict[str, Any] = {}
    bep_iii = 0.0
    for c in GROUP_III:
        calibration = context.calibrations.get(c)
        t = row.get(f"{c}_T_mean")
        if calibration is not None and t is not None:
            bep = float(calibration.bep(t))
            values[f"{c}_bep"] = bep
            rate = calibration.rate_ml_s(t)
            values[f"{c}_flux_ml_s"] = None if rate is None else float(rate)
            if rate is not None:
                values[f"{c}_deposited_ml"] = float(rate) * row.get(f"open_{c}_actual_s", 0.0)
            if c in layer.open_sources and row.get(f"open_{c}_actual_s", 0.0) > 0:
                bep_iii += bep
        refilled = context.refilled_at.get(c)
        values[f"{c}_days_since_refill"] = (
            (context.started_at - refilled).total_seconds() / 86_400 if refilled else None
        )
    valve = row.get("as_valve_mean")
    if context.as_valve_curve is not None and valve is not None:
        percents, beps = context.as_valve_curve
        # BEP rises steeply and smoothly with the valve: interpolate in log(BEP)
        as_bep = float(np.exp(np.interp(valve, percents, np.log(beps))))
        values["as_bep"] = as_bep
        values["v_iii"] = as_bep / bep_iii if bep_iii > 0 else None
    if context.last_calibration_at is not None:
        since = (layer.start - context.last_calibration_at).total_seconds() / 3600
        values["hours_since_calibration"] = since
    return values


def _rheed(sensors: pl.DataFrame, layer: LayerWindow) -> dict[str, Any]:
    if layer.kind != "layer" or layer.duration_s < RHEED_MIN_S:
        return {}
    from epi_ml.analysis.rheed import growth_rate_in_window

    try:
        end = min(layer.end, layer.start + RHEED_WINDOW)
        estimate = growth_rate_in_window(
            sensors, layer.start, end, material=layer.material, x=layer.target_composition
        )
    except ValueError:  # an alloy of unknown composition: its monolayer thickness is unknown
        return {}
    if not estimate.oscillating:
        return {}
    return {"rheed_rate_ml_s": estimate.rate_ml_s, "rheed_rate_unc_ml_s": estimate.uncertainty_ml_s}


def _baseline(row: dict[str, Any], layer: LayerWindow, context: RunContext) -> dict[str, Any]:
    """The physics baseline for the layer as grown: its cells' mean temperatures over the time
    their shutters were physically open. Where the heat load found a stuck or late shutter, each
    cell deposits for its own open time (`epi_ml.baseline.predict_grown_layer`); elsewhere the
    logged time."""
    from epi_ml.baseline import predict_grown_layer, predict_layer

    cells = [c for c in GROUP_III if c in layer.open_sources]
    if layer.kind != "layer" or not cells:
        return {}
    logged = {c: row.get(f"open_{c}_s", 0.0) for c in GROUP_III}
    actual = {c: row.get(f"open_{c}_actual_s", logged[c]) for c in GROUP_III}
    corrected = any(abs(actual[c] - logged[c]) > 0.5 for c in GROUP_III)
    growth_s = max(logged[c] for c in cells) or layer.duration_s
    if corrected:  # a layer that did not grow at all keeps its logged time (its rate is 0)
        growth_s = max(actual.values()) or growth_s
    temperatures = {c: row.get(f"{c}_T_mean") for c in cells}
    if any(t is None for t in temperatures.values()):
        return {"growth_s": growth_s}
    try:
        if corrected:
            # a cell left open into this layer (not of its material) adds its monolayers
            others = [c for c in GROUP_III if c not in cells and actual[c] > 0]
            temps = {**temperatures, **{c: row[f"{c}_T_mean"] for c in others
                                        if row.get(f"{c}_T_mean") is not None}}  # fmt: skip
            prediction = predict_grown_layer(
                layer.material, temps, {c: actual[c] for c in [*cells, *others]},
                context.calibrations, substrate_c=row.get("sub_pyro_mean"),
            )  # fmt: skip
        else:
            prediction = predict_layer(
                layer.material, temperatures, growth_s, context.calibrations,
                substrate_c=row.get("sub_pyro_mean"),
            )  # fmt: skip
    except ValueError:  # a cell without calibration or rate factor: no baseline for the layer
        return {"growth_s": growth_s}
    return {
        "growth_s": growth_s,
        "pred_rate_ml_s": prediction.growth_rate_ml_s,
        "pred_rate_nm_s": prediction.growth_rate_nm_s,
        "pred_thickness_nm": prediction.thickness_nm,
        "pred_composition": prediction.composition,
    }
