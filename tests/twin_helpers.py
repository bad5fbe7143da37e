"""A twin run in memory as the ingest would give it, without writing files: the canonical sensor
table (logged channels rounded as EPIC writes them, the shutter log with the commanded states),
the layer windows and the run's context (the calibration the run was planned with)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from epi_ml.calibration.cells import CellCalibration
from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.features.core import RunContext
from epi_ml.features.windows import LayerWindow
from epi_ml.twin.faults import Fault
from epi_ml.twin.formats import quantize
from epi_ml.twin.logged import LOGGED
from epi_ml.twin.run import RunTrace
from epi_ml.twin.single import GrownRun, grow_one_run
from epi_ml.twin.writers import SHUTTER_NAMES, shutter_states


def sensor_table(trace: RunTrace) -> pl.DataFrame:
    start = trace.start
    frames = []
    for channel in LOGGED:
        values = trace.values[channel.name]
        keep = np.isfinite(values)
        t = trace.log_t[keep] + trace.log_offsets_ms[channel.name] / 1000.0
        frames.append(_rows(start, channel.name, t, quantize(values[keep], channel.fmt)))
    states = shutter_states(trace)
    times = np.array([0.0] + [at for at, _ in states])
    for k, name in enumerate(SHUTTER_NAMES):
        values = np.array([0.0] + [float(s[k]) for _, s in states])
        frames.append(_rows(start, f"{name}.shutter", times, values))
    frames.append(_rows(start, "RHEED.I", trace.rheed_t, trace.rheed))
    return pl.concat(frames).sort("channel", "time")


def _rows(start, channel: str, t: np.ndarray, values: np.ndarray) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    micros = np.rint(t * 1e6).astype(np.int64)
    base = pl.Series([start]).cast(SENSOR_SCHEMA["time"])[0]
    return pl.DataFrame(
        {
            "time": pl.Series(micros).cast(pl.Duration("us")) + base,
            "channel": channel,
            "value": values.astype(float),
        }
    ).cast(SENSOR_SCHEMA)  # type: ignore[arg-type]


def layer_windows(trace: RunTrace) -> list[LayerWindow]:
    return [
        LayerWindow(
            index=step.index,
            kind=step.kind,
            material=step.material or "",
            start=trace.start + timedelta(seconds=step.start_s),
            end=trace.start + timedelta(seconds=step.end_s),
            open_sources=frozenset(step.open_shutters) | {"As"},
            label=step.label,
            target_thickness_nm=step.target_thickness_nm,
            target_composition=step.composition,
        )
        for step in trace.plan.steps
    ]


def run_context(run: GrownRun) -> RunContext:
    """The calibration the engineers planned the run with (the morning's scans), as features
    read it from a Fitting.txt."""
    belief = run.state.belief
    calibrations = {
        cell: CellCalibration(
            tool=run.trace.tool,
            cell=cell,
            taken_at=run.trace.start - timedelta(hours=3),
            source="fitting",
            activation_ev=fit.activation_ev,
            ln_prefactor=fit.ln_prefactor,
            bep_to_rate=belief.flux_per_torr.get(cell),
        )
        for cell, fit in belief.fits.items()
    }
    return RunContext(
        run_id=run.trace.run_id,
        tool=run.trace.tool,
        started_at=run.trace.start,
        calibrations=calibrations,
        last_calibration_at=run.trace.start - timedelta(hours=3),
    )


def step_of(run: GrownRun, label: str):  # type: ignore[no-untyped-def]
    return next(s for s in run.trace.plan.steps if s.label == label)


def with_stuck_shutter(
    recipe: str, label: str, cell: str, mode: str, seed: int = 0, stuck_s: float = 40.0
) -> tuple[GrownRun, GrownRun]:
    """(fault-free run, the same run with the cell's shutter stuck in the layer `label`):
    `stuck_closed` for the whole layer, or `stuck_open` for `stuck_s` after its close."""
    clean = grow_one_run(recipe, seed=seed, deviate=False, faults=[])
    step = step_of(clean, label)
    if mode == "stuck_closed":
        start, end = step.start_s, step.end_s
    else:
        start, end = step.end_s, step.end_s + stuck_s
    fault = Fault("stuck_shutter", f"{cell}.shutter", start, end, {"mode": mode, "step": step.index})
    return clean, grow_one_run(recipe, seed=seed, deviate=False, faults=[fault])
