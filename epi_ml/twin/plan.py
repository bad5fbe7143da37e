"""Turn a recipe into what the tool is told to do, second by second: a run plan.

The plan is what an operator and the tool's sequencer do with a recipe: compute cell set points
and layer times from the tool's current calibration (the engineers' belief, not the truth), ramp
the cells, check fluxes with the beam flux monitor, deoxidise the wafer under As, grow each step
(waiting for set points to settle between steps), and cool down. Everything in it is commanded and
logged as such; what physically happens is computed from it by `epi_ml.twin.run`.

Recipe messages (EPIC Messages.txt, CallerID `Recipe`) mark the run and its steps; the exact
strings are documented in docs/twin.md ("Messages") and built by the `message_*` functions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from epi_ml.physics import (
    GROUP_III_OF,
    growth_rate_nm_s,
    monolayer_thickness_nm,
    um_per_h_to_ml_per_s,
)
from epi_ml.twin.recipe import GrowthLayer, Interrupt, Recipe
from epi_ml.twin.state import ToolState
from epi_ml.channels import DOPANTS
from epi_ml.twin.tools import CELL_NAMES, GROUP_III, Operator

SUBSTRATE_IDLE_TC = 200.0
SUBSTRATE_UNLOAD_TC = 250.0
AS_PROTECT_SURFACE_C = 350.0  # below this the surface needs no As
FLUX_READ_S = 60.0
FLUX_GAP_S = 30.0
AS_READ_S = 90.0
STEP_SETTLE_S = 30.0  # settle after a set-point change between steps
ROTATION_RAMP_RPM_S = 2.0


def message_run_start(run_id: str, recipe: str, operator: str, wafer: str) -> str:
    return f"Run {run_id} start recipe={recipe} operator={operator} wafer={wafer}"


def message_run_end(run_id: str) -> str:
    return f"Run {run_id} end"


def message_layer_start(step: StepPlan) -> str:
    if step.kind == "interrupt":
        text = f"Layer {step.index} start interrupt duration={step.end_s - step.start_s:.1f}s"
    else:
        target = (
            f"target={step.target_thickness_nm:.1f}nm"
            if step.target_thickness_nm is not None
            else f"duration={step.end_s - step.start_s:.1f}s"
        )
        text = f"Layer {step.index} start {step.material} {target}"
        if step.composition is not None:
            text += f" x={step.composition:.3f}"
    dopants = [name for name in step.open_shutters if name in DOPANTS]
    if dopants:  # which extra shutters the step opens, so that ingest knows without the recipe
        text += f" dopants={'+'.join(dopants)}"
    return text + (f" label={step.label}" if step.label else "")


def message_layer_end(index: int) -> str:
    return f"Layer {index} end"


@dataclass
class StepPlan:
    index: int  # 1-based position in the unrolled recipe
    kind: str  # layer | interrupt
    material: str | None
    composition: float | None
    label: str | None
    target_thickness_nm: float | None
    start_s: float  # shutters open (layer) / interrupt begins
    end_s: float
    cells: dict[str, float]  # group-III and dopant set points in force (°C)
    open_shutters: tuple[str, ...]
    substrate_target_c: float  # surface temperature the recipe asks for
    substrate_tc_c: float  # thermocouple set point the tool was given
    as_valve: float
    measure: tuple[str, ...]
    predicted_rate_nm_s: float | None  # what the engineers expected from their calibration


@dataclass
class RecipeDeviation:
    """The operator did not do what the recipe says in one step (a ground-truth fault)."""

    step: int
    field: str  # a cell name (set point), "duration" or "As"
    recipe_value: float
    actual_value: float


@dataclass
class RunPlan:
    run_id: str
    recipe: Recipe
    operator: Operator
    wafer: str
    duration_s: float = 0.0
    initial: dict[str, float] = field(default_factory=dict)
    changes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    shutter_events: list[tuple[float, str, bool]] = field(default_factory=list)
    bfm_intervals: list[tuple[float, float]] = field(default_factory=list)
    messages: list[tuple[float, str, str]] = field(default_factory=list)
    steps: list[StepPlan] = field(default_factory=list)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    deviation: RecipeDeviation | None = None

    def set(self, actuator: str, at: float, value: float) -> None:
        if abs(self.setting(actuator) - value) > 1e-9:
            self.changes.setdefault(actuator, []).append((round(at, 3), float(value)))

    def setting(self, actuator: str) -> float:
        history = self.changes.get(actuator)
        return history[-1][1] if history else self.initial[actuator]

    def shutter(self, at: float, name: str, is_open: bool) -> None:
        self.shutter_events.append((round(at, 3), name, is_open))

    def say(self, at: float, text: str, caller: str = "Recipe") -> None:
        self.messages.append((round(at, 3), caller, text))

    def shutter_intervals(
        self, name: str, events: list[tuple[float, str, bool]] | None = None
    ) -> tuple[list[float], list[float]]:
        """(open times, close times) of one shutter, a close at the run end if left open."""
        opens: list[float] = []
        closes: list[float] = []
        for at, shutter, is_open in sorted(events if events is not None else self.shutter_events):
            if shutter != name:
                continue
            if is_open and len(opens) == len(closes):
                opens.append(at)
            elif not is_open and len(opens) > len(closes):
                closes.append(at)
        if len(opens) > len(closes):
            closes.append(self.duration_s)
        return opens, closes


@dataclass
class _StepSettings:
    cells: dict[str, float]  # set points this step needs (group III of the layer, dopants)
    fluxes: dict[str, float]  # believed group-III fluxes (ML/s)
    duration_s: float
    substrate_target_c: float
    substrate_tc_c: float
    as_valve: float | None  # None: leave the valve
    predicted_rate_nm_s: float | None
    as_bep_wanted: float | None = None  # As BEP for the recipe's V/III, when no valve is given


def _layer_settings(
    layer: GrowthLayer, recipe: Recipe, state: ToolState, operator: Operator, substrate_c: float
) -> _StepSettings:
    belief = state.belief
    x = layer.x
    if layer.cells:
        cells = dict(layer.cells)
        fluxes = {c: belief.flux_at(c, t) for c, t in cells.items()}
    else:
        rate = layer.growth_rate_um_h or recipe.growth_rate_um_h
        total = float(um_per_h_to_ml_per_s(rate, layer.material, x))
        elements = GROUP_III_OF[layer.material]
        shares = (1 - x, x) if len(elements) == 2 else (1.0,)
        fluxes = {c: total * share for c, share in zip(elements, shares, strict=True)}
        cells = {c: belief.setpoint_for(c, f) for c, f in fluxes.items()}
        fluxes = {c: belief.flux_at(c, t) for c, t in cells.items()}  # at the rounded set points
    predicted = float(growth_rate_nm_s(sum(fluxes.values()), layer.material, x))
    duration = layer.duration_s or (layer.thickness_nm or 0.0) / predicted
    ratio = (layer.v_iii or recipe.v_iii) * operator.as_bias
    as_bep_wanted = ratio * sum(belief.bep_for(c, f) for c, f in fluxes.items())
    cells.update(layer.dopants)
    return _StepSettings(
        cells=cells,
        fluxes=fluxes,
        duration_s=round(duration, 1),
        substrate_target_c=substrate_c,
        substrate_tc_c=_thermocouple_setpoint(state, operator, substrate_c),
        as_valve=layer.as_valve,
        predicted_rate_nm_s=predicted,
        as_bep_wanted=None if layer.as_valve is not None else as_bep_wanted,
    )


def _interrupt_settings(
    step: Interrupt, state: ToolState, operator: Operator, substrate_c: float
) -> _StepSettings:
    return _StepSettings(
        cells=dict(step.dopants),
        fluxes={},
        duration_s=float(step.interrupt),
        substrate_target_c=substrate_c,
        substrate_tc_c=_thermocouple_setpoint(state, operator, substrate_c),
        as_valve=None,
        predicted_rate_nm_s=None,
    )


def _thermocouple_setpoint(state: ToolState, operator: Operator, surface_c: float) -> float:
    """What the operator dials in for a surface temperature: the tool's mapping + their habit."""
    return round(state.belief.thermocouple_for(surface_c) + operator.substrate_bias_c, 1)


def _wait_for(plan: RunPlan, state: ToolState, at: float, targets: dict[str, float]) -> float:
    """Command new set points at `at`; how long until they have settled."""
    wait = 0.0
    for actuator, value in targets.items():
        delta = abs(plan.setting(actuator) - value)
        if delta < 1e-9:
            continue
        plan.set(actuator, at, value)
        if actuator in state.spec.cells:
            spec = state.spec.cells[actuator]
            if spec.lip_offset_c is not None:
                plan.set(f"{actuator}.lip", at, value + spec.lip_offset_c)
            wait = max(wait, delta / spec.heater.ramp_c_per_s + STEP_SETTLE_S)
        elif actuator == "sub":
            wait = max(wait, delta / state.spec.substrate.ramp_c_per_s + STEP_SETTLE_S)
    return wait


def plan_run(
    recipe: Recipe,
    state: ToolState,
    operator: Operator,
    run_id: str,
    wafer: str,
    rng: np.random.Generator,
    deviate: bool = False,
) -> RunPlan:
    """The commanded timeline of one run (times in seconds from the run start)."""
    spec = state.spec
    plan = RunPlan(run_id=run_id, recipe=recipe, operator=operator, wafer=wafer)
    for name, cell in spec.cells.items():
        plan.initial[name] = cell.idle_c
        if cell.lip_offset_c is not None:
            plan.initial[f"{name}.lip"] = cell.idle_c + cell.lip_offset_c
    plan.initial.update({"sub": SUBSTRATE_IDLE_TC, "As": 0.0, "rpm": 0.0})

    # set points of every step, from the engineers' calibration
    settings: list[_StepSettings] = []
    substrate_c = recipe.substrate_c
    for step in recipe.steps:
        substrate_c = step.substrate_c if step.substrate_c is not None else substrate_c
        if isinstance(step, GrowthLayer):
            settings.append(_layer_settings(step, recipe, state, operator, substrate_c))
        else:
            settings.append(_interrupt_settings(step, state, operator, substrate_c))
    # one As valve opening for the layers that give none: the V/III of the highest-rate layer
    # (engineers do not move the valve for every thin layer of a superlattice)
    wanted = [s.as_bep_wanted for s in settings if s.as_bep_wanted is not None]
    if wanted:
        valve = round(state.belief.as_curve.valve_for(max(wanted)), 1)
        for s in settings:
            if s.as_bep_wanted is not None:
                s.as_valve = valve
    if deviate:
        plan.deviation = _deviate(recipe, settings, rng)

    # --- start: wafer in, rotation, cells to their first set points ----------------------------
    plan.say(0.0, f"{wafer} moved from MC_manip to GC", caller="Location Tab")
    plan.say(2.0, message_run_start(run_id, recipe.name, operator.name, wafer))
    plan.set("rpm", 10.0, recipe.rotation_rpm)
    first_use: dict[str, float] = {}
    for s in settings:
        for source, value in s.cells.items():
            first_use.setdefault(source, value)
    ramp = _wait_for(plan, state, 15.0, first_use)
    # degas the wafer meanwhile, staying below the temperature where it would need As
    _wait_for(
        plan,
        state,
        15.0,
        {"sub": round(state.belief.thermocouple_for(AS_PROTECT_SURFACE_C - 30), 1)},
    )
    t = 15.0 + ramp + operator.settle_s

    # --- flux check: BFM in front of the (cold) wafer, each cell, then As ----------------------
    plan.say(t, "Flux check start")
    bfm_in = t
    t += 20.0
    for source in [c for c in GROUP_III if c in first_use]:
        plan.shutter(t, source, True)
        plan.shutter(t + FLUX_READ_S, source, False)
        t += FLUX_READ_S + FLUX_GAP_S
    first_valve = next(s.as_valve for s in settings if s.as_valve is not None)
    plan.set("As", t, first_valve)
    plan.shutter(t, "As", True)
    t += AS_READ_S
    plan.bfm_intervals.append((bfm_in, t))
    plan.say(t, "Flux check end")
    plan.phases["flux_check"] = (bfm_in, t)

    # --- deoxidation under As --------------------------------------------------------------------
    deox_tc = _thermocouple_setpoint(state, operator, recipe.deox.substrate_c)
    t += 30.0
    t += _wait_for(plan, state, t, {"sub": deox_tc})
    plan.say(t, f"Deox start T={recipe.deox.substrate_c:.0f}C")
    deox_start = t
    t += recipe.deox.duration_s + operator.deox_extra_s
    plan.say(t, "Deox end")
    plan.phases["deox"] = (deox_start, t)
    t += _wait_for(plan, state, t, {"sub": settings[0].substrate_tc_c}) + 30.0

    # --- growth ---------------------------------------------------------------------------------
    plan.shutter(t, "Sub", True)
    growth_start = t
    steps = recipe.steps
    for i, (step, s) in enumerate(zip(steps, settings, strict=True), start=1):
        if isinstance(step, GrowthLayer):
            targets = {**{c: v for c, v in s.cells.items()}, "sub": s.substrate_tc_c}
            t += _wait_for(plan, state, t, targets)
            if s.as_valve is not None:
                plan.set("As", t, s.as_valve)
            opened = (*step.group_iii, *step.dopants)
            start, end = t, t + s.duration_s
            measure = tuple(step.measure) if step.measure is not None else ()
            composition, thickness = step.composition, step.thickness_nm
            material, label = step.material, step.label
            kind = "layer"
        else:
            # an interrupt: ramp the substrate, and already the cells of the next layer
            start = t
            upcoming = next(
                (settings[j] for j in range(i, len(steps)) if isinstance(steps[j], GrowthLayer)),
                None,
            )
            ahead = {
                c: v for c, v in (upcoming.cells.items() if upcoming else ()) if c in GROUP_III
            }
            needed = _wait_for(plan, state, t, {**s.cells, **ahead, "sub": s.substrate_tc_c})
            end = t + max(s.duration_s, needed)
            opened = tuple(step.dopants)
            measure, composition, thickness, material, label, kind = (
                (),
                None,
                None,
                None,
                step.label,
                "interrupt",
            )
        start, end = round(start, 3), round(end, 3)  # the resolution of every plan time
        plan_step = StepPlan(
            index=i,
            kind=kind,
            material=material,
            composition=composition,
            label=label,
            target_thickness_nm=thickness,
            start_s=start,
            end_s=end,
            cells={c: plan.setting(c) for c in CELL_NAMES},
            open_shutters=opened,
            substrate_target_c=s.substrate_target_c,
            substrate_tc_c=s.substrate_tc_c,
            as_valve=plan.setting("As"),
            measure=measure,
            predicted_rate_nm_s=s.predicted_rate_nm_s,
        )
        plan.say(start, message_layer_start(plan_step))
        for name in opened:
            plan.shutter(start, name, True)
        for name in opened:
            plan.shutter(end, name, False)
        plan.say(end, message_layer_end(i))
        plan.steps.append(plan_step)
        t = end
    plan.shutter(t, "Sub", False)
    plan.phases["growth"] = (growth_start, t)

    # --- cool down under As, unload ------------------------------------------------------------
    growth_end = t
    for name, cell in spec.cells.items():
        plan.set(name, t + 5, cell.idle_c)
        if cell.lip_offset_c is not None:
            plan.set(f"{name}.lip", t + 5, cell.idle_c + cell.lip_offset_c)
    tc_now = plan.setting("sub")
    plan.set("sub", t + 5, SUBSTRATE_IDLE_TC)
    ramp_rate = spec.substrate.ramp_c_per_s
    as_off_tc = state.belief.thermocouple_for(AS_PROTECT_SURFACE_C)
    t_as_off = t + 5 + max(0.0, tc_now - as_off_tc) / ramp_rate + 20.0
    plan.set("As", t_as_off, 0.0)
    plan.shutter(t_as_off, "As", False)
    t_end = t + 5 + max(0.0, tc_now - SUBSTRATE_UNLOAD_TC) / ramp_rate + 60.0
    plan.set("rpm", t_end - 30.0, 0.0)
    plan.say(t_end, message_run_end(run_id))
    plan.say(t_end + 1.0, f"{wafer} moved from GC to MC_manip", caller="Location Tab")
    plan.phases["cooldown"] = (growth_end, t_end)
    plan.phases["run"] = (0.0, t_end + 2.0)
    plan.duration_s = t_end + 2.0
    plan.shutter_events.sort(key=lambda e: e[0])
    plan.messages.sort(key=lambda m: m[0])
    return plan


def _deviate(
    recipe: Recipe, settings: list[_StepSettings], rng: np.random.Generator
) -> RecipeDeviation | None:
    """Change one growth step as operators slip: a set-point typo, a wrong time, the As valve."""
    layers = [i for i, s in enumerate(recipe.steps) if isinstance(s, GrowthLayer)]
    i = int(rng.choice(layers))
    s = settings[i]
    kind = rng.choice(["cell", "duration", "As"], p=[0.5, 0.3, 0.2])
    if kind == "cell":
        cell = str(rng.choice(sorted(c for c in s.cells if c in GROUP_III)))
        before = s.cells[cell]
        s.cells[cell] = round(before + float(rng.choice([-1, 1]) * rng.uniform(4, 12)), 1)
        return RecipeDeviation(i + 1, cell, before, s.cells[cell])
    if kind == "duration":
        before = s.duration_s
        s.duration_s = round(before * float(1 + rng.choice([-1, 1]) * rng.uniform(0.08, 0.25)), 1)
        return RecipeDeviation(i + 1, "duration", before, s.duration_s)
    before = s.as_valve if s.as_valve is not None else 0.0
    s.as_valve = round(
        float(np.clip(before * (1 + rng.choice([-1, 1]) * rng.uniform(0.15, 0.3)), 5, 100)), 1
    )
    return RecipeDeviation(i + 1, "As", before, s.as_valve)


def monolayer_time_s(rate_nm_s: float, material: str = "GaAs", x: float = 0.0) -> float:
    return float(monolayer_thickness_nm(material, x)) / rate_nm_s
