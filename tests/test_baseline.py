"""The physics baseline: layer and recipe predictions from cell calibrations, exact on synthetic
calibrations, and on the twin's campaign against the true layers (error vs calibration age)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from epi_ml.baseline import predict_grown_layer, predict_layer, predict_recipe, setpoints_for_rate
from epi_ml.calibration import CellCalibration, history_from_files, latest_calibrations
from epi_ml.physics import (
    K_B_EV,
    indium_incorporation,
    ml_per_s_to_um_per_h,
    monolayer_thickness_nm,
)
from epi_ml.twin.recipe import load_recipe, parse_recipe

T0 = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
CAMPAIGN_RUNS, CAMPAIGN_SEED = 60, 5
MIN_LAYER_S = 120.0  # shorter layers carry the shutter transient (4 % over ~20 s) in the truth


def cal(cell: str, a: float, energy: float, rate: float | None) -> CellCalibration:
    return CellCalibration("T", cell, T0, "scan", energy, a, 1.0, 0.0, 6, 700.0, 1150.0, rate)


CALS = {
    "Ga": cal("Ga", 9.28, 2.65, 2.11e6),
    "Al": cal("Al", 2.80, 2.25, 5.5e6),
    "In": cal("In", 7.46, 2.21, 1.15e6),
}


def bep(cell: str, t: float) -> float:
    c = CALS[cell]
    return math.exp(c.ln_prefactor - c.activation_ev / (K_B_EV * (t + 273.15)))


# ---------------------------------------------------------------------------------------------
# Exact on synthetic calibrations
def test_binary_layer_rate_and_thickness_are_exact() -> None:
    p = predict_layer("GaAs", {"Ga": 1000.0}, 600.0, CALS)
    flux = 2.11e6 * bep("Ga", 1000.0)
    assert p.fluxes_ml_s == {"Ga": pytest.approx(flux, rel=1e-12)}
    assert p.growth_rate_ml_s == pytest.approx(flux, rel=1e-12)
    assert p.growth_rate_nm_s == pytest.approx(flux * float(monolayer_thickness_nm("GaAs")))
    assert p.thickness_nm == pytest.approx(p.growth_rate_nm_s * 600.0)
    assert p.growth_rate_um_h == pytest.approx(float(ml_per_s_to_um_per_h(flux)))
    assert p.composition is None and p.indium_incorporation is None and p.notes == ()
    assert p.bep_torr["Ga"] == pytest.approx(bep("Ga", 1000.0))
    assert p.calibrated_at == {"Ga": T0}
    d = p.to_dict()
    assert d["calibrated_at"]["Ga"] == T0.isoformat()
    json.dumps(d)


def test_ternary_composition_and_indium_loss_are_exact() -> None:
    p = predict_layer("AlGaAs", {"Ga": 1000.0, "Al": 1100.0}, 100.0, CALS)
    f_ga, f_al = 2.11e6 * bep("Ga", 1000.0), 5.5e6 * bep("Al", 1100.0)
    x = f_al / (f_al + f_ga)
    assert p.composition == pytest.approx(x, rel=1e-12)
    assert p.growth_rate_ml_s == pytest.approx(f_ga + f_al, rel=1e-12)
    assert p.thickness_nm == pytest.approx(
        (f_ga + f_al) * float(monolayer_thickness_nm("AlGaAs", x)) * 100.0, rel=1e-12
    )
    cold = predict_layer("InGaAs", {"Ga": 1000.0, "In": 800.0}, 30.0, CALS, substrate_c=510.0)
    hot = predict_layer("InGaAs", {"Ga": 1000.0, "In": 800.0}, 30.0, CALS, substrate_c=600.0)
    f_in = 1.15e6 * bep("In", 800.0)
    for p, t in ((cold, 510.0), (hot, 600.0)):
        kept = float(indium_incorporation(t))
        assert p.indium_incorporation == pytest.approx(kept)
        assert p.incorporated_ml_s["In"] == pytest.approx(f_in * kept)
        assert p.fluxes_ml_s["In"] == pytest.approx(f_in)
        assert p.composition == pytest.approx(f_in * kept / (f_in * kept + f_ga))
    assert hot.composition < cold.composition  # In desorbs above ~545 °C
    no_loss = predict_layer("InGaAs", {"Ga": 1000.0, "In": 800.0}, 30.0, CALS)
    assert no_loss.composition == pytest.approx(f_in / (f_in + f_ga))


def test_a_layer_grown_with_each_cell_open_for_its_own_time() -> None:
    """A stuck or late shutter (epi_ml.validation.shutter_load): each cell deposits its flux for
    its own physical open time."""
    temps = {"Ga": 1000.0, "Al": 1100.0}
    same = predict_grown_layer("AlGaAs", temps, {"Ga": 100.0, "Al": 100.0}, CALS)
    logged = predict_layer("AlGaAs", temps, 100.0, CALS)
    assert same.thickness_nm == pytest.approx(logged.thickness_nm, rel=1e-12)
    assert same.composition == pytest.approx(logged.composition, rel=1e-12)
    f_ga, f_al = 2.11e6 * bep("Ga", 1000.0), 5.5e6 * bep("Al", 1100.0)
    no_ga = predict_grown_layer("AlGaAs", temps, {"Ga": 0.0, "Al": 100.0}, CALS)  # Ga stuck closed
    assert no_ga.composition == 1.0
    assert no_ga.thickness_nm == pytest.approx(f_al * 100.0 * float(monolayer_thickness_nm("AlGaAs", 1.0)))
    assert no_ga.growth_rate_ml_s == pytest.approx(f_al)
    half = predict_grown_layer("AlGaAs", temps, {"Ga": 50.0, "Al": 100.0}, CALS)
    assert half.composition == pytest.approx(f_al / (f_al + 0.5 * f_ga))
    # Ga left open 30 s into an AlAs layer adds its monolayers
    late = predict_grown_layer("AlAs", {"Al": 1100.0, "Ga": 1000.0}, {"Al": 100.0, "Ga": 30.0}, CALS)
    alone = predict_layer("AlAs", {"Al": 1100.0}, 100.0, CALS)
    extra = f_ga * 30.0 * float(monolayer_thickness_nm("AlAs"))
    assert late.thickness_nm == pytest.approx(alone.thickness_nm + extra)
    assert predict_grown_layer("GaAs", {"Ga": 1000.0}, {"Ga": 0.0}, CALS).thickness_nm == 0.0


def test_missing_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="temperature of Al"):
        predict_layer("AlGaAs", {"Ga": 1000.0}, 10.0, CALS)
    with pytest.raises(ValueError, match="no calibration for In"):
        predict_layer("InAs", {"In": 800.0}, 10.0, {"Ga": CALS["Ga"]})
    with pytest.raises(ValueError, match="BEP-to-rate factor for Ga"):
        predict_layer("GaAs", {"Ga": 1000.0}, 10.0, {"Ga": CALS["Ga"].with_rate(None)})
    with pytest.raises(ValueError, match="unknown material"):
        predict_layer("GaN", {"Ga": 1000.0}, 10.0, CALS)
    far = predict_layer("GaAs", {"Ga": 1200.0}, 10.0, CALS)
    assert far.notes and "extrapolated" in far.notes[0]


def test_set_points_for_a_rate_invert_the_prediction() -> None:
    temps = setpoints_for_rate("AlGaAs", 1.0, 0.3, CALS)
    assert set(temps) == {"Ga", "Al"} and all(round(t, 1) == t for t in temps.values())
    p = predict_layer("AlGaAs", temps, 1.0, CALS)
    assert p.composition == pytest.approx(0.3, abs=0.002)  # set points are rounded to 0.1 °C
    assert p.growth_rate_um_h == pytest.approx(1.0, rel=0.005)


def test_recipe_layers_from_targets_set_points_and_durations() -> None:
    recipe = parse_recipe(
        {
            "name": "mixed",
            "growth_rate_um_h": 0.8,
            "substrate_c": 580,
            "layers": [
                {"material": "GaAs", "thickness_nm": 100},
                {"interrupt": 30, "substrate_c": 600},
                {"material": "GaAs", "thickness_nm": 50, "cells": {"Ga": 990.0}},
                {"material": "AlGaAs", "composition": 0.3, "duration_s": 60,
                 "growth_rate_um_h": 1.145},
                {"repeat": 2, "layers": [{"material": "InGaAs", "composition": 0.2,
                                          "thickness_nm": 8, "substrate_c": 510}]},
            ],
        }  # fmt: skip
    )
    result = predict_recipe(recipe, CALS)
    layers = result.layers
    assert [layer.index for layer in layers] == [1, 3, 4, 5, 6]
    first, explicit, timed, well, _ = layers
    assert first.setpoints_from == "rate" and first.target_rate_um_h == 0.8
    assert first.prediction.thickness_nm == pytest.approx(100.0, rel=0.003)
    assert explicit.setpoints_from == "recipe"
    assert explicit.prediction.cell_temperatures_c == {"Ga": 990.0}
    assert explicit.prediction.thickness_nm == pytest.approx(50.0, rel=1e-3)  # time from the rate
    assert explicit.substrate_c == 600.0  # carried from the interrupt
    assert timed.prediction.duration_s == 60.0
    assert timed.prediction.thickness_nm == pytest.approx(1.145 / 3.6 * 60.0, rel=0.005)
    assert well.prediction.composition == pytest.approx(0.2 * 0.995, abs=0.003)  # In loss at 510 °C
    frame = result.frame()
    assert frame.height == 5 and {"Ga_C", "Al_C", "In_C", "thickness_nm", "composition"} <= set(
        frame.columns
    )
    assert result.total_thickness_nm == pytest.approx(frame["thickness_nm"].sum())
    json.dumps(result.to_dict(), default=str)
    library = predict_recipe(load_recipe("hemt_algaas_gaas"), CALS)
    for layer in library.layers:
        p = layer.prediction
        if layer.target_thickness_nm:
            assert p.thickness_nm == pytest.approx(layer.target_thickness_nm, rel=0.01)
        if layer.target_composition:
            assert p.composition == pytest.approx(layer.target_composition, abs=0.003)
    with pytest.raises(ValueError, match="no calibration for Al"):
        predict_recipe(load_recipe("hemt_algaas_gaas"), {"Ga": CALS["Ga"]})


# ---------------------------------------------------------------------------------------------
# The twin: the baseline with the calibration in force vs the true layers
@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from epi_ml.twin import simulate_campaign

    out = tmp_path_factory.mktemp("baseline") / "twin"
    simulate_campaign(out, runs=CAMPAIGN_RUNS, seed=CAMPAIGN_SEED, tools=1)
    return out


@pytest.fixture(scope="module")
def truth(campaign: Path) -> dict:
    return json.loads((campaign / "manifest.json").read_text())["truth"]


@pytest.fixture(scope="module")
def history(campaign: Path) -> pl.DataFrame:
    tool = campaign / "MBE1"
    fittings = sorted((tool / "logs").glob("*/Fitting.txt"))
    frame, _ = history_from_files([tool / "calibrations", *fittings])
    return frame


def _seconds(layer: dict) -> float:
    start, end = (datetime.fromisoformat(layer[k]) for k in ("start", "end"))
    return (end - start).total_seconds()


def _growth_layers(run: dict) -> list[dict]:
    return [la for la in run["layers"] if la["kind"] == "layer" and la["thickness_nm"] > 0]


@pytest.fixture(scope="module")
def errors(truth: dict, history: pl.DataFrame) -> pl.DataFrame:
    """Thickness error of every layer of every fault-free run, predicted from the truth's set
    points and shutter times with the calibration in force (k = 0) and with each older
    calibration session (k = 1, 2, ...: the scans and BEPtoFlux an engineer had then). `dff`:
    ln of the true Ga flux factor (depletion x day) on the calibration's day over the run's."""
    runs = sorted(truth["runs"], key=lambda r: r["start"])
    first_run_of_day: dict[str, dict] = {}
    for run in runs:
        first_run_of_day.setdefault(run["start"][:10], run)
    sessions = history.filter((pl.col("source") == "scan") & (pl.col("cell") == "In"))
    rows = []
    for run in runs:
        if run["faults"]:
            continue
        start = datetime.fromisoformat(run["start"])
        older = [t for t in sessions["taken_at"].to_list() if t <= start][::-1]
        states = [latest_calibrations(history, run["tool"], start)]
        states += [
            latest_calibrations(history, run["tool"], t + timedelta(seconds=1)) for t in older[1:]
        ]
        for k, cals in enumerate(states):
            calibrated = cals["Ga"].taken_at
            age = (start - calibrated).total_seconds() / 86400
            then = first_run_of_day.get(calibrated.date().isoformat())
            dff = math.log(then["flux_factor"]["Ga"] / run["flux_factor"]["Ga"]) if then else None
            for layer in _growth_layers(run):
                seconds = _seconds(layer)
                if seconds < MIN_LAYER_S:
                    continue
                p = predict_layer(layer["material"], layer["setpoints"], seconds, cals,
                                  substrate_c=layer["substrate_target_c"])  # fmt: skip
                rows.append({
                    "run": run["run_id"], "k": k, "calibrated": calibrated, "age_days": age,
                    "material": layer["material"], "dff": dff,
                    "err": p.thickness_nm / layer["thickness_nm"] - 1,
                    "x_err": (p.composition - layer["composition"]) if p.composition is not None
                    else None,
                    "vs_engineers": p.growth_rate_nm_s / layer["predicted_rate_nm_s"] - 1
                    if k == 0 else None,
                })  # fmt: skip
    return pl.DataFrame(rows)


def test_baseline_is_the_engineers_prediction(errors: pl.DataFrame) -> None:
    """With the calibration in force (latest scan + that day's BEPtoFlux) the baseline gives the
    rate the twin's engineers planned with, except on RHEED-calibration mornings (the day's
    Fitting.txt already holds the factor that run produced)."""
    same = errors.filter(pl.col("k") == 0)["vs_engineers"].abs()
    assert float((same < 1e-4).mean()) > 0.95
    assert float(same.median()) < 1e-5


def test_fresh_calibrations_predict_true_thickness_within_a_few_percent(
    errors: pl.DataFrame,
) -> None:
    fresh = errors.filter((pl.col("k") == 0) & (pl.col("age_days") < 1))
    assert fresh.height >= 20
    assert float(fresh["err"].abs().mean()) < 0.03  # 2.2 % here; 1.2-2.2 % over seeds 3-11
    assert float(fresh["err"].abs().quantile(0.9)) < 0.05
    in_force = errors.filter(pl.col("k") == 0)
    assert float(in_force["err"].abs().mean()) < 0.03
    x = in_force.filter(pl.col("x_err").is_not_null())["x_err"].abs()
    assert x.len() >= 3 and float(x.mean()) < 0.01


def _within_calibration_slope(frame: pl.DataFrame, x: str) -> float:
    """Least-squares slope of err on `x` after removing each calibration's own mean (its offset:
    scan noise, the RHEED-derived BEPtoFlux, the day it was taken)."""
    centred = frame.with_columns(
        (pl.col(c) - pl.col(c).mean().over("calibrated")).alias(f"{c}_c") for c in ("err", x)
    )
    return float((centred["err_c"] * centred[f"{x}_c"]).sum() / (centred[f"{x}_c"] ** 2).sum())


def test_error_grows_with_calibration_age_and_drops_after_recalibration(
    errors: pl.DataFrame,
) -> None:
    """Depletion: a calibration overestimates the flux more the older it is. Each calibration has
    an offset of its own (±2 %: scan noise, the day's environment, the RHEED-derived factor), larger
    than the ~0.07 %/day of depletion, so the growth is measured within calibrations, against age
    and against the true flux lost since the calibration (robust over seeds 3, 5, 7, 9, 11:
    slopes 0.9-1.3 on the flux change, 0.015-0.16 %/day on age)."""
    gaas = errors.filter((pl.col("material") == "GaAs") & pl.col("dff").is_not_null())
    gaas = gaas.with_columns(pl.col("err").log1p())
    on_flux = _within_calibration_slope(gaas, "dff")
    assert 0.7 < on_flux < 1.4  # the error is the flux lost since the calibration
    centred = gaas.with_columns(
        (pl.col(c) - pl.col(c).mean().over("calibrated")).alias(c) for c in ("err", "dff")
    )
    assert float(np.corrcoef(centred["err"], centred["dff"])[0, 1]) > 0.7
    assert _within_calibration_slope(gaas, "age_days") > 0  # it grows with age
    # recalibrating removes what accumulated: each calibration's GaAs error measured from its own
    # calibration-day runs (its offset removed) is larger when it is two weeks old or more than
    # while it is in force (over seeds 3-11: +0.2 to +1.8 points; raw errors, offsets included,
    # show it in 4 of those 5 seeds)
    gaas = errors.filter(pl.col("material") == "GaAs")  # Ga only: one cell's depletion
    offsets = gaas.filter(pl.col("age_days") < 1).group_by("calibrated").agg(
        offset=pl.col("err").mean()
    )
    aged = gaas.join(offsets, on="calibrated").with_columns(aged=pl.col("err") - pl.col("offset"))
    in_force = aged.filter(pl.col("k") == 0)
    stale = aged.filter(pl.col("age_days") >= 14)
    assert stale.height >= 50 and in_force.height >= 50
    assert float(stale["aged"].mean()) > float(in_force["aged"].mean())
    assert abs(float(in_force["aged"].mean())) < 0.01


def test_recipe_prediction_reproduces_the_twins_plan(
    campaign: Path, truth: dict, history: pl.DataFrame
) -> None:
    """A run's recipe + the calibration in force: the set points and layer times the tool used,
    and a thickness close to what grew. (RHEED-calibration runs are left out: the day's
    Fitting.txt holds the BEPtoFlux they produced, not the one they ran with.)"""
    checked = 0
    thickness_errors = []
    for run in truth["runs"]:
        if run["faults"] or run["recipe"] == "rheed_calibration":
            continue
        recipe = load_recipe(campaign / "MBE1" / "recipes" / f"{run['run_id']}.yaml")
        cals = latest_calibrations(history, run["tool"], datetime.fromisoformat(run["start"]))
        predicted = {layer.index: layer for layer in predict_recipe(recipe, cals).layers}
        for layer in _growth_layers(run):
            mine = predicted[layer["index"]].prediction
            for cell in mine.cell_temperatures_c:
                t = layer["setpoints"][cell]
                assert mine.cell_temperatures_c[cell] == pytest.approx(t, abs=0.11), run["run_id"]
            assert mine.duration_s == pytest.approx(_seconds(layer), rel=0.003, abs=0.2)
            if _seconds(layer) >= MIN_LAYER_S:
                thickness_errors.append(mine.thickness_nm / layer["thickness_nm"] - 1)
            checked += 1
    assert checked > 100
    assert float(np.mean(np.abs(thickness_errors))) < 0.03
