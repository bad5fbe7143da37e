"""One cell's flux calibration: an Arrhenius fit from a calibration scan or from EPIC's Fitting.txt,
and how the flux moved between two calibrations (cell depletion).

An effusion cell's beam-equivalent pressure follows the Clausius-Clapeyron / Arrhenius law
ln(BEP) = a - E/(k·T) (DESIGN.md: E ≈ 2.65 eV Ga, 2.2 eV In, 2.2-2.3 eV Al, about 2 %/°C). A scan
steps the cell temperature and reads the beam flux monitor (BFM.P) and the chamber background
(MBE.P); the fit is made on the net BEP = BFM.P - MBE.P, the beam's own pressure. EPIC keeps the
same law as `Coeff=a,b` with ln(BEP) = a + b/T, so E = -b·k, and its `BEPtoFlux` factor turns a
BEP into a growth rate (ML/s per Torr, from RHEED oscillations).

Cells deplete: at a fixed temperature the BEP falls as the melt recedes, so the set point that
held a flux has to rise. `flux_drift` is the relative BEP change between two calibrations at an
operating temperature, `temperature_to_hold` the cell temperature change that brings the later
curve back to the earlier flux, `drift_alerts` the typed findings when the drift between a cell's
last two calibrations exceeds a tolerance. Formulas and numbers: docs/calibration.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from epi_ml.findings import Finding, Severity
from epi_ml.physics import (
    K_B_EV,
    ArrheniusFit,
    arrhenius_bep,
    arrhenius_temperature_c,
    c_to_k,
    fit_arrhenius,
)
from epi_ml.readers.calibration import TEMPERATURE, VALVED_SOURCES, CalibrationTable
from epi_ml.readers.epic_fitting import ARRHENIUS_FIT, EpicFitting

Source = Literal["scan", "fitting"]
SCAN, FITTING = "scan", "fitting"
MIN_POINTS = 2  # a line needs two points; two give no check of the fit (a WARNING says so)
# A point is an outlier when it is off the line through the other points by more than
# OUTLIER_MIN_LN (ln units, ~5 % of BEP) and by more than OUTLIER_SIGMAS standard errors of that
# line's prediction there: the scatter of the others (floored at the ~2 % repeat scatter of BEP
# readings, DESIGN.md) times sqrt(1 + leverage), so end points, where the line through the others
# is extrapolated, are not flagged for ordinary noise.
OUTLIER_MIN_LN = 0.05
OUTLIER_SIGMAS = 4.0
NOISE_FLOOR_LN = 0.02
DROP_OUTLIER_FROM = 5  # with this many points or more, one outlier is left out of the fit
POOR_FIT_RMSE_LN = 0.05  # residual rms above 5 % of BEP: the scan does not follow one line
POOR_FIT_R2 = 0.99
PLAUSIBLE_EV = (0.5, 8.0)  # group-III cells 2-3 eV, dopants up to ~5 eV
TYPICAL_BEP_TORR = 1e-7  # a group-III growth BEP (DESIGN.md: Ga 4.4e-8..1.6e-7 Torr)
NO_RATE_FACTOR = 1.0  # EPIC writes BEPtoFlux=1 for sources without a rate calibration (dopants)


@dataclass(frozen=True)
class CellCalibration:
    """ln(BEP/Torr) = ln_prefactor - activation_ev/(k·T) for one cell of one tool, from `taken_at`.

    `bep_to_rate` is the growth rate per BEP (ML/s per Torr of the binary arsenide), EPIC's
    BEPtoFlux, or None when unknown (dopants, a scan without a Fitting.txt beside it). `r2`,
    `rmse_ln` (residual rms of ln BEP), `n_points` and the scan range `t_min_c`..`t_max_c` describe
    a scan fit; a Fitting.txt calibration has nan / 0 / None there.
    """

    tool: str | None
    cell: str
    taken_at: datetime | None
    source: Source
    activation_ev: float
    ln_prefactor: float
    r2: float = math.nan
    rmse_ln: float = math.nan
    n_points: int = 0
    t_min_c: float | None = None
    t_max_c: float | None = None
    bep_to_rate: float | None = None
    file: str | None = None
    sha256: str | None = None

    @property
    def fit(self) -> ArrheniusFit:
        return ArrheniusFit(self.ln_prefactor, self.activation_ev, self.r2, self.n_points)

    @property
    def epic_coefficients(self) -> tuple[float, float]:
        """(a, b) of EPIC's ln(BEP) = a + b/T."""
        return self.fit.epic_coefficients

    @property
    def mid_range_c(self) -> float:
        """The middle of the scan range, or (no range known) the temperature of a typical growth
        BEP (1e-7 Torr): where drift is compared by default."""
        if self.t_min_c is not None and self.t_max_c is not None:
            return (self.t_min_c + self.t_max_c) / 2
        return float(self.temperature_for(TYPICAL_BEP_TORR))

    def bep(self, temperature_c: ArrayLike) -> Any:
        """BEP (Torr) at a cell temperature (°C); a float for a number, an array for an array."""
        return _scalar(arrhenius_bep(temperature_c, self.ln_prefactor, self.activation_ev))

    def temperature_for(self, bep_torr: ArrayLike) -> Any:
        """Cell temperature (°C) that gives a BEP."""
        return _scalar(arrhenius_temperature_c(bep_torr, self.ln_prefactor, self.activation_ev))

    def rate_ml_s(self, temperature_c: ArrayLike) -> Any:
        """Group-III flux at the wafer (ML/s) at a cell temperature; None without `bep_to_rate`."""
        if self.bep_to_rate is None:
            return None
        return _scalar(self.bep_to_rate * np.asarray(self.bep(temperature_c)))

    def temperature_for_rate(self, ml_per_s: ArrayLike) -> Any:
        """Cell temperature (°C) for a flux (ML/s). ValueError without `bep_to_rate`."""
        if self.bep_to_rate is None:
            raise ValueError(f"{self._name()}: no BEP-to-rate factor (BEPtoFlux) is known")
        return self.temperature_for(np.asarray(ml_per_s, dtype=float) / self.bep_to_rate)

    def percent_per_c(self, temperature_c: float) -> float:
        """d ln(BEP)/dT in % per °C: E/(k·T²)·100 (about 2 %/°C for Ga near 950 °C)."""
        return float(100 * self.activation_ev / (K_B_EV * c_to_k(temperature_c) ** 2))

    def with_rate(self, bep_to_rate: float | None) -> CellCalibration:
        return replace(self, bep_to_rate=bep_to_rate)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["taken_at"] = self.taken_at.isoformat() if self.taken_at else None
        for key in ("r2", "rmse_ln"):
            d[key] = None if math.isnan(d[key]) else d[key]
        d["epic_coefficients"] = list(self.epic_coefficients)
        return d

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CellCalibration:
        """From a row of `calibration_history` (nulls back to nan / None)."""

        def number(key: str) -> float:
            value = row.get(key)
            return math.nan if value is None else float(value)

        return cls(
            tool=row.get("tool"),
            cell=str(row["cell"]),
            taken_at=row.get("taken_at"),
            source=row["source"],
            activation_ev=float(row["activation_ev"]),
            ln_prefactor=float(row["ln_prefactor"]),
            r2=number("r2"),
            rmse_ln=number("rmse_ln"),
            n_points=int(row.get("n_points") or 0),
            t_min_c=row.get("t_min_c"),
            t_max_c=row.get("t_max_c"),
            bep_to_rate=row.get("bep_to_rate"),
            file=row.get("file"),
            sha256=row.get("sha256"),
        )

    def _name(self) -> str:
        return f"{self.tool + ' ' if self.tool else ''}{self.cell}"


@dataclass(frozen=True)
class ScanFit:
    """What a scan gave: a calibration, or None with the reason among the findings (an ERROR;
    an INFO for a valved As/Sb scan, which is skipped, not broken). WARNINGs go with a usable fit
    too (an outlier left out, a poor fit, two points only)."""

    calibration: CellCalibration | None
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.calibration is not None

    @property
    def skipped(self) -> bool:
        """No calibration, and none expected: a valved source (As, Sb) is not Arrhenius."""
        return self.calibration is None and not any(
            f.severity is Severity.ERROR for f in self.findings
        )

    @property
    def reason(self) -> str | None:
        """Why there is no calibration (None when there is one)."""
        if self.calibration is not None:
            return None
        errors = [f.message for f in self.findings if f.severity is Severity.ERROR]
        return "; ".join(errors or [f.message for f in self.findings]) or "not fitted"


def _scalar(values: Any) -> Any:
    return float(values) if np.ndim(values) == 0 else values


# ---------------------------------------------------------------------------------------------
# Scans
def fit_scan(
    table: CalibrationTable,
    *,
    tool: str | None = None,
    use_background: bool = True,
    sha256: str | None = None,
) -> ScanFit:
    """The Arrhenius fit of a calibration scan, on the net BEP (BFM.P - MBE.P with
    `use_background`). Never raises for bad content: no calibration and an ERROR finding when the
    scan cannot be fitted (fewer than two usable points, one temperature); a valved As/Sb scan is
    skipped with an INFO (its BEP follows the valve, not an Arrhenius law of temperature).
    WARNINGs for points left out (net BEP not positive, one outlier far off the line) and for a
    poor or implausible fit."""
    notes = _Notes(str(table.path) if table.path else None, table.cell)
    cell = table.cell
    if cell is None:
        notes.add(
            "unknown_cell",
            Severity.ERROR,
            "which cell was scanned is not known (neither the header nor the file name says)",
            "Name the file YYYY-MM-DD_HH-MM-SS_<cell>.txt.",
        )
        return ScanFit(None, notes.found())
    if cell in VALVED_SOURCES or table.setting != TEMPERATURE:
        notes.add(
            "not_arrhenius",
            Severity.INFO,
            f"{cell} is a valved cracker: its BEP follows the valve opening, not an Arrhenius "
            "law of temperature; not fitted",
            "Valve scans set V/III (the As valve curve), not group-III rates.",
        )
        return ScanFit(None, notes.found())
    temps, net = _net_points(table, use_background, notes)
    if len(temps) < MIN_POINTS or len(np.unique(temps)) < MIN_POINTS:
        what = "one temperature" if len(temps) >= MIN_POINTS else f"{len(temps)} usable point(s)"
        notes.add(
            "too_few_points",
            Severity.ERROR,
            f"{what}: an Arrhenius fit needs at least two temperatures with a positive net BEP",
            "Scan over several temperatures (e.g. six steps of 15 °C, as the lab scripts do).",
        )
        return ScanFit(None, notes.found())
    keep = np.ones(len(temps), dtype=bool)
    outlier = _outlier(temps, net)
    if outlier is not None:
        i, deviation = outlier
        dropped = len(temps) >= DROP_OUTLIER_FROM
        what = "left out of the fit" if dropped else "kept (too few points to leave one out)"
        notes.add(
            "outlier_point",
            Severity.WARNING,
            f"the point at {temps[i]:.1f} °C is {100 * (math.exp(deviation) - 1):+.1f} % off "
            f"the line through the others; {what}",
            "Retake that point (the cell had not settled, or the gauge jumped).",
            temperature_c=float(temps[i]),
            deviation_ln=deviation,
            dropped=dropped,
        )
        keep[i] = not dropped
    fit = fit_arrhenius(temps[keep], net[keep])
    residual = np.log(net[keep]) - np.log(fit.bep(temps[keep]))
    rmse = float(np.sqrt(np.mean(residual**2)))
    _quality(fit, rmse, int(keep.sum()), notes)
    calibration = CellCalibration(
        tool=tool,
        cell=cell,
        taken_at=table.taken_at,
        source=SCAN,
        activation_ev=fit.activation_ev,
        ln_prefactor=fit.ln_prefactor,
        r2=fit.r2,
        rmse_ln=rmse,
        n_points=fit.n_points,
        t_min_c=float(temps[keep].min()),
        t_max_c=float(temps[keep].max()),
        file=notes.file,
        sha256=sha256,
    )
    return ScanFit(calibration, notes.found())


@dataclass
class _Notes:
    """The findings of one scan's fit, all naming its file and cell."""

    file: str | None
    cell: str | None
    findings: list[Finding] = field(default_factory=list)

    def add(self, code: str, severity: Severity, message: str, hint: str, **details: Any) -> None:
        self.findings.append(
            Finding(code, severity, message, hint, file=self.file, channel=self.cell,
                    details=details)  # fmt: skip
        )

    def found(self) -> tuple[Finding, ...]:
        return tuple(self.findings)


def _net_points(
    table: CalibrationTable, use_background: bool, notes: _Notes
) -> tuple[np.ndarray, np.ndarray]:
    """(temperatures °C, net BEP Torr) of the points that can enter a log-scale fit."""
    points = table.points
    if points.is_empty() or "bep" not in points.columns:
        return np.array([]), np.array([])
    temps = points.get_column(TEMPERATURE).cast(float).to_numpy()
    net = points.get_column("bep").cast(float).to_numpy()
    if use_background and "background" in points.columns:
        background = points.get_column("background").cast(float).to_numpy()
        missing = ~(np.isfinite(background) & (background > 0))
        if missing.any():
            notes.add(
                "no_background",
                Severity.INFO,
                f"no usable background at {_temps(temps[missing])}; the BFM reading is used as "
                "it is there",
                "",
            )
        net = net - np.where(missing, 0.0, background)
    bad = ~(np.isfinite(temps) & np.isfinite(net) & (net > 0))
    if bad.any():
        notes.add(
            "non_positive_bep",
            Severity.WARNING,
            f"net BEP (BFM minus background) not positive at {_temps(temps[bad])}: "
            f"{bad.sum()} point(s) left out of the fit",
            "The beam is below the gauge's range or the background was read with the beam on; "
            "retake those points.",
            temperatures_c=[float(t) for t in temps[bad]],
        )
    return temps[~bad], net[~bad]


def _quality(fit: ArrheniusFit, rmse: float, n: int, notes: _Notes) -> None:
    if n == MIN_POINTS:
        notes.add(
            "two_points",
            Severity.WARNING,
            "a line through two points: the fit's quality cannot be checked",
            "Scan over more temperatures.",
        )
    elif rmse > POOR_FIT_RMSE_LN or fit.r2 < POOR_FIT_R2:
        notes.add(
            "poor_fit",
            Severity.WARNING,
            f"the points scatter {100 * rmse:.1f} % (rms) about the Arrhenius line "
            f"(r² {fit.r2:.4f})",
            "Check that the cell settled at each step and the BFM was in the beam.",
            rmse_ln=rmse,
            r2=fit.r2,
        )
    if not PLAUSIBLE_EV[0] <= fit.activation_ev <= PLAUSIBLE_EV[1]:
        notes.add(
            "implausible_activation",
            Severity.WARNING,
            f"activation energy {fit.activation_ev:.2f} eV is outside "
            f"{PLAUSIBLE_EV[0]}-{PLAUSIBLE_EV[1]} eV (Ga 2.65, In 2.2, Al 2.2-2.3 eV)",
            "Check the temperature column and the gauge readings.",
        )


def _outlier(temps: np.ndarray, bep: np.ndarray) -> tuple[int, float] | None:
    """The point farthest off the line through the others (index, ln residual), when it is far
    beyond their scatter; needs four points (a line through three leaves one degree of freedom)."""
    n = len(temps)
    if n < 4:
        return None
    inv_t, y = 1.0 / c_to_k(temps), np.log(bep)
    worst: tuple[int, float] | None = None
    for i in range(n):
        others = np.arange(n) != i
        x_o, y_o = inv_t[others], y[others]
        slope, intercept = np.polyfit(x_o, y_o, 1)
        rest = y_o - (intercept + slope * x_o)
        scatter = max(float(np.sqrt(np.sum(rest**2) / (n - 3))), NOISE_FLOOR_LN)
        spread = float(np.sum((x_o - x_o.mean()) ** 2))
        leverage = 1.0 / (n - 1) + (inv_t[i] - x_o.mean()) ** 2 / spread if spread > 0 else 1.0
        deviation = float(y[i] - (intercept + slope * inv_t[i]))
        limit = max(OUTLIER_MIN_LN, OUTLIER_SIGMAS * scatter * float(np.sqrt(1.0 + leverage)))
        if abs(deviation) > limit and (worst is None or abs(deviation) > abs(worst[1])):
            worst = (i, deviation)
    return worst


def _temps(values: np.ndarray) -> str:
    shown = ", ".join(f"{t:g} °C" for t in values[:8])
    return shown + (f" and {len(values) - 8} more" if len(values) > 8 else "")


# ---------------------------------------------------------------------------------------------
# EPIC Fitting.txt
def from_fitting(
    fitting: EpicFitting,
    *,
    tool: str | None,
    valid_from: datetime | None,
    file: str | None = None,
    sha256: str | None = None,
) -> CellCalibration:
    """A Fitting.txt section as a calibration in force from `valid_from`. ValueError when it is
    not a first-order Arrhenius fit with a negative slope (`fitting_calibrations` screens a file's
    sections and reports those instead). BEPtoFlux=1 (EPIC's "no rate calibration", dopants)
    becomes bep_to_rate None."""
    if fitting.fit != ARRHENIUS_FIT:
        raise ValueError(f"{fitting.cell}: fit {fitting.fit!r} is not the Arrhenius fit (AEF)")
    if len(fitting.coeffs) != 2:
        raise ValueError(
            f"{fitting.cell}: {len(fitting.coeffs)} coefficients (Order={fitting.order}); only "
            "the first-order fit ln(BEP) = a + b/T has an activation energy"
        )
    a, b = fitting.coeffs
    if b >= 0:
        raise ValueError(f"{fitting.cell}: slope b = {b:g} ≥ 0: the BEP would not rise with T")
    fit = ArrheniusFit.from_epic(a, b)
    factor = fitting.bep_to_flux
    return CellCalibration(
        tool=tool,
        cell=fitting.cell,
        taken_at=valid_from,
        source=FITTING,
        activation_ev=fit.activation_ev,
        ln_prefactor=fit.ln_prefactor,
        bep_to_rate=factor if factor is not None and factor > NO_RATE_FACTOR else None,
        file=file,
        sha256=sha256,
    )


def fitting_calibrations(
    fittings: Mapping[str, EpicFitting],
    *,
    tool: str | None,
    valid_from: datetime | None,
    file: str | None = None,
    sha256: str | None = None,
) -> tuple[list[CellCalibration], list[Finding]]:
    """Every usable section of a Fitting.txt; the others as WARNING findings (never raises)."""
    calibrations, findings = [], []
    for cell, fitting in fittings.items():
        try:
            calibrations.append(
                from_fitting(fitting, tool=tool, valid_from=valid_from, file=file, sha256=sha256)
            )
        except ValueError as exc:
            findings.append(
                Finding(
                    "unusable_fit",
                    Severity.WARNING,
                    f"{exc}; not used as a calibration",
                    hint="Only Fit=AEF with Order=1 (ln BEP = a + b/T, b < 0) is understood.",
                    file=file,
                    channel=cell,
                )
            )
    return calibrations, findings


# ---------------------------------------------------------------------------------------------
# Drift
def flux_drift(earlier: CellCalibration, later: CellCalibration, at_c: float) -> float:
    """Relative BEP change at a cell temperature: BEP_later(at_c)/BEP_earlier(at_c) - 1
    (negative when the cell depletes)."""
    return float(later.bep(at_c) / earlier.bep(at_c) - 1.0)


def temperature_to_hold(earlier: CellCalibration, later: CellCalibration, at_c: float) -> float:
    """°C to add to a set point at_c so that the later curve gives the earlier BEP there:
    T' = later⁻¹(earlier(at_c)), ΔT = T' - at_c (positive when the cell depletes; about
    -drift / (E/kT²) for small drifts)."""
    return float(later.temperature_for(earlier.bep(at_c)) - at_c)


@dataclass(frozen=True)
class Drift:
    """The flux change of one cell between two of its calibrations, at `at_c`."""

    tool: str | None
    cell: str
    earlier: CellCalibration
    later: CellCalibration
    at_c: float
    drift: float  # relative BEP change
    hold_c: float  # temperature change that holds the earlier flux

    @property
    def days(self) -> float | None:
        if self.earlier.taken_at is None or self.later.taken_at is None:
            return None
        return (self.later.taken_at - self.earlier.taken_at).total_seconds() / 86400

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "cell": self.cell,
            "from": self.earlier.taken_at.isoformat() if self.earlier.taken_at else None,
            "to": self.later.taken_at.isoformat() if self.later.taken_at else None,
            "days": self.days,
            "at_c": self.at_c,
            "drift": self.drift,
            "hold_c": self.hold_c,
        }


def drift_between(
    earlier: CellCalibration, later: CellCalibration, at_c: float | None = None
) -> Drift:
    """Drift and ΔT to hold at `at_c` (default: the later calibration's mid-range temperature)."""
    at = later.mid_range_c if at_c is None else float(at_c)
    return Drift(
        later.tool,
        later.cell,
        earlier,
        later,
        at,
        flux_drift(earlier, later, at),
        temperature_to_hold(earlier, later, at),
    )


def drift_series(
    calibrations: Iterable[CellCalibration], at_c: float | Mapping[str, float] | None = None
) -> list[Drift]:
    """Drift between consecutive calibrations of each tool and cell, in time order. Scans are
    compared with scans; a cell with no scan is compared over its Fitting.txt coefficient
    changes (a BEPtoFlux-only change is no new flux calibration). Undated calibrations are left
    out (their order is unknown)."""
    chains: dict[tuple[str | None, str], list[CellCalibration]] = {}
    for calibration in calibrations:
        if calibration.taken_at is not None:
            chains.setdefault((calibration.tool, calibration.cell), []).append(calibration)
    drifts = []
    for (_, cell), chain in sorted(chains.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        chain = _comparable(chain)
        for earlier, later in zip(chain, chain[1:], strict=False):
            drifts.append(drift_between(earlier, later, _at(at_c, cell)))
    return drifts


def _comparable(chain: list[CellCalibration]) -> list[CellCalibration]:
    chain = sorted(chain, key=lambda c: c.taken_at)  # type: ignore[arg-type, return-value]
    scans = [c for c in chain if c.source == SCAN]
    if scans:
        return scans
    distinct: list[CellCalibration] = []
    for c in chain:
        if not distinct or distinct[-1].epic_coefficients != c.epic_coefficients:
            distinct.append(c)
    return distinct


def _at(at_c: float | Mapping[str, float] | None, cell: str) -> float | None:
    if isinstance(at_c, Mapping):
        return at_c.get(cell)
    return at_c


def drift_alerts(
    history: Any,
    *,
    operating_c: float | Mapping[str, float] | None = None,
    tolerance: float = 0.03,
    now: datetime | None = None,
) -> list[Finding]:
    """A WARNING `calibration_drift` for each tool and cell whose last calibration (at or before
    `now`) shows the flux moved more than `tolerance` (relative BEP) since the calibration before
    it, at the operating temperature (°C; one for all cells or one per cell; default each
    calibration's mid-range). `history`: a `calibration_history` frame or CellCalibrations.
    Set points written from the earlier calibration are off by that drift; the finding says by
    how much, since when, and the ΔT that holds the flux."""
    calibrations = _calibrations_of(history)
    now = now or datetime.now(UTC)
    calibrations = [c for c in calibrations if c.taken_at is not None and c.taken_at <= now]
    latest: dict[tuple[str | None, str], Drift] = {}
    for d in drift_series(calibrations, operating_c):
        latest[(d.tool, d.cell)] = d  # drift_series is in time order per cell
    findings = []
    for (tool, cell), d in latest.items():
        if abs(d.drift) <= tolerance:
            continue
        assert d.later.taken_at is not None
        age = (now - d.later.taken_at).total_seconds() / 86400
        days = d.days or 0.0
        direction = "fell" if d.drift < 0 else "rose"
        findings.append(
            Finding(
                "calibration_drift",
                Severity.WARNING,
                f"{tool or 'tool ?'} {cell}: BEP at {d.at_c:.1f} °C {direction} "
                f"{100 * abs(d.drift):.1f} % in {days:.1f} days (calibrations of "
                f"{d.earlier.taken_at:%Y-%m-%d} and {d.later.taken_at:%Y-%m-%d}), beyond the "
                f"{100 * tolerance:.1f} % tolerance; {d.hold_c:+.1f} °C holds the earlier flux",
                hint=(
                    f"recalibrate {cell} (last calibration {age:.1f} days ago) and rewrite set "
                    f"points made with the {d.earlier.taken_at:%Y-%m-%d} fit ({d.hold_c:+.1f} °C "
                    f"at {d.at_c:.0f} °C); a steady fall is depletion: plan a refill"
                ),
                channel=f"{cell}.T",
                start=d.earlier.taken_at,
                end=d.later.taken_at,
                details={**d.to_dict(), "tolerance": tolerance, "days_since": age},
            )
        )
    return findings


def _calibrations_of(history: Any) -> list[CellCalibration]:
    if hasattr(history, "iter_rows"):  # a polars DataFrame from calibration_history
        return [CellCalibration.from_row(row) for row in history.iter_rows(named=True)]
    return list(history)
