"""A campaign: several tools, weeks of runs, calibrations, refills, faults, measurements.

Each tool lives its own life on working days: a morning flux calibration every few days (weekly
with the As valve), a RHEED calibration run every Monday and after maintenance, two to four runs
a day by the operator on shift, cells depleting with every gram evaporated, a vent / refill /
bake-out when a group-III cell runs low, and random faults. Runs are simulated and written one at a
time (memory stays flat however long the campaign), tools in parallel processes.

`simulate_campaign()` writes everything under one folder and returns the manifest it writes to
`manifest.json`: every file by kind and the ground truth (tool and cell parameters, the depletion
state of every cell at every run, every layer as grown, every fault, every maintenance).
Same seed, same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from epi_ml.physics import K_B_EV
from epi_ml.twin.calibration import calibrate
from epi_ml.twin.faults import deviation_fault, draw_faults
from epi_ml.twin.logged import LOGGED
from epi_ml.twin.measurements import measure_run
from epi_ml.twin.plan import plan_run
from epi_ml.twin.recipe import GrowthLayer, Recipe, load_library, parse_recipe
from epi_ml.twin.run import RunTrace, simulate_run
from epi_ml.twin.state import ToolState, anchor_rates, initial_state, update_rates_from_rheed
from epi_ml.twin.tools import GROUP_III, ToolSpec, make_tool, tool_names
from epi_ml.twin.writers import (
    RunWriter,
    append_measurements,
    make_writer,
    stamp_run_files,
    write_calibration,
    write_run,
)

MANIFEST_SCHEMA = "epi-ml-twin-manifest/1"
DEFAULT_START = date(2026, 1, 5)  # a Monday
# daily mix of device and calibration runs (the RHEED calibration is scheduled, not drawn)
RECIPE_MIX = {
    "gaas_buffer": 0.22,
    "hemt_algaas_gaas": 0.26,
    "qw_ingaas_gaas": 0.24,
    "xrd_calibration": 0.2,
    "dbr_alas_gaas": 0.08,
}
RUNS_PER_DAY = {2: 0.35, 3: 0.5, 4: 0.15}
DEVELOPMENT_SHARE = 0.35  # runs whose targets an engineer varied from the library recipe
FAULT_RATE = 0.2  # share of runs with at least one random fault
REFILL_AT = 0.8  # used fraction of a group-III charge that triggers a vent and refill
MAINTENANCE_DAYS = 4
DAY_START = time(7, 0)
LAST_START = time(19, 0)
IDLE_HOURS = 20.0
OUTGAS_HOURS = 0.5


@dataclass
class ToolResult:
    """What one tool's simulation returns to the campaign (ground truth only; data is on disk)."""

    tool: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    maintenance: list[dict[str, Any]] = field(default_factory=list)
    calibrations: list[dict[str, Any]] = field(default_factory=list)
    last_day: str = ""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clean_json(value: Any) -> Any:
    """JSON-ready, deterministic: floats rounded, NaN as null."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not np.isfinite(value) else float(f"{value:.6g}")
    return value


def tool_truth(spec: ToolSpec) -> dict[str, Any]:
    cells = {}
    for name, cell in spec.cells.items():
        cells[name] = {
            "kind": cell.kind,
            "activation_energy_ev": cell.activation_ev,
            "prefactor_ln_torr": cell.ln_prefactor,  # ln(BEP/Torr) = a - E/kT at a full charge
            "epic_coefficients": [cell.ln_prefactor, -cell.activation_ev / K_B_EV],
            "flux_per_torr": cell.flux_per_torr,
            "flux_unit": "ML/s per Torr" if cell.kind == "group_iii" else "atoms/cm2/s per Torr",
            "beam_efficiency": cell.beam_efficiency,
            "charge_g": cell.charge_g,
            "depletion_sensitivity": cell.depletion_sensitivity,
            "idle_c": cell.idle_c,
            "hot_lip_offset_c": cell.lip_offset_c,
            "shutter_overshoot": cell.shutter_overshoot,
            "shutter_tau_s": cell.shutter_tau_s,
            "tc_noise_c": cell.heater.tc_noise_c,
            "pid_period_s": cell.heater.period_s,
            "pid_damping": cell.heater.damping,
        }
    return clean_json(
        {
            "name": spec.name,
            "cells": cells,
            "substrate": {
                "tc_offset_c": spec.tc_offset_c,
                "tc_offset_per_c": spec.tc_offset_per_c,
                "pyro_bias_c": spec.pyro_bias_c,
                "pyro_min_c": spec.pyro_min_c,
            },
            "as_valve": {
                "valve_pct": list(spec.as_valve_pct),
                "bep_torr": list(spec.as_valve_bep),
                "speed_pct_s": spec.as_valve_speed_pct_s,
                "lag_s": spec.as_bep_tau_s,
            },
            "vacuum": {
                "base_pressure_torr": spec.base_pressure_torr,
                "chamber_as_coupling": spec.chamber_as_coupling,
                "chamber_noise": spec.chamber_noise,
                "bep_gauge_noise": spec.bep_gauge_noise,
            },
            "rheed": {
                "intensity": spec.rheed_intensity,
                "damping_ml": spec.rheed_damping_ml,
                "recovery_s": spec.rheed_recovery_s,
                "rate_hz": spec.rheed_hz,
            },
            "logger": {
                "period_s": spec.log_period_s,
                "gap_probability": spec.log_gap_probability,
                "drop_probability": spec.log_drop_probability,
            },
            "operators": [o.__dict__ for o in spec.operators],
            "calibration_interval_days": spec.calibration_interval_days,
            "day_flux_sigma": spec.day_flux_sigma,
        }
    )


def cell_states(state: ToolState) -> dict[str, Any]:
    return {
        name: {
            "used_g": cell.used_g,
            "used_fraction": cell.used_fraction,
            "depletion_factor": cell.flux_factor(state.spec.cells[name].depletion_sensitivity),
            "day_factor": state.day_factors.get(name, 1.0),
            "refills": cell.refills,
        }
        for name, cell in state.cells.items()
    }


def vary_recipe(recipe: Recipe, rng: np.random.Generator) -> Recipe:
    """A development variant: an engineer changes thicknesses, compositions, rates and temperatures
    of a library recipe (the same change for every layer with the same label)."""
    data = recipe.model_dump(mode="json", exclude_none=True)
    factors: dict[str, dict[str, float]] = {}

    def change(item: dict[str, Any]) -> None:
        if "repeat" in item:
            for inner in item["layers"]:
                change(inner)
            return
        if "material" not in item:
            return
        f = factors.setdefault(
            str(item.get("label")),
            {
                "thickness": float(rng.uniform(0.8, 1.25)),
                "x": float(rng.uniform(-0.05, 0.05)),
                "rate": float(rng.uniform(0.85, 1.15)),
                "substrate": float(rng.uniform(-10, 10)),
            },
        )
        if "thickness_nm" in item:
            item["thickness_nm"] = round(item["thickness_nm"] * f["thickness"], 1)
        if "composition" in item:
            item["composition"] = round(float(np.clip(item["composition"] + f["x"], 0.05, 0.45)), 3)
        if "growth_rate_um_h" in item:
            item["growth_rate_um_h"] = round(item["growth_rate_um_h"] * f["rate"], 3)
        if "substrate_c" in item:
            item["substrate_c"] = round(item["substrate_c"] + f["substrate"], 1)

    for item in data["layers"]:
        change(item)
    data["description"] = f"development variant of {recipe.name}: {recipe.description}"
    return parse_recipe(data, f"variant of {recipe.name}")


def _choose_recipe(library: dict[str, Recipe], rng: np.random.Generator) -> Recipe:
    names = list(RECIPE_MIX)
    weights = np.array([RECIPE_MIX[n] for n in names])
    recipe = library[str(rng.choice(names, p=weights / weights.sum()))]
    return vary_recipe(recipe, rng) if rng.random() < DEVELOPMENT_SHARE else recipe


def _idle_day(state: ToolState) -> None:
    """Evaporation between runs: hours at stand-by, and the daily outgassing above working
    temperature."""
    for name, cell in state.spec.cells.items():
        factor = state.flux_factor(name)
        ml = float(cell.bep(cell.idle_c, factor)) * cell.flux_per_torr * IDLE_HOURS * 3600
        if cell.kind == "group_iii":
            working_c = float(state.belief.fits[name].temperature_c(2e-7)) + 25.0
            ml += float(cell.bep(working_c, factor)) * cell.flux_per_torr * OUTGAS_HOURS * 3600
        state.consume(name, ml)


@dataclass(frozen=True)
class ToolJob:
    out: Path
    index: int
    name: str
    runs: int
    seed: int
    start: date
    fmt: str


def simulate_tool(job: ToolJob) -> ToolResult:
    """Every day of one tool until it has grown its runs."""
    spec = make_tool(job.name, job.index, job.seed)
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, 11, job.index]))
    state = initial_state(spec, rng)
    tool_dir = job.out / job.name
    writer = make_writer(job.fmt, tool_dir)
    library = load_library()
    result = ToolResult(tool=tool_truth(spec))
    channels = [c.name for c in LOGGED]

    day = job.start
    free_at = datetime.combine(day, DAY_START, UTC)
    last_calibration: date | None = None
    last_as_scan: date | None = None
    need_rheed = True
    done = 0
    wafer = 0
    while done < job.runs:
        state.new_day(rng)
        _idle_day(state)
        if day.weekday() >= 5:
            day += timedelta(days=1)
            continue
        low = [c for c in GROUP_III if state.cells[c].used_fraction > REFILL_AT]
        if low:
            day = _maintenance(state, day, result, rng, writer)
            last_calibration, need_rheed = None, True
            free_at = datetime.combine(day, DAY_START, UTC)
            continue
        at = max(
            free_at,
            datetime.combine(day, DAY_START, UTC) + timedelta(minutes=float(rng.uniform(0, 40))),
        )
        if (
            last_calibration is None
            or (day - last_calibration).days >= spec.calibration_interval_days
        ):
            with_as = last_as_scan is None or (day - last_as_scan).days >= 7
            scans, at = calibrate(state, at, rng, include_as=with_as)
            if last_calibration is None and not result.calibrations:
                anchor_rates(state, rng)  # the tool's RHEED history before the campaign
            for scan in scans:
                path = write_calibration(tool_dir, scan)
                entry: dict[str, Any] = {
                    "tool": spec.name,
                    "source": scan.source,
                    "started_at": _iso(scan.started_at),
                    "file": str(path.relative_to(job.out)),
                }
                if scan.source != "As":
                    fit = state.belief.fits[scan.source]
                    entry["fit"] = {
                        "prefactor_ln_torr": fit.ln_prefactor,
                        "activation_energy_ev": fit.activation_ev,
                        "r2": fit.r2,
                    }
                result.calibrations.append(clean_json(entry))
            last_calibration = day
            last_as_scan = day if with_as else last_as_scan
        operator = spec.operators[int(rng.integers(len(spec.operators)))]
        sizes = list(RUNS_PER_DAY)
        planned = int(rng.choice(sizes, p=list(RUNS_PER_DAY.values())))
        for seq in range(1, planned + 1):
            if done >= job.runs or at.time() > LAST_START or at.date() != day:
                break
            recipe = (
                library["rheed_calibration"]
                if need_rheed or (seq == 1 and day.weekday() == 0)
                else _choose_recipe(library, rng)
            )
            wafer += 1
            run_id = f"{spec.name}-{day:%Y%m%d}-{seq:02d}"
            trace = _grow(
                state, recipe, operator, run_id, f"W{job.index + 1}{wafer:04d}", at, rng, channels
            )
            write_run(writer, trace, state)
            stamp_run_files(writer, trace)
            _write_recipe(tool_dir, run_id, recipe)
            measurements = measure_run(run_id, trace.layers, trace.end, rng)
            iso = trace.start.isocalendar()
            append_measurements(
                job.out / "measurements" / f"{spec.name}_{iso.year}-W{iso.week:02d}.csv",
                measurements,
            )
            result.runs.append(run_truth(trace, state, recipe, operator.name))
            result.faults += [f.truth(run_id, spec.name, trace.start) for f in trace.faults]
            for name, amount in trace.evaporated.items():
                state.consume(name, amount)
            if trace.rheed_readings:
                update_rates_from_rheed(state, trace.rheed_readings)
                need_rheed = False
            done += 1
            at = trace.end + timedelta(seconds=operator.transfer_gap_s)
        free_at = at
        result.last_day = day.isoformat()
        day += timedelta(days=1)
    return result


def _grow(
    state: ToolState,
    recipe: Recipe,
    operator: Any,
    run_id: str,
    wafer: str,
    at: datetime,
    rng: np.random.Generator,
    channels: list[str],
) -> RunTrace:
    plan = plan_run(
        recipe, state, operator, run_id, wafer, rng, deviate=rng.random() < operator.slip_rate
    )
    faults = draw_faults(plan, rng, FAULT_RATE, channels)
    deviation = deviation_fault(plan)
    if deviation is not None:
        faults.append(deviation)
    start = at.replace(microsecond=int(rng.integers(0, 1000)) * 1000)
    return simulate_run(state, plan, faults, start, rng)


def _maintenance(
    state: ToolState, day: date, result: ToolResult, rng: np.random.Generator, writer: RunWriter
) -> date:
    """Vent, refill the low cells, bake out; the tool is back after MAINTENANCE_DAYS. The
    operator logs it in the tool's messages (`Refill Ga 250.0g`, docs/twin.md), as ingest
    reads refills from there."""
    refilled = [c for c in GROUP_III if state.cells[c].used_fraction > 0.4]
    back = day + timedelta(days=MAINTENANCE_DAYS)
    vented = datetime.combine(day, time(8, 0), UTC)
    notes = [(vented, "Vent for maintenance")]
    for i, name in enumerate(refilled):
        state.refill(name)
        grams = state.spec.cells[name].charge_g
        notes.append((vented + timedelta(hours=2, minutes=10 * i), f"Refill {name} {grams:.1f}g"))
    notes.append((datetime.combine(back, time(6, 30), UTC), "Bake-out end, tool ready"))
    last: dict[Path, datetime] = {}
    for at, text in notes:
        last[writer.write_tool_message(at, "Operator", text)] = at
    for path, at in last.items():  # dated as the logger left them (see stamp_run_files)
        os.utime(path, ns=(int(at.timestamp() * 1e9),) * 2)
    result.maintenance.append(
        clean_json(
            {
                "tool": state.spec.name,
                "kind": "refill_bakeout",
                "cells": refilled,
                "start": _iso(datetime.combine(day, time(8, 0), UTC)),
                "end": _iso(datetime.combine(back, time(7, 0), UTC)),
            }
        )
    )
    for _ in range(MAINTENANCE_DAYS):
        state.new_day(rng)
    state.days_since_bakeout = 0.0
    return back


def _write_recipe(tool_dir: Path, run_id: str, recipe: Recipe) -> None:
    path = tool_dir / "recipes" / f"{run_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(recipe.to_yaml())


def run_truth(trace: RunTrace, state: ToolState, recipe: Recipe, operator: str) -> dict[str, Any]:
    return clean_json(
        {
            "run_id": trace.run_id,
            "tool": trace.tool,
            "recipe": recipe.name,
            "recipe_sha256": recipe.sha256,
            "operator": operator,
            "wafer": trace.plan.wafer,
            "start": _iso(trace.start),
            "end": _iso(trace.end),
            "cells": cell_states(state),  # at the start of the run
            "flux_factor": trace.flux_factor,
            "layers": trace.layers,
            "faults": [f.kind for f in trace.faults],
        }
    )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _campaign_entry(path: Path) -> bool:
    """What a campaign writes at the top of its folder (and so may replace)."""
    return path.name in ("manifest.json", "measurements") or (
        path.is_dir() and path.name.startswith("MBE")
    )


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} is not empty; give a new --out folder "
                "(or --overwrite to replace a previous campaign there)"
            )
        for entry in out.iterdir():
            if _campaign_entry(entry):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _files(out: Path) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {
        "logs": [],
        "recipes": [],
        "measurements": [],
        "calibrations": [],
    }
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"):
        rel = path.relative_to(out)
        parts = rel.parts
        kind = "measurements" if parts[0] == "measurements" else parts[1]
        entry: dict[str, Any] = {"path": rel.as_posix(), "bytes": path.stat().st_size}
        if kind != "measurements":
            entry["tool"] = parts[0]
        kinds[kind].append(entry)
    return kinds


def simulate_campaign(
    out: Path | str,
    runs: int = 20,
    seed: int = 0,
    tools: int = 2,
    start: date | str = DEFAULT_START,
    fmt: str = "epic",
    workers: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Simulate `runs` runs over `tools` tools from `start`; write them under `out` in `fmt`
    (epic | csv | parquet) with `out/manifest.json`. Returns the manifest."""
    if fmt not in ("epic", "csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}: epic, csv or parquet")
    if runs < 1 or tools < 1:
        raise ValueError("runs and tools must be at least 1")
    out = Path(out)
    start_day = date.fromisoformat(start) if isinstance(start, str) else start
    _prepare(out, overwrite)
    jobs = [
        ToolJob(out, i, name, n, seed, start_day, fmt)
        for i, (name, n) in enumerate(zip(tool_names(tools), _split(runs, tools), strict=True))
        if n > 0
    ]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers > 1:
        # forkserver: safe in threaded hosts (Dagster, the dashboard), cheap after the first fork
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("forkserver")
        ) as pool:
            results = list(pool.map(simulate_tool, jobs))
    else:
        results = [simulate_tool(job) for job in jobs]
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "seed": seed,
        "format": fmt,
        "start": start_day.isoformat(),
        "end": max(r.last_day for r in results),
        "runs": runs,
        "tools": [r.tool["name"] for r in results],
        "files": _files(out),
        "truth": {
            "tools": {r.tool["name"]: r.tool for r in results},
            "runs": [run for r in results for run in r.runs],
            "faults": [f for r in results for f in r.faults],
            "maintenance": [m for r in results for m in r.maintenance],
            "calibrations": [c for r in results for c in r.calibrations],
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    return manifest


def load_manifest(out: Path | str) -> dict[str, Any]:
    return json.loads((Path(out) / "manifest.json").read_text())


__all__ = ["GrowthLayer", "load_manifest", "simulate_campaign", "vary_recipe", "yaml"]
