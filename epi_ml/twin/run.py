"""Simulate one run: from its plan (what was commanded) to what the tool logs and what grew.

Two uniform time grids carry the physics: a 1 s grid for the slow quantities (heaters, valve,
pressures) and the RHEED grid (5 Hz) for flux, growth and RHEED. The logger then samples the slow
quantities on its own irregular clock (~1.02 s passes, some skipped, per-channel drops) and adds
sensor noise. Everything is vectorised numpy; the only Python loops run over events (set-point
changes, shutter intervals, steps), never over samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from epi_ml.twin import faults as fault_effects
from epi_ml.twin.cells import (
    AsValveCurve,
    first_order_lag,
    heater_power,
    heater_trace,
    melt_temperature_c,
    open_intervals,
    rate_limited,
    shutter_dip,
    shutter_flux_factor,
    step_series,
)
from epi_ml.twin.faults import Fault
from epi_ml.twin.growth import grow, layer_truth, rheed_readings
from epi_ml.twin.logged import LOGGED
from epi_ml.twin.plan import ROTATION_RAMP_RPM_S, RunPlan
from epi_ml.twin.rheed import rheed_intensity
from epi_ml.twin.state import ToolState
from epi_ml.twin.tools import GROUP_III, ToolSpec

Array = NDArray[np.float64]
Events = list[tuple[float, str, bool]]
SLOW_DT = 1.0
OPEN_SHUTTER_POWER = 0.8  # % more power a cell needs while its shutter is open (no reflected heat)
HOT_CELL_OUTGASSING = 0.005  # chamber pressure per Torr of hot-cell BEP (warm shrouds, shutters)
TRANSFER_BURST = 4.0  # main-chamber pressure rise when the gate valve opens for a transfer
FLUX_WANDER_PER_SQRT_H = 0.003  # slow drift of a cell's flux within a run


@dataclass
class RunTrace:
    """Everything one run produced: logged samples, events, and the ground truth."""

    run_id: str
    tool: str
    start: datetime
    plan: RunPlan
    log_t: Array  # logger pass times, s from start
    log_offsets_ms: dict[str, int]  # each channel is read a few ms after the pass starts
    values: dict[str, Array]  # canonical channel -> value at each pass (NaN = no row)
    rheed_t: Array
    rheed: Array
    faults: list[Fault]
    layers: list[dict[str, Any]]
    evaporated: dict[str, float]  # per cell, wafer-equivalent ML (group III) or atoms/cm² (dopants)
    flux_factor: dict[str, float]  # depletion x day factor of each cell during the run
    # growth rates read off RHEED oscillations: cell -> [(cell set point °C, ML/s)]
    rheed_readings: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=float(self.plan.duration_s))

    def epoch_ms(self, t: Array, offset_ms: int = 0) -> NDArray[np.int64]:
        start_ms = round(self.start.timestamp() * 1000)
        return start_ms + np.rint(t * 1000).astype(np.int64) + offset_ms


@dataclass
class _Grids:
    slow: Array  # 1 s: heaters, valve, pressures
    fine: Array  # RHEED rate: fluxes, growth, RHEED


def simulate_run(
    state: ToolState,
    plan: RunPlan,
    faults: list[Fault],
    start: datetime,
    rng: np.random.Generator,
) -> RunTrace:
    spec = state.spec
    grids = _Grids(_grid(plan.duration_s, SLOW_DT), _grid(plan.duration_s, 1.0 / spec.rheed_hz))
    slow: dict[str, Array] = {}  # canonical channel -> noise-free value on the slow grid
    events = fault_effects.actual_shutter_events(plan.shutter_events, faults)

    flux_factor = {name: state.flux_factor(name) for name in spec.cells}
    bep = _cells(spec, plan, faults, events, grids, flux_factor, slow, rng)
    beam, droplets = _beams(spec, plan, faults, events, grids.fine, bep, rng)
    surface, rpm = _substrate(spec, plan, faults, grids.slow, slow)
    as_bep = _arsenic(spec, plan, faults, events, grids.slow, slow)
    surface_f = np.interp(grids.fine, grids.slow, surface)
    as_bep_f = np.interp(grids.fine, grids.slow, as_bep)

    growth = grow(
        grids.fine,
        beam,
        surface_f,
        as_bep_f * spec.as_flux_per_torr,
        _shutter_state(grids.fine, plan, "Sub", events),
    )
    layers = layer_truth(plan, growth, surface_f, as_bep_f, bep, start)
    _vacuum(state, plan, faults, events, grids, bep, as_bep, slow)

    rheed = rheed_intensity(
        spec,
        grids.fine,
        growth.rate_ml_s,
        surface_f,
        np.interp(grids.fine, grids.slow, rpm),
        growth.ga_rich,
        droplets,
        rng,
    )
    rheed = fault_effects.apply_logging_faults(grids.fine, rheed, "RHEED.I", faults)
    rheed_t = grids.fine + rng.uniform(0.0, 0.004, len(grids.fine))  # the camera clock jitters

    log_t = _logger_clock(spec, plan.duration_s, rng)
    values = {
        c.name: _logged(spec, c.name, c.fmt, log_t, grids.slow, slow, faults, rng) for c in LOGGED
    }
    offsets = dict(zip([c.name for c in LOGGED], _channel_offsets(spec), strict=True))
    # the cells evaporate whether their shutters are open or not
    dt = growth.dt
    evaporated = {n: float(np.sum(bep[n]) * spec.cells[n].flux_per_torr * dt) for n in spec.cells}
    return RunTrace(
        run_id=plan.run_id, tool=spec.name, start=start, plan=plan, log_t=log_t,
        log_offsets_ms=offsets, values=values, rheed_t=rheed_t, rheed=rheed, faults=faults,
        layers=layers, evaporated=evaporated, flux_factor=flux_factor,
        rheed_readings=rheed_readings(plan, layers, rng),
    )  # fmt: skip


def _grid(duration: float, dt: float) -> Array:
    return np.arange(0.0, duration + dt, dt)


def _cells(
    spec: ToolSpec,
    plan: RunPlan,
    faults: list[Fault],
    events: Events,
    grids: _Grids,
    flux_factor: dict[str, float],
    slow: dict[str, Array],
    rng: np.random.Generator,
) -> dict[str, Array]:
    """Heaters of every cell (logged channels into `slow`); returns each cell's true BEP on the
    fine grid."""
    ts, tf = grids.slow, grids.fine
    bep = {}
    for name, cell in spec.cells.items():
        opens, closes = plan.shutter_intervals(name)
        changes = plan.changes.get(name, [])
        working, controlled = heater_trace(ts, changes, plan.initial[name], cell.heater)
        controlled = controlled + shutter_dip(ts, opens, closes, cell)
        # the loop holds the reading; a drifting thermocouple moves the true temperature
        true_c = controlled - fault_effects.thermocouple_error(ts, faults, name)
        open_now = _shutter_state(ts, plan, name, events)
        slow[f"{name}.T"] = controlled
        slow[f"{name}.T_set"] = working  # the controller's (ramped) set point
        slow[f"{name}.power"] = heater_power(
            true_c, cell.heater, SLOW_DT, OPEN_SHUTTER_POWER * open_now
        )
        lip_f = None
        if cell.lip_heater is not None and cell.lip_offset_c is not None:
            lip_changes = plan.changes.get(f"{name}.lip", [])
            lip_initial = plan.initial[f"{name}.lip"]
            lip_working, lip = heater_trace(ts, lip_changes, lip_initial, cell.lip_heater)
            slow[f"{name}.T_lip"] = lip
            slow[f"{name}.T_lip_set"] = lip_working
            slow[f"{name}.lip_power"] = heater_power(lip, cell.lip_heater, SLOW_DT)
            lip_f = np.interp(tf, ts, lip)
        melt = melt_temperature_c(np.interp(tf, ts, true_c), lip_f, cell)
        bep[name] = cell.bep(melt, flux_factor[name]) * _flux_wander(ts, tf, rng)
    return bep


def _beams(
    spec: ToolSpec,
    plan: RunPlan,
    faults: list[Fault],
    events: Events,
    tf: Array,
    bep: dict[str, Array],
    rng: np.random.Generator,
) -> tuple[dict[str, Array], Array]:
    """Flux reaching the wafer through the (actual) shutters, with opening transients and
    spitting; and the droplet factor RHEED sees."""
    beam = {}
    spikes = {name: fault_effects.spike_factor(tf, faults, name, rng) for name in spec.cells}
    for name, cell in spec.cells.items():
        opens, closes = plan.shutter_intervals(name, events)
        open_factor = shutter_flux_factor(tf, open_intervals(tf, opens, closes), cell)
        beam[name] = bep[name] * cell.flux_per_torr * open_factor * spikes[name]
    droplets = np.maximum.reduce(
        [spikes[n] * (beam[n] > 0) for n in GROUP_III] + [np.ones(len(tf))]
    )
    return beam, droplets


def _substrate(
    spec: ToolSpec, plan: RunPlan, faults: list[Fault], ts: Array, slow: dict[str, Array]
) -> tuple[Array, Array]:
    """Substrate heater, pyrometer and rotation; returns the true surface temperature and rpm."""
    changes = plan.changes.get("sub", [])
    working, tc = heater_trace(ts, changes, plan.initial["sub"], spec.substrate)
    true_tc = tc - fault_effects.thermocouple_error(ts, faults, "sub")
    surface = true_tc - (spec.tc_offset_c + spec.tc_offset_per_c * (true_tc - 200.0))
    rpm = rate_limited(ts, plan.changes.get("rpm", []), plan.initial["rpm"], ROTATION_RAMP_RPM_S)
    wobble = spec.pyro_wobble_c * np.sin(2 * np.pi * np.cumsum(rpm) * SLOW_DT / 60.0) * (rpm > 0.5)
    slow["sub.T"] = tc
    slow["sub.T_set"] = working
    slow["sub.power"] = heater_power(true_tc, spec.substrate, SLOW_DT)
    slow["sub.T_pyro"] = surface + spec.pyro_bias_c + wobble
    slow["sub.rpm"] = rpm
    return surface, rpm


def _arsenic(
    spec: ToolSpec,
    plan: RunPlan,
    faults: list[Fault],
    events: Events,
    ts: Array,
    slow: dict[str, Array],
) -> Array:
    """Valved cracker: the valve moves at its speed (or sticks), the BEP lags it. Returns As BEP."""
    changes = plan.changes.get("As", [])
    position = rate_limited(ts, changes, plan.initial["As"], spec.as_valve_speed_pct_s)
    position = np.clip(position - fault_effects.valve_creep(ts, faults), 0.0, 100.0)
    curve = AsValveCurve(spec.as_valve_pct, spec.as_valve_bep)
    as_bep = first_order_lag(
        curve.bep(position) * _shutter_state(ts, plan, "As", events), spec.as_bep_tau_s, SLOW_DT
    )
    slow["As.valve"] = position
    slow["As.valve_set"] = step_series(ts, changes, plan.initial["As"])
    slow["As.T_bulk"] = np.full(len(ts), spec.as_bulk_c)
    slow["As.T_crack"] = np.full(len(ts), spec.as_cracker_c)
    return as_bep


def _vacuum(
    state: ToolState,
    plan: RunPlan,
    faults: list[Fault],
    events: Events,
    grids: _Grids,
    bep: dict[str, Array],
    as_bep: Array,
    slow: dict[str, Array],
) -> None:
    """Growth-chamber gauge, beam flux monitor and main-chamber gauge."""
    spec, ts = state.spec, grids.slow
    cell_bep = {n: np.interp(ts, grids.fine, bep[n]) for n in GROUP_III}
    hot_cells = np.sum(list(cell_bep.values()), axis=0)
    after_bake = 1 + 4 * np.exp(-state.days_since_bakeout / 4.0)  # falls for days after a bake
    chamber = (
        spec.base_pressure_torr * after_bake
        + spec.chamber_as_coupling * as_bep
        + HOT_CELL_OUTGASSING * hot_cells
    ) * fault_effects.pressure_factor(ts, faults)
    in_beam = np.zeros(len(ts), dtype=bool)
    for t0, t1 in plan.bfm_intervals:
        in_beam |= (ts >= t0) & (ts < t1)
    beams = as_bep + np.sum(
        [cell_bep[n] * _shutter_state(ts, plan, n, events) for n in GROUP_III], axis=0
    )
    transfers = [0.0, plan.duration_s - 1.0]
    bursts = np.sum(
        [np.where(ts >= at, np.exp(-(ts - at) / 40.0), 0.0) for at in transfers], axis=0
    )
    slow["BEP"] = spec.bep_gauge_background * chamber + np.where(in_beam, beams, 0.0)
    slow["P.chamber"] = chamber
    slow["P.main"] = spec.main_pressure_torr * (1 + TRANSFER_BURST * bursts)


def _logged(
    spec: ToolSpec,
    name: str,
    fmt: str,
    log_t: Array,
    ts: Array,
    slow: dict[str, Array],
    faults: list[Fault],
    rng: np.random.Generator,
) -> Array:
    """One channel as the logger writes it: sampled at its passes, with sensor noise, dropped
    samples (NaN), sensor limits and logging faults."""
    clean = np.interp(log_t, ts, slow[name])
    noise = _sensor_noise(spec, name, log_t, rng)
    value = clean * (1 + noise) if fmt == "pressure" else clean + noise
    if name == "sub.rpm":
        value = np.where(clean > 0.05, value, 0.0)  # a stopped manipulator reads exactly zero
    elif name == "As.valve" or name.endswith("power"):
        value = np.clip(value, 0.0, 100.0)  # a valve position, a controller output
    elif name == "sub.T_pyro":
        value = np.maximum(value, spec.pyro_min_c)  # below its range it shows its low limit
    value = fault_effects.apply_logging_faults(log_t, value, name, faults)
    dropped = rng.random(len(log_t)) < spec.log_drop_probability
    return np.where(dropped, np.nan, value)


def _logger_clock(spec: ToolSpec, duration: float, rng: np.random.Generator) -> Array:
    """Pass times of the logger: ~1.02 s apart, sometimes a pass is skipped (2 s)."""
    n = int(duration / spec.log_period_s * 1.05) + 10
    steps = spec.log_period_s + rng.uniform(0.0, 0.025, n)
    skipped = rng.random(n) < spec.log_gap_probability
    steps = np.where(skipped, 2 * spec.log_period_s + rng.uniform(0.0, 0.008, n), steps)
    t = rng.uniform(0.0, 1.0) + np.concatenate([[0.0], np.cumsum(steps)])
    return t[t < duration]


def _flux_wander(ts: Array, tf: Array, rng: np.random.Generator) -> Array:
    """Slow random walk of a cell's flux within a run (melt convection, shroud temperature)."""
    steps = rng.normal(0, FLUX_WANDER_PER_SQRT_H * np.sqrt(SLOW_DT / 3600.0), len(ts))
    return np.exp(np.interp(tf, ts, np.cumsum(steps)))


def _shutter_state(t: Array, plan: RunPlan, name: str, events: Events) -> Array:
    opens, closes = plan.shutter_intervals(name, events)
    if not opens:
        return np.zeros(len(t))
    return step_series(t, sorted([(o, 1.0) for o in opens] + [(c, 0.0) for c in closes]), 0.0)


def _sensor_noise(spec: ToolSpec, channel: str, t: Array, rng: np.random.Generator) -> Array:
    """Additive noise (°C, %, rpm) or, for gauges, relative noise."""
    source, _, quantity = channel.partition(".")
    if channel in ("P.chamber", "P.main"):
        sigma = spec.chamber_noise
    elif channel == "BEP":
        sigma = spec.bep_gauge_noise
    elif channel == "sub.T_pyro":
        sigma = spec.pyro_noise_c
    elif quantity in ("T", "T_lip", "power", "lip_power"):
        heater = spec.substrate if source == "sub" else spec.cells[source].heater
        sigma = heater.tc_noise_c if quantity.startswith("T") else heater.power_noise
    elif quantity in ("T_bulk", "T_crack"):
        sigma = 0.08
    elif quantity in ("valve", "rpm"):
        sigma = 0.03
    else:
        return np.zeros(len(t))  # set points are exact
    return rng.normal(0, sigma, len(t))


def _channel_offsets(spec: ToolSpec) -> list[int]:
    """The logger reads channels one after another: a fixed few-ms offset per channel and tool."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.index, 99]))
    return sorted(rng.integers(0, 12, len(LOGGED)).tolist())
