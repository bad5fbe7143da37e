"""The physics baseline: what a layer or a recipe grows according to the calibration in force.

No learning: fluxes from the cells' Arrhenius calibrations, the rest from materials physics.
It is the reference every learned model must beat, and the answer to "what will this recipe
grow?" before any run exists. For each group-III cell of the material (GaAs: Ga; AlGaAs: Ga + Al;
InGaAs: Ga + In; AlAs; InAs), at its temperature T:

    BEP_c   = exp(a_c - E_c / (k·T))                      (the cell's calibration)
    F_c     = bep_to_rate_c · BEP_c                       (ML/s; EPIC's BEPtoFlux, from RHEED)
    F_In   *= indium_incorporation(T_substrate)           (In loss above ~545 °C, when given)
    rate    = Σ F_c                                       (ML/s; As-rich growth, sticking 1)
    x       = F_Al / (F_Al + F_Ga)  or  F_In / (F_In + F_Ga)
    nm/s    = rate · a⊥(material, x) / 2                  (monolayer of the strained alloy)
    d       = nm/s · duration

Recipe layers that give only a target rate get their set points the way the tool's operators
pick them (`epi_ml.twin.plan`): the rate in ML/s split over the cells by x, each cell's
temperature from its calibration (rounded to 0.1 °C), the layer time = target thickness / the
rate the calibration gives at those set points (the tool does not compensate In loss, so neither
does the time; the predicted thickness and x do include it). Formulas and measured errors:
docs/calibration.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import polars as pl

from epi_ml.calibration.cells import CellCalibration
from epi_ml.physics import (
    GROUP_III_OF,
    MATERIALS,
    TERNARIES,
    composition,
    group_iii_fluxes,
    growth_rate_nm_s,
    indium_incorporation,
    ml_per_s_to_um_per_h,
    monolayer_thickness_nm,
    um_per_h_to_ml_per_s,
)
from epi_ml.twin.recipe import GrowthLayer, Recipe

EXTRAPOLATION_C = 10.0  # a set point this far outside a cell's scan range gets a note
SETPOINT_RESOLUTION = 1  # decimals of a set point, as the tool writes them (0.1 °C)


@dataclass(frozen=True)
class LayerPrediction:
    """One layer as the baseline predicts it. `fluxes_ml_s`: group-III fluxes arriving at the
    wafer per cell; `incorporated_ml_s`: what stays (In after desorption); `composition`: x of a
    ternary (None for a binary); `calibrated_at`: the date of each cell's calibration used."""

    material: str
    cell_temperatures_c: dict[str, float]
    duration_s: float
    bep_torr: dict[str, float]
    fluxes_ml_s: dict[str, float]
    incorporated_ml_s: dict[str, float]
    growth_rate_ml_s: float
    growth_rate_nm_s: float
    growth_rate_um_h: float
    thickness_nm: float
    composition: float | None
    indium_incorporation: float | None
    calibrated_at: dict[str, datetime | None]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["calibrated_at"] = {
            c: t.isoformat() if t else None for c, t in self.calibrated_at.items()
        }
        d["notes"] = list(self.notes)
        return d


def predict_layer(
    material: str,
    cell_temperatures_c: Mapping[str, float],
    duration_s: float,
    calibrations: Mapping[str, CellCalibration],
    *,
    substrate_c: float | None = None,
) -> LayerPrediction:
    """Growth rate, thickness and composition of one layer from the calibrations (see the module
    docstring). ValueError naming what is missing: an unknown material, a cell's temperature, a
    cell's calibration or its BEP-to-rate factor."""
    if material not in MATERIALS:
        raise ValueError(f"unknown material {material!r}; known: {', '.join(MATERIALS)}")
    cells = GROUP_III_OF[material]
    missing_t = [c for c in cells if c not in cell_temperatures_c]
    if missing_t:
        raise ValueError(f"{material} needs the temperature of {', '.join(missing_t)}")
    missing_cal = [c for c in cells if c not in calibrations]
    if missing_cal:
        raise ValueError(
            f"{material}: no calibration for {', '.join(missing_cal)} (scan the cell or ingest "
            "the tool's Fitting.txt)"
        )
    no_rate = [c for c in cells if calibrations[c].bep_to_rate is None]
    if no_rate:
        raise ValueError(
            f"{material}: no BEP-to-rate factor for {', '.join(no_rate)} (EPIC's BEPtoFlux, "
            "from a RHEED calibration); a BEP alone does not give a growth rate"
        )
    temps = {c: float(cell_temperatures_c[c]) for c in cells}
    bep = {c: float(calibrations[c].bep(temps[c])) for c in cells}
    arriving = {c: float(calibrations[c].rate_ml_s(temps[c])) for c in cells}
    kept = None
    if "In" in cells and substrate_c is not None:
        kept = float(indium_incorporation(substrate_c))  # In desorbs above ~545 °C
    incorporated = {c: f * (kept if c == "In" and kept is not None else 1.0)
                    for c, f in arriving.items()}  # fmt: skip
    rate = sum(incorporated.values())
    x = None
    if material in TERNARIES:
        minor = cells[1]  # Al or In: the x of the ternary
        x = float(composition(incorporated[minor], incorporated["Ga"]))
    nm_s = float(growth_rate_nm_s(rate, material, x or 0.0))
    return LayerPrediction(
        material=material,
        cell_temperatures_c=temps,
        duration_s=float(duration_s),
        bep_torr=bep,
        fluxes_ml_s=arriving,
        incorporated_ml_s=incorporated,
        growth_rate_ml_s=rate,
        growth_rate_nm_s=nm_s,
        growth_rate_um_h=float(ml_per_s_to_um_per_h(rate, material, x or 0.0)),
        thickness_nm=nm_s * float(duration_s),
        composition=x,
        indium_incorporation=kept,
        calibrated_at={c: calibrations[c].taken_at for c in cells},
        notes=tuple(_range_notes(temps, calibrations)),
    )


def predict_grown_layer(
    material: str,
    cell_temperatures_c: Mapping[str, float],
    open_s: Mapping[str, float],
    calibrations: Mapping[str, CellCalibration],
    *,
    substrate_c: float | None = None,
) -> LayerPrediction:
    """A grown layer whose group-III shutters were physically open for different times (a
    shutter that stuck closed, or closed late: epi_ml.validation.shutter_load): each cell
    deposits its flux for its own open time,

        ML_c = F_c · t_c      d = Σ ML_c · a⊥(material, x)/2      x = ML_minor / (ML_minor + ML_Ga)

    `open_s`: seconds per cell; cells outside the material that were open (Ga left open into an
    AlAs layer) add their monolayers too when their temperature and calibration are known. With
    every cell of the material open for the same time t this is `predict_layer` for t. The rate
    is the layer's monolayers over the longest open time. ValueError as `predict_layer`."""
    cells = GROUP_III_OF.get(material, ())
    growth_s = max((float(open_s.get(c, 0.0)) for c in open_s), default=0.0)
    base = predict_layer(material, cell_temperatures_c, max(growth_s, 1.0), calibrations,
                         substrate_c=substrate_c)  # fmt: skip
    incorporated = dict(base.incorporated_ml_s)
    arriving = dict(base.fluxes_ml_s)
    for cell, seconds in open_s.items():
        if cell in incorporated or seconds <= 0:
            continue
        t, calibration = cell_temperatures_c.get(cell), calibrations.get(cell)
        if t is None or calibration is None or calibration.bep_to_rate is None:
            continue
        arriving[cell] = float(calibration.rate_ml_s(float(t)))
        kept = 1.0
        if cell == "In" and substrate_c is not None:
            kept = float(indium_incorporation(substrate_c))
        incorporated[cell] = arriving[cell] * kept
    deposited = {c: f * max(0.0, float(open_s.get(c, 0.0))) for c, f in incorporated.items()}
    total = sum(deposited.values())
    x = base.composition
    if material in TERNARIES:
        minor = cells[1]
        both = deposited[minor] + deposited["Ga"]
        x = float(deposited[minor] / both) if both > 0 else None
    thickness = total * float(monolayer_thickness_nm(material, x or 0.0))
    rate = total / growth_s if growth_s > 0 else 0.0
    return replace(
        base,
        duration_s=growth_s,
        fluxes_ml_s=arriving,
        incorporated_ml_s=incorporated,
        growth_rate_ml_s=rate,
        growth_rate_nm_s=float(growth_rate_nm_s(rate, material, x or 0.0)),
        growth_rate_um_h=float(ml_per_s_to_um_per_h(rate, material, x or 0.0)),
        thickness_nm=thickness,
        composition=x,
    )


def _range_notes(
    temps: Mapping[str, float], calibrations: Mapping[str, CellCalibration]
) -> list[str]:
    notes = []
    for cell, t in temps.items():
        cal = calibrations[cell]
        if cal.t_min_c is None or cal.t_max_c is None:
            continue
        if t < cal.t_min_c - EXTRAPOLATION_C or t > cal.t_max_c + EXTRAPOLATION_C:
            notes.append(
                f"{cell} at {t:.1f} °C is outside its scan ({cal.t_min_c:.0f}-{cal.t_max_c:.0f} "
                "°C): extrapolated"
            )
    return notes


# ---------------------------------------------------------------------------------------------
# Recipes
@dataclass(frozen=True)
class RecipeLayerPrediction:
    """A recipe growth layer: its targets, the set points and time used (`setpoints_from`:
    "recipe" when the layer gives them, "rate" when computed from its target rate) and the
    prediction."""

    index: int  # 1-based position in the unrolled recipe (as in the run's messages)
    label: str | None
    material: str
    target_thickness_nm: float | None
    target_composition: float | None
    target_rate_um_h: float | None
    setpoints_from: str
    substrate_c: float
    prediction: LayerPrediction

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "prediction"}
        return d | {"prediction": self.prediction.to_dict()}


@dataclass
class RecipePrediction:
    recipe: str
    layers: list[RecipeLayerPrediction] = field(default_factory=list)

    @property
    def total_thickness_nm(self) -> float:
        return sum(layer.prediction.thickness_nm for layer in self.layers)

    def frame(self) -> pl.DataFrame:
        """One row per growth layer, for a CLI or a report."""
        rows = []
        for layer in self.layers:
            p = layer.prediction
            rows.append(
                {
                    "index": layer.index,
                    "label": layer.label,
                    "material": layer.material,
                    "setpoints_from": layer.setpoints_from,
                    **{f"{c}_C": p.cell_temperatures_c.get(c) for c in ("Ga", "Al", "In")},
                    "duration_s": p.duration_s,
                    "rate_um_h": p.growth_rate_um_h,
                    "thickness_nm": p.thickness_nm,
                    "target_thickness_nm": layer.target_thickness_nm,
                    "composition": p.composition,
                    "target_composition": layer.target_composition,
                    "substrate_c": layer.substrate_c,
                }
            )
        return pl.DataFrame(rows, infer_schema_length=None)

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "layers": [layer.to_dict() for layer in self.layers]}


def predict_recipe(
    recipe: Recipe, calibrations: Mapping[str, CellCalibration]
) -> RecipePrediction:
    """Every growth layer of a recipe (repeat blocks unrolled; interrupts grow nothing): from
    its `cells` set points when it gives them, else from the set points the calibration gives
    for its target rate (`growth_rate_um_h`, or the recipe's default); for its `duration_s`, or
    the time that reaches `thickness_nm` at the calibrated rate. ValueError as `predict_layer`."""
    result = RecipePrediction(recipe.name)
    substrate_c = recipe.substrate_c
    for index, step in enumerate(recipe.steps, start=1):
        substrate_c = step.substrate_c if step.substrate_c is not None else substrate_c
        if not isinstance(step, GrowthLayer):
            continue
        target_rate = None
        if step.cells:
            temps = dict(step.cells)
            source = "recipe"
        else:
            target_rate = step.growth_rate_um_h or recipe.growth_rate_um_h
            temps = setpoints_for_rate(step.material, target_rate, step.x, calibrations)
            source = "rate"
        duration = step.duration_s
        if duration is None:
            # the tool's layer time: target / the rate its calibration gives (In loss ignored)
            planned = predict_layer(step.material, temps, 1.0, calibrations)
            rate_nm_s = float(growth_rate_nm_s(planned.growth_rate_ml_s, step.material, step.x))
            duration = round((step.thickness_nm or 0.0) / rate_nm_s, 1)
        prediction = predict_layer(
            step.material, temps, duration, calibrations, substrate_c=substrate_c
        )
        result.layers.append(
            RecipeLayerPrediction(
                index=index,
                label=step.label,
                material=step.material,
                target_thickness_nm=step.thickness_nm,
                target_composition=step.composition,
                target_rate_um_h=target_rate,
                setpoints_from=source,
                substrate_c=substrate_c,
                prediction=prediction,
            )
        )
    return result


def setpoints_for_rate(
    material: str, rate_um_h: float, x: float, calibrations: Mapping[str, CellCalibration]
) -> dict[str, float]:
    """Cell temperatures (°C, to 0.1) the calibrations say give a growth rate (µm/h) of a
    material with composition x: the rate in ML/s split over the cells by x, each inverted
    through its Arrhenius fit and BEP-to-rate factor."""
    total = float(um_per_h_to_ml_per_s(rate_um_h, material, x))
    temps = {}
    for cell, flux in group_iii_fluxes(material, total, x).items():
        if cell not in calibrations:
            raise ValueError(f"{material}: no calibration for {cell}")
        setpoint = float(calibrations[cell].temperature_for_rate(flux))
        temps[cell] = round(setpoint, SETPOINT_RESOLUTION)
    return temps
