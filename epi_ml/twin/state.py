"""The state of a tool that carries from run to run: charge left in each cell, and what the
engineers believe about the tool (their latest flux fits, BEP-to-rate factors, As valve curve).

The gap between belief and truth is what makes grown layers miss their targets: the cells deplete
after the last calibration, the day's thermal environment shifts fluxes by a fraction of a percent,
the BEP-to-rate factor is only known to the precision of the last RHEED calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from epi_ml.physics import ATOMIC_MASS_G_MOL, AVOGADRO, ArrheniusFit, group_iii_sites_per_cm2
from epi_ml.twin.cells import AsValveCurve
from epi_ml.twin.tools import GROUP_III, ToolSpec

WAFER_AREA_CM2 = np.pi * (7.62 / 2) ** 2  # 3-inch wafer
SITES_PER_CM2 = group_iii_sites_per_cm2()
INITIAL_USE = ((0.1, 0.3), (0.55, 0.65))  # used fraction of the charges at the start, by tool


@dataclass
class CellState:
    charge_g: float
    used_g: float = 0.0
    refills: int = 0

    @property
    def used_fraction(self) -> float:
        return self.used_g / self.charge_g

    def flux_factor(self, sensitivity: float) -> float:
        """BEP at fixed temperature relative to a full charge (the melt recedes as it is used)."""
        return max(0.05, 1.0 - sensitivity * self.used_fraction)


@dataclass
class Belief:
    """What the tool's engineers use to write set points."""

    fits: dict[str, ArrheniusFit]  # latest Arrhenius fit per group-III cell (Fitting.txt)
    flux_per_torr: dict[str, float]  # ML/s per Torr, from the latest RHEED calibration
    as_curve: AsValveCurve  # latest As valve scan
    tc_offset_c: float  # thermocouple -> surface mapping, from the pyrometer
    tc_offset_per_c: float

    def bep_for(self, cell: str, ml_per_s: float) -> float:
        return ml_per_s / self.flux_per_torr[cell]

    def setpoint_for(self, cell: str, ml_per_s: float) -> float:
        """Cell temperature (°C) the engineers set for a flux, rounded to 0.1 °C."""
        return round(float(self.fits[cell].temperature_c(self.bep_for(cell, ml_per_s))), 1)

    def flux_at(self, cell: str, temperature_c: float) -> float:
        return float(self.fits[cell].bep(temperature_c)) * self.flux_per_torr[cell]

    def thermocouple_for(self, surface_c: float) -> float:
        """Substrate thermocouple set point that should give a surface temperature."""
        return (surface_c + self.tc_offset_c - 200 * self.tc_offset_per_c) / (
            1 - self.tc_offset_per_c
        )


@dataclass
class ToolState:
    spec: ToolSpec
    cells: dict[str, CellState]
    belief: Belief
    day_factors: dict[str, float] = field(default_factory=dict)
    days_since_bakeout: float = 30.0

    def flux_factor(self, cell: str) -> float:
        """Depletion times today's environment."""
        spec = self.spec.cells[cell]
        return self.cells[cell].flux_factor(spec.depletion_sensitivity) * self.day_factors.get(
            cell, 1.0
        )

    def consume(self, cell: str, wafer_equivalent_ml: float) -> float:
        """Grams used by evaporating `wafer_equivalent_ml` monolayers worth at the wafer."""
        spec = self.spec.cells[cell]
        if spec.kind == "group_iii":
            atoms = wafer_equivalent_ml * SITES_PER_CM2 * WAFER_AREA_CM2 / spec.beam_efficiency
        else:  # dopant "ML" are atoms/cm² at the wafer
            atoms = wafer_equivalent_ml * WAFER_AREA_CM2 / spec.beam_efficiency
        grams = atoms * ATOMIC_MASS_G_MOL[cell] / AVOGADRO
        self.cells[cell].used_g += grams
        return grams

    def refill(self, cell: str) -> None:
        state = self.cells[cell]
        state.used_g = 0.0
        state.refills += 1

    def new_day(self, rng: np.random.Generator) -> None:
        self.day_factors = {
            c: float(1 + rng.normal(0, self.spec.day_flux_sigma)) for c in self.spec.cells
        }
        self.days_since_bakeout += 1


def anchor_rates(state: ToolState, rng: np.random.Generator) -> None:
    """The RHEED calibration the engineers did before the campaign: BEP-to-rate factors relative to
    their own BEP scale (net BFM readings), each read to ~1 %."""
    for name in GROUP_III:
        cell = state.spec.cells[name]
        reference_c = float(state.belief.fits[name].temperature_c(1e-7))
        true_rate = float(cell.bep(reference_c, state.flux_factor(name))) * cell.flux_per_torr
        believed_bep = float(state.belief.fits[name].bep(reference_c))
        state.belief.flux_per_torr[name] = true_rate * float(1 + rng.normal(0, 0.01)) / believed_bep


def update_rates_from_rheed(
    state: ToolState, readings: dict[str, list[tuple[float, float]]]
) -> None:
    """After a RHEED calibration run: rate measured at a set point / BEP the fit gives there."""
    for name, points in readings.items():
        factors = [rate / float(state.belief.fits[name].bep(setpoint)) for setpoint, rate in points]
        state.belief.flux_per_torr[name] = float(np.mean(factors))


def initial_state(spec: ToolSpec, rng: np.random.Generator) -> ToolState:
    """A tool somewhere in its life: cells partly used, belief = a calibration from the nominal
    truth (replaced by the first real calibration scan of the campaign)."""
    # tools are at different points of their charges (the second one is due for a refill soon)
    low, high = INITIAL_USE[spec.index] if spec.index < len(INITIAL_USE) else (0.1, 0.7)
    cells = {
        name: CellState(
            charge_g=cell.charge_g, used_g=float(cell.charge_g * rng.uniform(low, high))
        )
        for name, cell in spec.cells.items()
    }
    state = ToolState(spec=spec, cells=cells, belief=None)  # type: ignore[arg-type]
    fits = {
        name: ArrheniusFit(
            ln_prefactor=spec.cells[name].ln_prefactor + float(np.log(state.flux_factor(name))),
            activation_ev=spec.cells[name].activation_ev,
            r2=1.0,
            n_points=0,
        )
        for name in GROUP_III
    }
    state.belief = Belief(
        fits=fits,
        flux_per_torr={
            n: spec.cells[n].flux_per_torr * float(1 + rng.normal(0, 0.02)) for n in GROUP_III
        },
        as_curve=AsValveCurve(spec.as_valve_pct, spec.as_valve_bep),
        tc_offset_c=spec.tc_offset_c + float(rng.normal(0, 3)),
        tc_offset_per_c=spec.tc_offset_per_c,
    )
    return state
