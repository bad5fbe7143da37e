"""Faults injected into runs, with the ground truth that models and monitoring are tested against.

Each fault has a kind, the canonical channel where it shows (or whose meaning it corrupts), and a
start and end. The physics of a fault is applied where it acts: a drifting thermocouple makes the
controller hold the wrong true temperature (the logged temperature looks normal, the power and the
flux do not); a stuck shutter lets no flux through while the log says open; a sticking As valve
creeps away from its set point; a spitting cell throws droplets (flux spikes, RHEED dips); a
pressure burst, a sensor dropout and an over-range gauge corrupt what the gauges and the logger
write; a recipe deviation changes what the operator commanded.

| kind             | channel          | what happens                                            |
|------------------|------------------|---------------------------------------------------------|
| tc_drift         | <cell>.T, sub.T  | thermocouple error grows linearly from start to end     |
| stuck_shutter    | <cell>.shutter   | closed for a whole layer, or open after the close       |
| sticking_valve   | As.valve         | valve creeps below its set point in jumps               |
| pressure_burst   | P.chamber        | outgassing burst: the pressure jumps and decays         |
| sensor_dropout   | any channel      | the logger writes no rows for the channel               |
| gauge_over_range | P.chamber, BEP   | the gauge reads its over-range value 1000.0             |
| flux_spikes      | RHEED.I          | cell spitting: short flux spikes, RHEED dips            |
| recipe_deviation | <cell>.T_set ... | operator set another set point, time or valve           |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from epi_ml.twin.plan import RunPlan

Array = NDArray[np.float64]

FAULT_KINDS = (
    "tc_drift",
    "stuck_shutter",
    "sticking_valve",
    "pressure_burst",
    "sensor_dropout",
    "gauge_over_range",
    "flux_spikes",
    "recipe_deviation",
)
# relative frequency of the kinds drawn at random (recipe deviations come from the operator)
_RANDOM_KINDS = {
    "tc_drift": 0.16,
    "stuck_shutter": 0.1,
    "sticking_valve": 0.12,
    "pressure_burst": 0.16,
    "sensor_dropout": 0.2,
    "gauge_over_range": 0.12,
    "flux_spikes": 0.14,
}
TIME_TOLERANCE = 2e-3  # plan times are kept to the millisecond
OVER_RANGE_VALUE = 1000.0  # what EPIC logs for a gauge that is off or over range (real MIG.PG.MV)


@dataclass
class Fault:
    kind: str
    channel: str
    start_s: float
    end_s: float
    params: dict[str, Any] = field(default_factory=dict)

    def active(self, t: Array) -> NDArray[np.bool_]:
        return (t >= self.start_s) & (t < self.end_s)

    def truth(self, run_id: str, tool: str, run_start: datetime) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "tool": tool,
            "channel": self.channel,
            "kind": self.kind,
            "start": _iso(run_start + timedelta(seconds=self.start_s)),
            "end": _iso(run_start + timedelta(seconds=self.end_s)),
            "details": {k: _plain(v) for k, v in self.params.items()},
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


def draw_faults(
    plan: RunPlan, rng: np.random.Generator, rate: float, channels: list[str]
) -> list[Fault]:
    """Random faults for one run (recipe deviations are added from the plan by the caller)."""
    faults: list[Fault] = []
    if rng.random() >= rate:
        return faults
    count = 1 + rng.poisson(0.25)
    kinds = list(_RANDOM_KINDS)
    weights = np.array(list(_RANDOM_KINDS.values()))
    for kind in rng.choice(kinds, size=count, p=weights / weights.sum()):
        fault = _draw(str(kind), plan, rng, channels)
        if fault is not None:
            faults.append(fault)
    return faults


def _draw(kind: str, plan: RunPlan, rng: np.random.Generator, channels: list[str]) -> Fault | None:
    g0, g1 = plan.phases["growth"]
    layers = [s for s in plan.steps if s.kind == "layer"]
    used = sorted({c for s in layers for c in s.open_shutters if c in ("Ga", "Al", "In")})
    if kind == "tc_drift":
        target = str(rng.choice([*used, "sub"]))
        start = float(rng.uniform(max(0.0, g0 - 600), g0 + 0.6 * (g1 - g0)))
        rate = float(rng.choice([-1, 1]) * rng.uniform(2.0, 8.0))  # °C per hour
        return Fault(
            kind, f"{target}.T", start, plan.duration_s, {"source": target, "rate_c_per_h": rate}
        )
    if kind == "stuck_shutter":
        candidates = [s for s in layers if any(c in s.open_shutters for c in ("Ga", "Al", "In"))]
        step = candidates[int(rng.integers(len(candidates)))]
        cell = str(rng.choice([c for c in step.open_shutters if c in ("Ga", "Al", "In")]))
        if rng.random() < 0.5:
            return Fault(
                kind,
                f"{cell}.shutter",
                step.start_s,
                step.end_s,
                {"mode": "stuck_closed", "step": step.index},
            )
        stuck = float(rng.uniform(5, 60))
        return Fault(
            kind,
            f"{cell}.shutter",
            step.end_s,
            step.end_s + stuck,
            {"mode": "stuck_open", "step": step.index},
        )
    if kind == "sticking_valve":
        start = float(rng.uniform(g0, max(g0 + 1, g1 - 300)))
        end = min(g1, start + float(rng.uniform(300, 1800)))
        return Fault(
            kind,
            "As.valve",
            start,
            end,
            {
                "jump_pct": float(rng.uniform(1.5, 3.5)),
                "every_s": float(rng.uniform(60, 180)),
                "max_pct": float(rng.uniform(8, 20)),
            },
        )
    if kind == "pressure_burst":
        start = float(rng.uniform(g0, g1))
        tau = float(rng.uniform(20, 120))
        return Fault(
            kind,
            "P.chamber",
            start,
            min(plan.duration_s, start + 5 * tau),
            {
                "amplitude": float(10 ** rng.uniform(0.7, 1.7)),
                "tau_s": tau,
            },
        )
    if kind == "sensor_dropout":
        channel = str(rng.choice(channels))
        start = float(rng.uniform(0, plan.duration_s - 60))
        return Fault(
            kind, channel, start, min(plan.duration_s, start + float(rng.uniform(30, 900))), {}
        )
    if kind == "gauge_over_range":
        channel = str(rng.choice(["P.chamber", "BEP", "P.main"]))
        start = float(rng.uniform(0, plan.duration_s - 60))
        return Fault(
            kind,
            channel,
            start,
            min(plan.duration_s, start + float(rng.uniform(60, 1800))),
            {
                "value": OVER_RANGE_VALUE,
            },
        )
    if kind == "flux_spikes":
        if not used:
            return None
        cell = "Ga" if "Ga" in used else str(rng.choice(used))
        start = float(rng.uniform(g0, max(g0 + 1, g1 - 120)))
        end = min(g1, start + float(rng.uniform(120, 1200)))
        return Fault(
            kind,
            "RHEED.I",
            start,
            end,
            {"source": cell, "spikes_per_min": float(rng.uniform(1, 6))},
        )
    raise ValueError(f"unknown fault kind {kind!r}")


def deviation_fault(plan: RunPlan) -> Fault | None:
    deviation = plan.deviation
    if deviation is None:
        return None
    step = plan.steps[deviation.step - 1]
    channel = {"duration": f"{step.open_shutters[0]}.shutter", "As": "As.valve_set"}.get(
        deviation.field, f"{deviation.field}.T_set"
    )
    return Fault(
        "recipe_deviation",
        channel,
        step.start_s,
        step.end_s,
        {
            "step": deviation.step,
            "field": deviation.field,
            "recipe": deviation.recipe_value,
            "actual": deviation.actual_value,
        },
    )


# --------------------------------------------------------------------------------------------
# Effects, applied by the run simulation
def of_kind(faults: list[Fault], kind: str) -> list[Fault]:
    return [f for f in faults if f.kind == kind]


def thermocouple_error(t: Array, faults: list[Fault], source: str) -> Array:
    """Reading minus truth of a thermocouple (°C)."""
    error = np.zeros(len(t))
    for f in of_kind(faults, "tc_drift"):
        if f.params["source"] == source:
            error += np.where(
                t >= f.start_s, (t - f.start_s) * f.params["rate_c_per_h"] / 3600.0, 0.0
            )
    return error


def actual_shutter_events(
    events: list[tuple[float, str, bool]], faults: list[Fault]
) -> list[tuple[float, str, bool]]:
    """What the shutters physically did, given the commanded events."""
    actual = list(events)
    for f in of_kind(faults, "stuck_shutter"):
        cell = f.channel.split(".")[0]
        if f.params["mode"] == "stuck_closed":
            actual = [
                e
                for e in actual
                if not (
                    e[1] == cell and f.start_s - TIME_TOLERANCE <= e[0] <= f.end_s + TIME_TOLERANCE
                )
            ]
        else:
            actual = [
                (f.end_s, name, is_open)
                if (name == cell and not is_open and abs(at - f.start_s) < TIME_TOLERANCE)
                else (at, name, is_open)
                for at, name, is_open in actual
            ]
    return sorted(actual, key=lambda e: e[0])


def valve_creep(t: Array, faults: list[Fault]) -> Array:
    """How far (in %) a sticking valve sits below its set point."""
    creep = np.zeros(len(t))
    for f in of_kind(faults, "sticking_valve"):
        inside = f.active(t)
        jumps = np.floor((t - f.start_s) / f.params["every_s"]) + 1
        creep += np.where(
            inside, np.minimum(jumps * f.params["jump_pct"], f.params["max_pct"]), 0.0
        )
    return creep


def pressure_factor(t: Array, faults: list[Fault]) -> Array:
    factor = np.ones(len(t))
    for f in of_kind(faults, "pressure_burst"):
        after = t >= f.start_s
        factor += np.where(
            after, f.params["amplitude"] * np.exp(-(t - f.start_s) / f.params["tau_s"]), 0.0
        )
    return factor


def spike_factor(t: Array, faults: list[Fault], cell: str, rng: np.random.Generator) -> Array:
    """Flux multiplier of a spitting cell: 1 with short droplet bursts."""
    factor = np.ones(len(t))
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    for f in of_kind(faults, "flux_spikes"):
        if f.params["source"] != cell:
            continue
        n_spikes = max(1, round((f.end_s - f.start_s) / 60.0 * f.params["spikes_per_min"]))
        for at in np.sort(rng.uniform(f.start_s, f.end_s, n_spikes)):
            i0 = int(np.searchsorted(t, at))
            width = max(1, round(rng.uniform(0.4, 2.0) / dt))
            factor[i0 : i0 + width] *= 1 + rng.uniform(0.3, 2.0)
    return factor


def apply_logging_faults(t: Array, values: Array, channel: str, faults: list[Fault]) -> Array:
    """Dropouts (NaN = no row written) and over-range readings of a logged channel."""
    out = values
    for f in faults:
        if f.channel != channel:
            continue
        if f.kind == "sensor_dropout":
            out = np.where(f.active(t), np.nan, out)
        elif f.kind == "gauge_over_range":
            out = np.where(f.active(t), f.params["value"], out)
    return out
