"""One run on one freshly calibrated tool, in memory: for the live mode, for "what will this recipe
grow?" questions and for tests. Nothing is written to disk here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from epi_ml.twin.calibration import CalibrationScan, calibrate
from epi_ml.twin.faults import Fault, deviation_fault, draw_faults
from epi_ml.twin.logged import LOGGED
from epi_ml.twin.plan import plan_run
from epi_ml.twin.recipe import Recipe, load_recipe
from epi_ml.twin.run import RunTrace, simulate_run
from epi_ml.twin.state import ToolState, anchor_rates, initial_state
from epi_ml.twin.tools import make_tool


@dataclass
class GrownRun:
    state: ToolState  # the tool as it was during the run (before the run's consumption)
    trace: RunTrace
    scans: list[CalibrationScan]  # the morning's calibration the run was planned with


def as_utc(moment: datetime) -> datetime:
    """A datetime in UTC; a naive one is taken as UTC (the twin's clocks are UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def tool_index(tool: str) -> int:
    """MBE1 -> 0, MBE2 -> 1, ...; other names get a stable index of their own."""
    match = re.fullmatch(r"MBE(\d+)", tool)
    return int(match.group(1)) - 1 if match else sum(tool.encode()) % 1000 + 100


def grow_one_run(
    recipe: str | Recipe,
    tool: str = "MBE1",
    seed: int = 0,
    start: datetime | None = None,
    run_id: str | None = None,
    fault_rate: float = 0.0,
    faults: list[Fault] | None = None,
    deviate: bool | None = None,
) -> GrownRun:
    """Calibrate the tool three hours before `start`, plan the recipe, simulate the run.

    `faults` replaces the random draw (`fault_rate`); `deviate` forces or forbids a recipe
    deviation (None: the operator's own slip rate)."""
    the_recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    begin = as_utc(start or datetime(2026, 1, 5, 10, tzinfo=UTC))
    index = tool_index(tool)
    spec = make_tool(tool, index, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, index]))
    state = initial_state(spec, rng)
    state.new_day(rng)
    scans, _ = calibrate(state, begin - timedelta(hours=3), rng, include_as=True)
    anchor_rates(state, rng)
    operator = spec.operators[int(rng.integers(len(spec.operators)))]
    slip = rng.random() < operator.slip_rate if deviate is None else deviate
    plan = plan_run(
        the_recipe,
        state,
        operator,
        run_id or f"{tool}-{begin:%Y%m%d}-01",
        f"W{index + 1}L{begin:%H%M%S}",
        rng,
        deviate=slip,
    )
    chosen = (
        list(faults)
        if faults is not None
        else draw_faults(plan, rng, fault_rate, [c.name for c in LOGGED])
    )
    deviation = deviation_fault(plan)
    if deviation is not None:
        chosen.append(deviation)
    return GrownRun(state, simulate_run(state, plan, chosen, begin, rng), scans)
