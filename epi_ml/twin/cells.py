"""Effusion cells, heaters and the As cracker as time series (vectorised over a run).

- Heaters: the controller ramps its working set point at a fixed rate, and the closed loop follows
  it as a type-2 second-order system (no lag on a steady ramp, an overshoot when the ramp stops),
  which is what cell PIDs with ramped set points show. Output power = conduction + radiation losses
  at the temperature + the heat needed to ramp.
- Cells: ln(BEP) = a - E/kT, scaled by the depletion of the charge and the day's thermal
  environment; the melt surface sees a little of the hot-lip temperature. Opening a shutter gives
  a flux overshoot that decays over tens of seconds and a small thermocouple dip.
- As cracker: the valve moves at a finite speed; BEP follows the valve curve with a lag.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import signal
from scipy.interpolate import PchipInterpolator

from epi_ml.twin.tools import CellSpec, HeaterSpec

Array = NDArray[np.float64]
Changes = Sequence[tuple[float, float]]  # (time s, new set point), sorted by time


def step_series(t: Array, changes: Changes, initial: float) -> Array:
    """Value of a set point at times `t`, given its changes."""
    out = np.full(len(t), float(initial))
    if not changes:
        return out
    times = np.array([c[0] for c in changes])
    values = np.array([initial] + [c[1] for c in changes], dtype=float)
    return values[np.searchsorted(times, t, side="right")]


def rate_limited(t: Array, changes: Changes, initial: float, rate: float) -> Array:
    """A set point that moves toward each new value at `rate` per second (ramped set point)."""
    out = np.empty(len(t))
    starts = [float(t[0]) if len(t) else 0.0] + [float(c[0]) for c in changes]
    targets = [float(initial)] + [float(c[1]) for c in changes]
    bounds = [0, *np.searchsorted(t, starts[1:], side="left").tolist(), len(t)]
    value = float(initial)  # where the working set point stands when segment k begins
    for k, target in enumerate(targets):
        span, direction = abs(target - value), np.sign(target - value)
        i0, i1 = bounds[k], bounds[k + 1]
        if i1 > i0:
            out[i0:i1] = value + direction * np.minimum(rate * (t[i0:i1] - starts[k]), span)
        if k + 1 < len(starts):
            value += direction * min(rate * (starts[k + 1] - starts[k]), span)
    return out


@lru_cache(maxsize=256)
def _closed_loop(period_s: float, damping: float, dt: float) -> tuple[Array, Array]:
    omega = 2 * np.pi / period_s
    # type-2 loop: H(s) = (2ζω s + ω²)/(s² + 2ζω s + ω²)
    return signal.bilinear(
        [2 * damping * omega, omega**2], [1, 2 * damping * omega, omega**2], fs=1 / dt
    )


def closed_loop_response(working_setpoint: Array, heater: HeaterSpec, dt: float) -> Array:
    """Temperature the controller holds (what its thermocouple reads), from its working set
    point."""
    b, a = _closed_loop(round(heater.period_s, 3), round(heater.damping, 4), dt)
    zi = signal.lfilter_zi(b, a) * working_setpoint[0]
    y, _ = signal.lfilter(b, a, working_setpoint, zi=zi)
    return y


def heater_power(
    temperature_c: Array, heater: HeaterSpec, dt: float, extra: Array | float = 0.0
) -> Array:
    """Controller output (%): steady losses at the temperature plus the heat to change it."""
    t_k = temperature_c + 273.15
    losses = heater.power_linear * (t_k - 300.0) + heater.power_radiative * (t_k**4 - 300.0**4)
    heating = heater.power_per_c_per_s * np.gradient(temperature_c, dt)
    return np.clip(losses + heating + extra, 0.0, 100.0)


def heater_trace(
    t: Array, changes: Changes, initial: float, heater: HeaterSpec
) -> tuple[Array, Array]:
    """(working set point, controlled temperature) of a heater on a uniform grid `t`."""
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    working = rate_limited(t, changes, initial, heater.ramp_c_per_s)
    return working, closed_loop_response(working, heater, dt)


PULSE_SPAN = 12.0  # an alpha pulse is negligible (< 1e-4) after this many time constants


def add_alpha_pulse(out: Array, t: Array, at: float, tau: float, height: float) -> None:
    """Add height·(x)·e^(1 - x), x = (t - at)/τ, to `out` in place: a transient that peaks at
    `height` τ after `at` and dies out (only the span where it matters is computed)."""
    i0, i1 = np.searchsorted(t, [at, at + PULSE_SPAN * tau])
    x = (t[i0:i1] - at) / tau
    out[i0:i1] += height * x * np.exp(1.0 - x)


def shutter_dip(t: Array, opens: Sequence[float], closes: Sequence[float], cell: CellSpec) -> Array:
    """Thermocouple transient from the shutters: it dips when a shutter opens (the melt loses the
    heat the closed shutter reflected back) and bumps when it closes; the PID then recovers."""
    out = np.zeros(len(t))
    tau = 12.0
    for at in opens:
        add_alpha_pulse(out, t, at, tau, -cell.shutter_dip_c)
    for at in closes:
        add_alpha_pulse(out, t, at, tau, cell.shutter_dip_c)
    return out


def open_intervals(
    t: Array, opens: Sequence[float], closes: Sequence[float]
) -> list[tuple[int, int, float]]:
    """Index ranges [i0, i1) of `t` in which a shutter is open, with the opening time."""
    out = []
    for start, stop in zip(opens, closes, strict=True):
        i0, i1 = np.searchsorted(t, [start, stop], side="left")
        out.append((int(i0), int(i1), float(start)))
    return out


def shutter_flux_factor(t: Array, intervals: list[tuple[int, int, float]], cell: CellSpec) -> Array:
    """0 while closed; 1 + overshoot·e^(-Δt/τ) while open (the melt surface starts hotter)."""
    out = np.zeros(len(t))
    for i0, i1, start in intervals:
        out[i0:i1] = 1.0 + cell.shutter_overshoot * np.exp(-(t[i0:i1] - start) / cell.shutter_tau_s)
    return out


def melt_temperature_c(base_c: Array, lip_c: Array | None, cell: CellSpec) -> Array:
    """Temperature that sets the evaporation rate: the base thermocouple, plus a little of the
    lip."""
    if lip_c is None or cell.lip_offset_c is None:
        return base_c
    return base_c + cell.lip_coupling * (lip_c - base_c - cell.lip_offset_c)


def cell_bep(melt_c: Array, cell: CellSpec, flux_factor: float) -> Array:
    """True BEP (Torr) of a cell whose melt is at `melt_c`."""
    return cell.bep(melt_c, flux_factor)


# --------------------------------------------------------------------------------------------
# As valved cracker
class AsValveCurve:
    """BEP vs valve opening, interpolated monotonically in log(BEP)."""

    def __init__(self, valve_pct: Sequence[float], bep_torr: Sequence[float]):
        self.valve_pct = np.asarray(valve_pct, dtype=float)
        # a measured curve can be flat within noise: keep it strictly increasing to invert it
        bep = np.maximum.accumulate(np.asarray(bep_torr, dtype=float))
        self.bep_torr = bep * (1 + 1e-6 * np.arange(len(bep)))
        self._forward = PchipInterpolator(self.valve_pct, np.log(self.bep_torr))
        order = np.argsort(self.bep_torr)
        self._inverse = PchipInterpolator(np.log(self.bep_torr[order]), self.valve_pct[order])

    def bep(self, valve_pct: Array | float) -> Array:
        v = np.clip(np.asarray(valve_pct, dtype=float), self.valve_pct[0], self.valve_pct[-1])
        return np.exp(self._forward(v))

    def valve_for(self, bep_torr: float) -> float:
        lo, hi = np.log(self.bep_torr.min()), np.log(self.bep_torr.max())
        return float(np.clip(self._inverse(np.clip(np.log(bep_torr), lo, hi)), 0.0, 100.0))


def first_order_lag(x: Array, tau_s: float, dt: float) -> Array:
    """y' = (x - y)/τ, starting at rest on x[0]."""
    alpha = dt / (tau_s + dt)
    b, a = np.array([alpha]), np.array([1.0, alpha - 1.0])
    y, _ = signal.lfilter(b, a, x, zi=np.array([x[0] * (1 - alpha)]))
    return y
