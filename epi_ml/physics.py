"""Materials constants and the physics formulas of III-V MBE, shared by the whole product.

The twin, the features, the models and the recipe designer all use these functions, so a number
such as the GaAs monolayer thickness exists once. Units: temperatures in kelvin inside the
formulas (functions that take °C say so in their argument name), thickness in nm, pressure (BEP)
in Torr, fluxes in monolayers per second (ML/s) of the group-III sublattice, compositions as
fractions. Sources of every constant are in docs/twin.md ("Physics"):

- Lattice constants, thermal expansion, elastic constants, band gaps, Varshni parameters and bowing:
  I. Vurgaftman, J. R. Meyer, L. R. Ram-Mohan, J. Appl. Phys. 89, 5815 (2001).
- Arrhenius cell flux and the real Ga/In/Al calibration numbers: DESIGN.md and
  research/domain.md §3.1-3.2.
- In desorption above ~545 °C: research/domain.md §3.6 (onset from EPFL graphsearch 110784; the
  activation energy is an assumption, marked so in docs/twin.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

# --------------------------------------------------------------------------------------------
# Constants
K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K (CODATA 2018)
HC_EV_NM = 1239.84198  # h·c in eV·nm: wavelength (nm) = HC_EV_NM / energy (eV)
AVOGADRO = 6.02214076e23
ZERO_C_IN_K = 273.15

Binary = Literal["GaAs", "AlAs", "InAs"]
Material = Literal["GaAs", "AlAs", "InAs", "AlGaAs", "InGaAs"]
MATERIALS: tuple[str, ...] = ("GaAs", "AlAs", "InAs", "AlGaAs", "InGaAs")
TERNARIES: dict[str, tuple[Binary, Binary]] = {
    # ternary -> (binary at x = 0, binary at x = 1); x is the fraction of the second group-III atom
    "AlGaAs": ("GaAs", "AlAs"),  # Al(x)Ga(1-x)As
    "InGaAs": ("GaAs", "InAs"),  # In(x)Ga(1-x)As
}
# group-III elements a material is grown from; the first is the x = 0 element of a ternary
GROUP_III_OF: dict[str, tuple[str, ...]] = {
    "GaAs": ("Ga",),
    "AlAs": ("Al",),
    "InAs": ("In",),
    "AlGaAs": ("Ga", "Al"),
    "InGaAs": ("Ga", "In"),
}
ATOMIC_MASS_G_MOL = {
    "Ga": 69.723,
    "Al": 26.982,
    "In": 114.818,
    "As": 74.922,
    "Si": 28.086,
    "Be": 9.012,
}

# Lattice constants at 300 K, nm (Vurgaftman 2001, table I-III).
LATTICE_300K_NM: dict[str, float] = {"GaAs": 0.565325, "AlAs": 0.56611, "InAs": 0.60583}
# Thermal expansion da/dT, nm/K (Vurgaftman 2001: 3.88e-5, 2.90e-5, 2.74e-5 Å/K).
LATTICE_EXPANSION_NM_PER_K: dict[str, float] = {"GaAs": 3.88e-6, "AlAs": 2.90e-6, "InAs": 2.74e-6}
# Elastic constants C11, C12 in GPa (Vurgaftman 2001).
ELASTIC_GPA: dict[str, tuple[float, float]] = {
    "GaAs": (1221.0, 566.0),
    "AlAs": (1250.0, 534.0),
    "InAs": (832.9, 452.6),
}


@dataclass(frozen=True)
class Varshni:
    """Band gap Eg(T) = eg0_ev - alpha·T²/(T + beta), T in K."""

    eg0_ev: float
    alpha_ev_per_k: float
    beta_k: float

    def gap_ev(self, temperature_k: ArrayLike) -> NDArray[np.float64]:
        t = np.asarray(temperature_k, dtype=float)
        return self.eg0_ev - self.alpha_ev_per_k * t**2 / (t + self.beta_k)


# Γ and X band-gap Varshni parameters (Vurgaftman 2001, table I-III).
VARSHNI_GAMMA: dict[str, Varshni] = {
    "GaAs": Varshni(1.519, 5.405e-4, 204.0),
    "AlAs": Varshni(3.099, 8.85e-4, 530.0),
    "InAs": Varshni(0.417, 2.76e-4, 93.0),
}
VARSHNI_X: dict[str, Varshni] = {
    "GaAs": Varshni(1.981, 4.60e-4, 204.0),
    "AlAs": Varshni(2.24, 7.0e-4, 530.0),
}


def _bowing_gamma(material: str, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Γ-gap bowing parameter C (eV) of a ternary (Vurgaftman 2001)."""
    if material == "AlGaAs":
        return -0.127 + 1.310 * x
    if material == "InGaAs":
        return np.full_like(x, 0.477)
    raise ValueError(f"no bowing parameter for {material!r}")


BOWING_X = {"AlGaAs": 0.055}

GAAS_MONOLAYER_NM = LATTICE_300K_NM["GaAs"] / 2  # 0.28266 nm: one (001) monolayer of GaAs
# 1 ML/s of GaAs in µm/h: 0.28266 nm/s · 3600 s/h / 1000 nm/µm = 1.0176 µm/h
ML_PER_S_IN_UM_PER_H = GAAS_MONOLAYER_NM * 3.6


# --------------------------------------------------------------------------------------------
# Temperatures
def c_to_k(temperature_c: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(temperature_c, dtype=float) + ZERO_C_IN_K


def k_to_c(temperature_k: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(temperature_k, dtype=float) - ZERO_C_IN_K


# --------------------------------------------------------------------------------------------
# Crystal geometry
def _check_material(material: str) -> None:
    if material not in MATERIALS:
        raise ValueError(f"unknown material {material!r}; known: {', '.join(MATERIALS)}")


def _interpolate(material: str, x: ArrayLike, table: dict[str, float]) -> NDArray[np.float64]:
    """Vegard's law for a ternary, the table value for a binary."""
    _check_material(material)
    xs = np.asarray(x, dtype=float)
    if material in TERNARIES:
        a, b = TERNARIES[material]
        return (1 - xs) * table[a] + xs * table[b]
    return np.full_like(xs, table[material])


def lattice_constant_nm(
    material: str, x: ArrayLike = 0.0, temperature_k: ArrayLike = 300.0
) -> NDArray[np.float64]:
    """Relaxed cubic lattice constant (Vegard's law), with linear thermal expansion from 300 K."""
    a300 = _interpolate(material, x, LATTICE_300K_NM)
    expansion = _interpolate(material, x, LATTICE_EXPANSION_NM_PER_K)
    return a300 + expansion * (np.asarray(temperature_k, dtype=float) - 300.0)


def perpendicular_lattice_nm(
    material: str, x: ArrayLike = 0.0, substrate: str = "GaAs"
) -> NDArray[np.float64]:
    """Growth-direction lattice constant of a layer strained to the substrate in plane (001).

    Tetragonal distortion: a_perp = a_sub + (a_relaxed - a_sub)·(1 + 2·C12/C11).
    """
    a_rel = lattice_constant_nm(material, x)
    c11 = _interpolate(material, x, {k: v[0] for k, v in ELASTIC_GPA.items()})
    c12 = _interpolate(material, x, {k: v[1] for k, v in ELASTIC_GPA.items()})
    a_sub = LATTICE_300K_NM[substrate]
    return a_sub + (a_rel - a_sub) * (1 + 2 * c12 / c11)


def monolayer_thickness_nm(
    material: str = "GaAs", x: ArrayLike = 0.0, strained_on: str | None = "GaAs"
) -> NDArray[np.float64]:
    """Thickness of one (001) monolayer: a/2, with a the strained perpendicular lattice constant
    when the layer is pseudomorphic on `strained_on` (None: relaxed)."""
    if strained_on is None:
        return lattice_constant_nm(material, x) / 2
    return perpendicular_lattice_nm(material, x, strained_on) / 2


def group_iii_sites_per_cm2(in_plane_lattice_nm: float = LATTICE_300K_NM["GaAs"]) -> float:
    """Group-III atoms in one (001) monolayer: 2/a² (6.26e14 cm⁻² for GaAs)."""
    a_cm = in_plane_lattice_nm * 1e-7
    return 2.0 / a_cm**2


def growth_rate_nm_s(
    ml_per_s: ArrayLike, material: str = "GaAs", x: ArrayLike = 0.0
) -> NDArray[np.float64]:
    """Group-III flux (ML/s) -> growth rate (nm/s) of a layer pseudomorphic on GaAs."""
    return np.asarray(ml_per_s, dtype=float) * monolayer_thickness_nm(material, x)


def ml_per_s_to_um_per_h(
    ml_per_s: ArrayLike, material: str = "GaAs", x: ArrayLike = 0.0
) -> NDArray[np.float64]:
    """1 ML/s of GaAs = 1.018 µm/h."""
    return growth_rate_nm_s(ml_per_s, material, x) * 3.6


def um_per_h_to_ml_per_s(
    um_per_h: ArrayLike, material: str = "GaAs", x: ArrayLike = 0.0
) -> NDArray[np.float64]:
    return np.asarray(um_per_h, dtype=float) / 3.6 / monolayer_thickness_nm(material, x)


def composition(flux_x: ArrayLike, flux_ga: ArrayLike) -> NDArray[np.float64]:
    """x of Al(x)Ga(1-x)As or In(x)Ga(1-x)As from group-III fluxes (sticking 1): F_x/(F_x+F_Ga)."""
    fx = np.asarray(flux_x, dtype=float)
    total = fx + np.asarray(flux_ga, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, fx / np.where(total > 0, total, 1.0), 0.0)


def group_iii_fluxes(material: str, ml_per_s: float, x: float = 0.0) -> dict[str, float]:
    """The inverse of `composition`: a total group-III rate (ML/s) split over the material's cells,
    (1 - x) to Ga and x to Al or In for a ternary, all of it to the one cell of a binary."""
    _check_material(material)
    elements = GROUP_III_OF[material]
    shares = (1.0 - x, x) if len(elements) == 2 else (1.0,)
    return {cell: float(ml_per_s) * share for cell, share in zip(elements, shares, strict=True)}


# In desorption: negligible below ~545 °C substrate, steeply rising above (domain.md §3.6).
# Loss = INDIUM_LOSS_AT_545C · exp(-Ea/k·(1/T - 1/T545)), capped at 1. Ea is an assumption.
INDIUM_LOSS_ONSET_C = 545.0
INDIUM_LOSS_AT_ONSET = 0.03
INDIUM_DESORPTION_EV = 2.8


def indium_incorporation(substrate_c: ArrayLike) -> NDArray[np.float64]:
    """Fraction of the arriving In that stays in the crystal at a substrate temperature (°C)."""
    t = c_to_k(substrate_c)
    t_onset = INDIUM_LOSS_ONSET_C + ZERO_C_IN_K
    loss = INDIUM_LOSS_AT_ONSET * np.exp(-INDIUM_DESORPTION_EV / K_B_EV * (1 / t - 1 / t_onset))
    return 1.0 - np.minimum(loss, 1.0)


# --------------------------------------------------------------------------------------------
# Band gaps and photoluminescence
def band_gap_ev(
    material: str,
    x: ArrayLike = 0.0,
    temperature_k: ArrayLike = 300.0,
    valley: Literal["gamma", "X", "lowest"] = "gamma",
) -> NDArray[np.float64]:
    """Unstrained band gap (eV): Varshni per binary; for a ternary
    Eg = (1-x)·Eg_A + x·Eg_B - x(1-x)·C.

    `lowest` is min(Γ, X) for GaAs/AlAs/AlGaAs (AlGaAs turns indirect near x ≈ 0.45).
    Strain and quantum confinement are not included.
    """
    _check_material(material)
    if valley == "lowest":
        gamma = band_gap_ev(material, x, temperature_k, "gamma")
        if material in ("GaAs", "AlAs", "AlGaAs"):
            return np.minimum(gamma, band_gap_ev(material, x, temperature_k, "X"))
        return gamma
    table = VARSHNI_GAMMA if valley == "gamma" else VARSHNI_X
    xs = np.asarray(x, dtype=float)
    if material in TERNARIES:
        a, b = TERNARIES[material]
        if a not in table or b not in table:
            raise ValueError(f"no {valley} gap for {material}")
        bowing = _bowing_gamma(material, xs) if valley == "gamma" else BOWING_X[material]
        return (
            (1 - xs) * table[a].gap_ev(temperature_k)
            + xs * table[b].gap_ev(temperature_k)
            - xs * (1 - xs) * bowing
        )
    if material not in table:
        raise ValueError(f"no {valley} gap for {material}")
    return table[material].gap_ev(temperature_k) + 0 * xs


def is_direct_gap(
    material: str, x: ArrayLike = 0.0, temperature_k: ArrayLike = 300.0
) -> NDArray[np.bool_]:
    return (
        band_gap_ev(material, x, temperature_k, "gamma")
        <= band_gap_ev(material, x, temperature_k, "lowest") + 1e-12
    )


def wavelength_nm(energy_ev: ArrayLike) -> NDArray[np.float64]:
    return HC_EV_NM / np.asarray(energy_ev, dtype=float)


def pl_peak_nm(
    material: str, x: ArrayLike = 0.0, temperature_k: ArrayLike = 300.0
) -> NDArray[np.float64]:
    """Photoluminescence peak wavelength taken at the Γ band gap (GaAs at 300 K: 871.6 nm)."""
    return wavelength_nm(band_gap_ev(material, x, temperature_k, "gamma"))


# --------------------------------------------------------------------------------------------
# Effusion-cell flux: ln(BEP) = a - E/(k·T)
def arrhenius_bep(
    temperature_c: ArrayLike, ln_prefactor: float, activation_ev: float
) -> NDArray[np.float64]:
    """Beam-equivalent pressure (Torr) of a cell at a temperature (°C)."""
    return np.exp(ln_prefactor - activation_ev / (K_B_EV * c_to_k(temperature_c)))


def arrhenius_temperature_c(
    bep_torr: ArrayLike, ln_prefactor: float, activation_ev: float
) -> NDArray[np.float64]:
    """Cell temperature (°C) that gives a BEP: the inverse of `arrhenius_bep`."""
    return k_to_c(
        activation_ev / (K_B_EV * (ln_prefactor - np.log(np.asarray(bep_torr, dtype=float))))
    )


def ln_prefactor_from_anchor(bep_torr: float, temperature_c: float, activation_ev: float) -> float:
    """The `a` of ln(BEP) = a - E/kT that puts the curve through one measured point."""
    return float(np.log(bep_torr) + activation_ev / (K_B_EV * (temperature_c + ZERO_C_IN_K)))


@dataclass(frozen=True)
class ArrheniusFit:
    """ln(BEP) = ln_prefactor - activation_ev/(k·T); EPIC's Fitting.txt writes it as Coeff=a,b with
    ln(BEP) = a + b/T, so b = -E/k."""

    ln_prefactor: float
    activation_ev: float
    r2: float
    n_points: int

    @property
    def epic_coefficients(self) -> tuple[float, float]:
        return self.ln_prefactor, -self.activation_ev / K_B_EV

    def bep(self, temperature_c: ArrayLike) -> NDArray[np.float64]:
        return arrhenius_bep(temperature_c, self.ln_prefactor, self.activation_ev)

    def temperature_c(self, bep_torr: ArrayLike) -> NDArray[np.float64]:
        return arrhenius_temperature_c(bep_torr, self.ln_prefactor, self.activation_ev)

    @classmethod
    def from_epic(cls, a: float, b: float) -> ArrheniusFit:
        return cls(ln_prefactor=a, activation_ev=-b * K_B_EV, r2=float("nan"), n_points=0)


def fit_arrhenius(temperature_c: ArrayLike, bep_torr: ArrayLike) -> ArrheniusFit:
    """Least-squares fit of ln(BEP) against 1/T (T from °C). Points with BEP <= 0 are ignored."""
    t = np.asarray(temperature_c, dtype=float)
    p = np.asarray(bep_torr, dtype=float)
    ok = np.isfinite(t) & np.isfinite(p) & (p > 0)
    if ok.sum() < 2:
        raise ValueError("an Arrhenius fit needs at least two points with a positive BEP")
    inv_t = 1.0 / c_to_k(t[ok])
    y = np.log(p[ok])
    slope, intercept = np.polyfit(inv_t, y, 1)
    residual = y - (intercept + slope * inv_t)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 1.0
    return ArrheniusFit(
        ln_prefactor=float(intercept),
        activation_ev=float(-slope * K_B_EV),
        r2=r2,
        n_points=int(ok.sum()),
    )
