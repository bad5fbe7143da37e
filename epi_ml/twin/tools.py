"""What makes one MBE tool different from another: its cells, gauges, heaters, logger and people.

`make_tool(name, index, seed)` draws a tool around the nominal values below; tool 0 is the
nominal tool, the others differ as real tools do (activation energies by a few %, BEP anchors by
tens of %, PID tuning, thermocouple offsets, gauge noise, logger timing). The nominal numbers come
from DESIGN.md and research/domain.md; each is cited in docs/twin.md ("Parameters").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from epi_ml.physics import ln_prefactor_from_anchor

GROUP_III = ("Ga", "Al", "In")
DOPANTS = ("Si", "Be")
CELL_NAMES = GROUP_III + DOPANTS
OPERATOR_NAMES = ("alice", "bruno", "chen", "dana", "emil", "farah", "goran", "hana")


@dataclass(frozen=True)
class HeaterSpec:
    """A PID-controlled heater seen from outside: ramped working set point, second-order closed
    loop (overshoot), output power from conduction + radiation losses and the heat to ramp."""

    ramp_c_per_s: float
    period_s: float  # natural period of the closed loop
    damping: float  # ζ < 1 gives overshoot after a ramp
    power_linear: float  # % per K above 300 K (conduction)
    power_radiative: float  # % per K⁴ above 300 K⁴ (radiation)
    power_per_c_per_s: float  # extra % while heating at 1 °C/s (heat capacity)
    tc_noise_c: float  # thermocouple noise, rms
    power_noise: float  # output noise, % rms


@dataclass(frozen=True)
class CellSpec:
    name: str
    kind: str  # group_iii | dopant
    activation_ev: float
    ln_prefactor: float  # ln(BEP/Torr) = a - E/kT at a full charge
    flux_per_torr: (
        float  # group III: ML/s at the wafer per Torr of BEP; dopant: atoms/cm²/s per Torr
    )
    beam_efficiency: float  # fraction of evaporated atoms that reach the wafer
    charge_g: float  # material loaded at a refill
    depletion_sensitivity: float  # fractional flux loss at fixed T per fraction of the charge used
    idle_c: float  # stand-by temperature between runs
    heater: HeaterSpec
    lip_offset_c: float | None = None  # hot-lip set point above the base (dual-heater cells)
    lip_heater: HeaterSpec | None = None
    lip_coupling: float = 0.02  # how much of the lip-base difference the melt surface sees
    shutter_overshoot: float = 0.04  # flux excess just after the shutter opens
    shutter_tau_s: float = 20.0  # decay of that excess
    shutter_dip_c: float = 0.5  # thermocouple dip when the shutter opens

    def bep(self, temperature_c: np.ndarray | float, flux_factor: float = 1.0) -> np.ndarray:
        """True BEP (Torr) at a base temperature, with the lip at its nominal offset."""
        t_k = np.asarray(temperature_c, dtype=float) + 273.15
        return flux_factor * np.exp(self.ln_prefactor - self.activation_ev / (8.617333262e-5 * t_k))


@dataclass(frozen=True)
class Operator:
    """Day-to-day habits of the person running the tool."""

    name: str
    settle_s: float  # how long they let cells settle after a ramp
    as_bias: float  # multiplies the V/III they dial in
    substrate_bias_c: float  # their personal offset when setting the substrate thermocouple
    deox_extra_s: float  # extra deox time they give
    transfer_gap_s: float  # time between two runs (unload, load, pump)
    slip_rate: float  # probability of a recipe deviation (typo, wrong time) per run


@dataclass(frozen=True)
class ToolSpec:
    name: str
    index: int
    cells: dict[str, CellSpec]
    substrate: HeaterSpec
    # surface = thermocouple - (tc_offset_c + tc_offset_per_c·(thermocouple - 200))
    tc_offset_c: float
    tc_offset_per_c: float
    pyro_bias_c: float
    pyro_noise_c: float
    pyro_wobble_c: float  # wafer wobble seen by the pyrometer at the rotation frequency
    pyro_min_c: float  # below its range the pyrometer shows this value
    # As valved cracker: BEP vs valve (%) at its bulk temperature, log-interpolated
    as_valve_pct: tuple[float, ...]
    as_valve_bep: tuple[float, ...]
    as_valve_speed_pct_s: float
    as_bep_tau_s: float
    as_flux_per_torr: float  # As-limited growth rate (ML/s) per Torr of As BEP
    as_bulk_c: float
    as_cracker_c: float
    # vacuum
    base_pressure_torr: float
    chamber_as_coupling: float  # chamber pressure per Torr of As BEP
    chamber_noise: float
    bep_gauge_noise: float
    bep_gauge_background: float  # gauge reading without beam / chamber pressure
    main_pressure_torr: float
    # RHEED
    rheed_intensity: float
    rheed_damping_ml: float  # oscillation decay (monolayers) at 580 °C
    rheed_recovery_s: float  # recovery after the shutter closes, at 580 °C
    rheed_noise: float
    rheed_hz: float
    # logger
    log_period_s: float
    log_gap_probability: float  # probability that a logger pass is skipped (2 s step)
    log_drop_probability: float  # per channel, per pass
    day_flux_sigma: float  # day-to-day flux variation (thermal environment)
    calibration_interval_days: int
    operators: tuple[Operator, ...] = field(default_factory=tuple)


NOMINAL_AS_VALVE = (
    # valve %, BEP Torr: the real curve in research/domain.md §2.2 (5..40 %), saturating above
    (0.0, 5.0e-11),
    (5.0, 7.8e-11),
    (10.0, 1.72e-7),
    (20.0, 4.16e-7),
    (30.0, 1.53e-6),
    (40.0, 3.45e-6),
    (50.0, 4.9e-6),
    (60.0, 6.3e-6),
    (70.0, 7.5e-6),
    (80.0, 8.5e-6),
    (90.0, 9.3e-6),
    (100.0, 1.0e-5),
)


def _heater(
    ramp: float,
    period: float,
    damping: float,
    lin: float,
    rad: float,
    cap: float,
    noise: float = 0.07,
    pnoise: float = 0.15,
) -> HeaterSpec:
    return HeaterSpec(ramp, period, damping, lin, rad, cap, noise, pnoise)


def nominal_cells() -> dict[str, CellSpec]:
    """Nominal cells, calibrated to the real numbers of DESIGN.md (BEP anchors, activation
    energies)."""
    # power: 6 % at 300 °C and ~45 % at 1000 °C for a Ga cell (the real MBE8 stand-by reads 6 %)
    ga_heater = _heater(0.33, 70.0, 0.8, 0.0182, 1.04e-11, 22.0)
    lip_heater = _heater(0.4, 50.0, 0.8, 0.015, 0.9e-11, 12.0, noise=0.08)
    return {
        "Ga": CellSpec(
            "Ga",
            "group_iii",
            2.65,
            ln_prefactor_from_anchor(1.05e-7, 940.0, 2.65),
            2.11e6,
            0.035,
            250.0,
            0.15,
            800.0,
            ga_heater,
            lip_offset_c=80.0,
            lip_heater=lip_heater,
            shutter_overshoot=0.04,
            shutter_tau_s=20.0,
            shutter_dip_c=0.5,
        ),
        "Al": CellSpec(
            "Al",
            "group_iii",
            2.25,
            ln_prefactor_from_anchor(1.4e-7, 1120.0, 2.25),
            5.5e6,
            0.07,
            100.0,
            0.12,
            900.0,
            _heater(0.33, 90.0, 0.8, 0.016, 0.95e-11, 26.0),
            shutter_overshoot=0.03,
            shutter_tau_s=25.0,
            shutter_dip_c=0.6,
        ),
        "In": CellSpec(
            "In",
            "group_iii",
            2.21,
            ln_prefactor_from_anchor(1.05e-7, 800.0, 2.21),
            1.15e6,
            0.035,
            100.0,
            0.15,
            600.0,
            _heater(0.33, 60.0, 0.8, 0.02, 1.1e-11, 18.0),
            lip_offset_c=100.0,
            lip_heater=lip_heater,
            shutter_overshoot=0.05,
            shutter_tau_s=15.0,
            shutter_dip_c=0.4,
        ),
        # Dopants: BEP far below the gauge; "BEP" is a scale so that 1e18 cm⁻³ at 1 µm/h comes at
        # ~1200 °C (Si) and ~850 °C (Be). flux_per_torr converts it to atoms/cm²/s.
        "Si": CellSpec(
            "Si",
            "dopant",
            4.6,
            ln_prefactor_from_anchor(1.0e-10, 1200.0, 4.6),
            2.8e23,
            0.035,
            10.0,
            0.05,
            1000.0,
            _heater(0.33, 60.0, 0.8, 0.016, 0.95e-11, 15.0),
            shutter_overshoot=0.0,
            shutter_dip_c=0.2,
        ),
        "Be": CellSpec(
            "Be",
            "dopant",
            3.2,
            ln_prefactor_from_anchor(1.0e-10, 850.0, 3.2),
            2.8e23,
            0.035,
            5.0,
            0.05,
            700.0,
            _heater(0.33, 60.0, 0.8, 0.02, 1.1e-11, 15.0),
            shutter_overshoot=0.0,
            shutter_dip_c=0.2,
        ),
    }


def _operators(rng: np.random.Generator, count: int) -> tuple[Operator, ...]:
    names = rng.choice(OPERATOR_NAMES, size=count, replace=False)
    return tuple(
        Operator(
            name=str(name),
            settle_s=float(rng.uniform(90, 300)),
            as_bias=float(rng.uniform(0.9, 1.15)),
            substrate_bias_c=float(rng.normal(0, 4)),
            deox_extra_s=float(rng.uniform(0, 300)),
            transfer_gap_s=float(rng.uniform(1200, 3600)),
            slip_rate=float(rng.uniform(0.01, 0.06)),
        )
        for name in names
    )


def make_tool(name: str, index: int, seed: int) -> ToolSpec:
    """Tool `index` of a campaign: tool 0 is nominal, the others are drawn around it."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7, index]))
    spread = 0.0 if index == 0 else 1.0
    cells = {}
    for cell_name, cell in nominal_cells().items():
        energy = cell.activation_ev * (1 + spread * rng.normal(0, 0.02))
        # keep the BEP anchor, then move it: tools differ in geometry and gauge sensitivity
        anchor_t = {"Ga": 940.0, "Al": 1120.0, "In": 800.0, "Si": 1200.0, "Be": 850.0}[cell_name]
        anchor_bep = float(
            np.exp(cell.ln_prefactor - cell.activation_ev / (8.617333262e-5 * (anchor_t + 273.15)))
        )
        anchor_bep *= float(np.exp(spread * rng.normal(0, 0.15)))
        heater = replace(
            cell.heater,
            period_s=cell.heater.period_s * float(np.exp(spread * rng.normal(0, 0.15))),
            damping=float(np.clip(cell.heater.damping + spread * rng.normal(0, 0.06), 0.6, 0.95)),
            tc_noise_c=float(rng.uniform(0.05, 0.1)),
            power_linear=cell.heater.power_linear * float(np.exp(spread * rng.normal(0, 0.08))),
        )
        cells[cell_name] = replace(
            cell,
            activation_ev=float(energy),
            ln_prefactor=ln_prefactor_from_anchor(anchor_bep, anchor_t, float(energy)),
            flux_per_torr=cell.flux_per_torr * float(np.exp(spread * rng.normal(0, 0.08))),
            depletion_sensitivity=cell.depletion_sensitivity
            * float(np.exp(spread * rng.normal(0, 0.2))),
            charge_g=cell.charge_g * float(rng.choice([1.0, 1.25, 1.5]) if spread else 1.0),
            heater=heater,
            shutter_overshoot=cell.shutter_overshoot * float(np.exp(spread * rng.normal(0, 0.3))),
        )
    as_scale = float(np.exp(spread * rng.normal(0, 0.2)))
    return ToolSpec(
        name=name,
        index=index,
        cells=cells,
        substrate=_heater(
            0.75,
            80.0 * float(np.exp(spread * rng.normal(0, 0.1))),
            0.8,
            0.025,
            2.2e-11,
            20.0,
            noise=0.1,
            pnoise=0.2,
        ),
        tc_offset_c=float(rng.uniform(5, 25) if spread else 15.0),
        tc_offset_per_c=float(rng.uniform(0.06, 0.12) if spread else 0.09),
        pyro_bias_c=float(rng.normal(0, 3) if spread else 0.0),
        pyro_noise_c=float(rng.uniform(0.2, 0.5)),
        pyro_wobble_c=float(rng.uniform(0.3, 1.5)),
        pyro_min_c=float(rng.choice([250.0, 275.0, 300.0])),
        as_valve_pct=tuple(p for p, _ in NOMINAL_AS_VALVE),
        as_valve_bep=tuple(
            b * as_scale * (1 + spread * 0.05 * rng.normal()) for _, b in NOMINAL_AS_VALVE
        ),
        as_valve_speed_pct_s=float(rng.uniform(3, 8)),
        as_bep_tau_s=float(rng.uniform(8, 20)),
        as_flux_per_torr=8.4e5,
        as_bulk_c=float(rng.uniform(380, 410)),
        as_cracker_c=float(rng.choice([850.0, 900.0, 950.0])),
        base_pressure_torr=float(10 ** rng.uniform(-9.7, -9.0)),
        chamber_as_coupling=float(rng.uniform(0.04, 0.12)),
        chamber_noise=float(rng.uniform(0.01, 0.03)),
        bep_gauge_noise=0.01,
        bep_gauge_background=float(rng.uniform(1.1, 1.6)),
        main_pressure_torr=float(10 ** rng.uniform(-9.3, -8.7)),
        rheed_intensity=float(rng.uniform(800, 2000)),
        rheed_damping_ml=float(rng.uniform(12, 30)),
        rheed_recovery_s=float(rng.uniform(8, 25)),
        rheed_noise=float(rng.uniform(0.01, 0.025)),
        rheed_hz=5.0,
        log_period_s=1.0,
        log_gap_probability=float([0.3, 0.15, 0.05, 0.2][index % 4]),
        log_drop_probability=float(rng.uniform(0.005, 0.02)),
        day_flux_sigma=float(rng.uniform(0.004, 0.01)),
        calibration_interval_days=int(rng.choice([3, 4])),
        operators=_operators(rng, 3),
    )


def tool_names(count: int) -> list[str]:
    return [f"MBE{i + 1}" for i in range(count)]
