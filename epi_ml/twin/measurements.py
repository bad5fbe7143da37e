"""Ex-situ measurements of a grown wafer, as a characterisation lab reports them.

- XRD (HRXRD rocking curve fitted with a dynamical simulation): layer thickness (relative σ 0.75 %)
  and, for ternaries, composition (σ 0.004).
- Room-temperature PL: peak wavelength of the layer's Γ band gap (Varshni + bowing, at 300 K),
  σ 0.7 nm. Strain and quantum confinement are not modelled (docs/twin.md, "Limits").
The noise levels are the priors of DESIGN.md. Which layers are measured is the recipe's `measure`
list; layers that did not grow (a shutter stuck closed) give no result, as on a real sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from epi_ml.physics import is_direct_gap, pl_peak_nm

XRD_THICKNESS_SIGMA = 0.0075  # relative
XRD_COMPOSITION_SIGMA = 0.004
PL_SIGMA_NM = 0.7
PL_TEMPERATURE_K = 300.0
MIN_MEASURABLE_NM = 1.0
COLUMNS = ("run_id", "layer_index", "kind", "value", "uncertainty", "unit", "measured_at")


@dataclass(frozen=True)
class Measurement:
    run_id: str
    layer_index: int | None
    kind: str  # xrd_thickness_nm | xrd_composition | pl_peak_nm
    value: float
    uncertainty: float
    unit: str
    measured_at: datetime

    def row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "layer_index": self.layer_index,
            "kind": self.kind,
            "value": round(self.value, 4),
            "uncertainty": round(self.uncertainty, 4),
            "unit": self.unit,
            "measured_at": self.measured_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }


def lab_time(run_end: datetime, rng: np.random.Generator) -> datetime:
    """When the lab measures a wafer: one to four days later, in working hours."""
    day = (run_end + timedelta(days=int(rng.integers(1, 5)))).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return day + timedelta(seconds=float(rng.uniform(9 * 3600, 17 * 3600)))


def measure_run(
    run_id: str, layers: list[dict[str, Any]], run_end: datetime, rng: np.random.Generator
) -> list[Measurement]:
    out: list[Measurement] = []
    at = lab_time(run_end, rng)
    for layer in layers:
        wanted = layer.get("measure") or []
        thickness = layer.get("thickness_nm") or 0.0
        if layer["kind"] != "layer" or not wanted or thickness < MIN_MEASURABLE_NM:
            continue
        index, material, x = layer["index"], layer["material"], layer.get("composition")
        if "xrd" in wanted:
            sigma = XRD_THICKNESS_SIGMA * thickness
            out.append(
                Measurement(
                    run_id,
                    index,
                    "xrd_thickness_nm",
                    thickness + rng.normal(0, sigma),
                    sigma,
                    "nm",
                    at,
                )
            )
            if x is not None:
                value = float(np.clip(x + rng.normal(0, XRD_COMPOSITION_SIGMA), 0.0, 1.0))
                out.append(
                    Measurement(
                        run_id, index, "xrd_composition", value, XRD_COMPOSITION_SIGMA, "", at
                    )
                )
        if "pl" in wanted and bool(is_direct_gap(material, x or 0.0, PL_TEMPERATURE_K)):
            peak = float(pl_peak_nm(material, x or 0.0, PL_TEMPERATURE_K))
            out.append(
                Measurement(
                    run_id,
                    index,
                    "pl_peak_nm",
                    peak + rng.normal(0, PL_SIGMA_NM),
                    PL_SIGMA_NM,
                    "nm",
                    at,
                )
            )
    return out
