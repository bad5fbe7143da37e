"""Flux-calibration scans, as labs take them every few days, and the fits the tool keeps.

A scan inserts the beam flux monitor (BFM), steps the cell temperature downwards, waits for it to
settle, opens the shutter and averages the BFM and the chamber gauge. The file is a tab-separated
table (`Ga<TAB>BFM.P<TAB>MBE.P`: cell temperature °C, BFM reading, chamber background, Torr) named
`YYYY-MM-DD_HH-MM-SS_Ga.txt`, in the format of the real lab scripts (research/domain.md §2.2).
The net beam-equivalent pressure is BFM.P - MBE.P; its Arrhenius fit is what the tool's
Fitting.txt holds and what engineers write set points with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from epi_ml.physics import ArrheniusFit, fit_arrhenius, um_per_h_to_ml_per_s
from epi_ml.twin.cells import AsValveCurve
from epi_ml.twin.state import ToolState
from epi_ml.twin.tools import GROUP_III

SETTLE_S = 240.0  # wait at each temperature step
READ_S = 60.0  # shutter open while the gauges are averaged
AS_VALVE_STEPS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0)
# growth-rate span each cell is calibrated over (µm/h of its binary arsenide)
SCAN_SPAN_UM_H = {"Ga": (0.3, 1.3), "Al": (0.15, 0.9), "In": (0.08, 0.4)}
SCAN_POINTS = 6


@dataclass(frozen=True)
class CalibrationScan:
    tool: str
    source: str  # Ga, Al, In, or As (then the first column is the valve opening in %)
    started_at: datetime
    setting: tuple[float, ...]  # cell temperature °C or valve %
    bfm_torr: tuple[float, ...]
    background_torr: tuple[float, ...]

    @property
    def filename(self) -> str:
        return f"{self.started_at:%Y-%m-%d_%H-%M-%S}_{self.source}.txt"

    @property
    def duration_s(self) -> float:
        return len(self.setting) * (SETTLE_S + READ_S)

    def to_tsv(self) -> str:
        rows = [f"{self.source}\tBFM.P\tMBE.P"]
        rows += [
            f"{s:.0f}\t{p:.6E}\t{b:.6E}"
            for s, p, b in zip(self.setting, self.bfm_torr, self.background_torr, strict=True)
        ]
        return "\r\n".join(rows) + "\r\n"

    def net_bep(self) -> np.ndarray:
        return np.asarray(self.bfm_torr) - np.asarray(self.background_torr)

    def fit(self) -> ArrheniusFit:
        return fit_arrhenius(self.setting, self.net_bep())


def scan_temperatures(state: ToolState, cell: str) -> list[float]:
    """Descending temperatures (5 °C grid) over the cell's working range, from the current fit."""
    material = {"Ga": "GaAs", "Al": "AlAs", "In": "InAs"}[cell]
    low, high = (float(um_per_h_to_ml_per_s(r, material)) for r in SCAN_SPAN_UM_H[cell])
    t_low = state.belief.setpoint_for(cell, low)
    t_high = state.belief.setpoint_for(cell, high)
    temps = np.linspace(t_high, t_low, SCAN_POINTS)
    return [float(5 * round(t / 5)) for t in temps]


def scan_cell(
    state: ToolState, cell: str, started_at: datetime, rng: np.random.Generator
) -> CalibrationScan:
    spec = state.spec
    temps = np.array(scan_temperatures(state, cell))
    bep = spec.cells[cell].bep(temps, state.flux_factor(cell))
    # the beam itself raises the chamber pressure a little (wall desorption)
    background = (spec.base_pressure_torr + 0.05 * bep) * (
        1 + rng.normal(0, spec.chamber_noise, len(temps))
    )
    bfm = (bep + spec.bep_gauge_background * spec.base_pressure_torr) * (
        1 + rng.normal(0, spec.bep_gauge_noise, len(temps))
    )
    return CalibrationScan(
        spec.name, cell, started_at, _floats(temps), _floats(bfm), _floats(background)
    )


def scan_as_valve(
    state: ToolState, started_at: datetime, rng: np.random.Generator
) -> CalibrationScan:
    spec = state.spec
    valve = np.array(AS_VALVE_STEPS)
    curve = AsValveCurve(spec.as_valve_pct, spec.as_valve_bep)
    bep = curve.bep(valve)
    background = (spec.base_pressure_torr + spec.chamber_as_coupling * bep) * (
        1 + rng.normal(0, spec.chamber_noise, len(valve))
    )
    bfm = (bep + spec.bep_gauge_background * background) * (
        1 + rng.normal(0, spec.bep_gauge_noise, len(valve))
    )
    return CalibrationScan(
        spec.name, "As", started_at, _floats(valve), _floats(bfm), _floats(background)
    )


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def calibrate(
    state: ToolState, started_at: datetime, rng: np.random.Generator, include_as: bool
) -> tuple[list[CalibrationScan], datetime]:
    """Scan every group-III cell (and the As valve), update the tool's fits; returns the scans and
    when the session ends."""
    scans = []
    at = started_at
    for cell in GROUP_III:
        scan = scan_cell(state, cell, at, rng)
        state.belief.fits[cell] = scan.fit()
        scans.append(scan)
        at += timedelta(seconds=scan.duration_s + 600)  # ramp to the next cell
    if include_as:
        scan = scan_as_valve(state, at, rng)
        net = np.clip(scan.net_bep(), 1e-11, None)
        pct = (0.0, 5.0, *scan.setting)
        bep = (*state.spec.as_valve_bep[:2], *np.maximum.accumulate(net))
        state.belief.as_curve = AsValveCurve(pct, bep)
        scans.append(scan)
        at += timedelta(seconds=scan.duration_s)
    return scans, at
