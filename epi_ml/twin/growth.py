"""What grows on the wafer: growth rate from the group-III fluxes, and each layer as grown.

Group-III atoms stick with unity probability, so the growth rate (ML/s) is the sum of the Ga, Al
and incorporated In fluxes, unless the As flux cannot keep up (As-limited, Ga-rich surface). A
layer's thickness is its deposited monolayers times its monolayer thickness; its composition is
the flux ratio averaged over the growth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from epi_ml.physics import GROUP_III_OF, indium_incorporation, monolayer_thickness_nm
from epi_ml.twin.plan import RunPlan

Array = NDArray[np.float64]
DOPANT_CELLS = ("Si", "Be")
RHEED_READ_PRECISION = 0.01  # an oscillation period is read to ~1 %


@dataclass
class Growth:
    """Growth on the fine time grid `t` (s from the run start)."""

    t: Array
    rate_ml_s: Array  # what actually grows
    group_iii_ml_s: Array  # group-III atoms arriving and staying (In after desorption)
    indium_ml_s: Array  # incorporated In
    beam: dict[str, Array]  # flux at the wafer: ML/s (group III), atoms/cm²/s (dopants)
    ga_rich: NDArray[np.bool_]  # the As flux cannot keep up

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0]) if len(self.t) > 1 else 1.0


def grow(
    t: Array,
    beam: dict[str, Array],
    surface_c: Array,
    as_limit_ml_s: Array,
    substrate_open: Array,
) -> Growth:
    indium = beam["In"] * indium_incorporation(surface_c)
    group_iii = beam["Ga"] + beam["Al"] + indium
    rate = np.minimum(group_iii, as_limit_ml_s) * substrate_open
    ga_rich = (group_iii > as_limit_ml_s) & (substrate_open > 0) & (group_iii > 1e-4)
    return Growth(t, rate, group_iii, indium, beam, ga_rich)


def layer_truth(
    plan: RunPlan,
    growth: Growth,
    surface_c: Array,
    as_bep: Array,
    bep: dict[str, Array],
    start: datetime,
) -> list[dict[str, Any]]:
    """What each step really grew. Material deposited after a step ends (a shutter stuck open)
    belongs to that step, so each window runs to the start of the next step."""
    t, dt, rate = growth.t, growth.dt, growth.rate_ml_s
    out = []
    steps = plan.steps
    for k, step in enumerate(steps):
        t_next = steps[k + 1].start_s if k + 1 < len(steps) else plan.phases["growth"][1] + 120.0
        i0, i1 = np.searchsorted(t, [step.start_s, t_next])
        i_stop = int(np.searchsorted(t, step.end_s))
        window = slice(i0, i1)
        deposited_ml = float(np.sum(rate[window]) * dt)
        truth: dict[str, Any] = {
            "index": step.index,
            "kind": step.kind,
            "material": step.material,
            "label": step.label,
            "start": _iso(start + timedelta(seconds=step.start_s)),
            "end": _iso(start + timedelta(seconds=step.end_s)),
            "target_thickness_nm": step.target_thickness_nm,
            "target_composition": step.composition,
            "setpoints": {c: v for c, v in step.cells.items() if c in step.open_shutters},
            "as_valve": step.as_valve,
            "substrate_target_c": step.substrate_target_c,
            "substrate_true_c": float(np.mean(surface_c[i0:i_stop])) if i_stop > i0 else None,
            "predicted_rate_nm_s": step.predicted_rate_nm_s,
            "measure": list(step.measure),
        }
        dopant_atoms = {d: float(np.sum(growth.beam[d][window]) * dt) for d in DOPANT_CELLS}
        if step.kind == "interrupt":
            truth["thickness_nm"] = deposited_ml * float(monolayer_thickness_nm("GaAs"))
            truth.update({f"{d}_sheet_cm2": n for d, n in dopant_atoms.items() if n > 0})
            out.append(truth)
            continue
        material = step.material or "GaAs"
        elements = GROUP_III_OF[material]
        growing = rate[window] > 0
        composition = None
        if len(elements) == 2:
            minor = growth.beam["Al"] if elements[1] == "Al" else growth.indium_ml_s
            total = float(np.sum(growth.group_iii_ml_s[window] * growing))
            composition = float(np.sum(minor[window] * growing) / total) if total > 0 else 0.0
        thickness = deposited_ml * float(monolayer_thickness_nm(material, composition or 0.0))
        open_s = (i_stop - i0) * dt
        weights = rate[window]

        def mean(series: Array, window: slice = window, weights: Array = weights) -> float:
            """Growth-weighted mean over the step."""
            total = float(weights.sum())
            return float(np.sum(series[window] * weights) / total) if total > 0 else float("nan")

        group_iii_bep = sum(mean(bep[c]) for c in elements)
        truth.update(
            thickness_nm=thickness,
            composition=composition,
            growth_rate_nm_s=thickness / open_s if open_s > 0 else 0.0,
            growth_rate_ml_s=deposited_ml / open_s if open_s > 0 else 0.0,
            v_iii_bep=mean(as_bep) / group_iii_bep if group_iii_bep > 0 else None,
        )
        if thickness > 0:  # dopant density, atoms/cm³
            truth.update(
                {f"{d}_cm3": n / (thickness * 1e-7) for d, n in dopant_atoms.items() if n > 0}
            )
        out.append(truth)
    return out


def rheed_readings(
    plan: RunPlan, layers: list[dict[str, Any]], rng: np.random.Generator
) -> dict[str, list[tuple[float, float]]]:
    """Growth rates an engineer reads off the RHEED oscillations of a calibration run (steps
    labelled `rheed_*`, binary, wafer not rotating), with the cell set point they were taken at."""
    readings: dict[str, list[tuple[float, float]]] = {}
    if plan.recipe.rotation_rpm > 0:
        return readings
    for step, truth in zip(plan.steps, layers, strict=True):
        calibrating = (step.label or "").startswith("rheed") and step.material in ("GaAs", "AlAs")
        if step.kind != "layer" or not calibrating or truth["growth_rate_ml_s"] <= 0:
            continue
        cell = GROUP_III_OF[step.material or "GaAs"][0]
        rate = truth["growth_rate_ml_s"] * (1 + rng.normal(0, RHEED_READ_PRECISION))
        readings.setdefault(cell, []).append((step.cells[cell], float(rate)))
    return readings


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
