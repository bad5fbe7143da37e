"""When each cell should be calibrated next: the drift rate of its flux since the last refill,
projected to the date the drift would exceed the alarm tolerance, capped by a maximum interval.

Why (DESIGN.md "Physics of the twin", research/domain.md §3.5, docs/calibration.md):

- An effusion cell depletes: at a fixed temperature its BEP falls as the melt recedes (real Ga:
  −6 % at fixed T over half a year; a DSMC twin needs +12–13 °C over a charge). Set points
  written from a calibration are off by the drift accumulated since it, so the flux in force
  is only as good as the age of the calibration times the drift rate.
- The loss is set by the material evaporated (qncmbe `cell_usage_tracking.py`: consumption is
  the time integral of flux), so at a steady use of the tool ln BEP(T) falls about linearly in
  time between refills. A refill (and its bake-out) starts a new charge with another flux, so
  the rate is fitted only over the calibrations since the cell's last refill, and a refill
  after the last calibration makes the cell due at once.
- `record_drift_alarms` alarms when the flux moved more than its tolerance (3 %) between two
  calibrations. Recalibrating before the projected drift since the last calibration reaches
  that tolerance keeps set points inside it: with r = d ln BEP/dt, the drift after d days is
  exp(r·d) − 1, so the cell is due d* = ln(1 − tol)/r days after its last calibration when
  the flux falls (r < 0), ln(1 + tol)/r when it rises.
- Day-to-day flux scatter is ±1–2 % (docs/calibration.md: "a rate from two scans is
  meaningless"), so a rate needs `MIN_POINTS_FOR_RATE` calibrations since the refill; with
  fewer, and whenever the projection is longer, the cell is due after `MAX_INTERVAL_DAYS`
  (labs recalibrate every few days, DESIGN.md "Flux calibration files"; daily flux checks are
  common practice, research/domain.md §3.5).

    next_calibration(calibrations_of_one_cell, at_c, refills=[...], now=...) -> NextCalibration
    next_calibrations(history, operating_c={cell: °C}, refills=frame) -> [NextCalibration]

Dopant cells (Si, Be) are not scheduled: their BEP is below what a flux scan measures; doping
is calibrated by SIMS / Hall on grown layers, not here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from epi_ml.calibration.cells import CellCalibration, _calibrations_of, _comparable
from epi_ml.channels import GROUP_III

TOLERANCE = 0.03  # the tolerance record_drift_alarms alarms at (relative BEP)
MAX_INTERVAL_DAYS = 7.0  # labs calibrate every few days: never wait longer than a week
MIN_POINTS_FOR_RATE = 3  # ±1-2 % scatter: two calibrations give no usable rate

DRIFT, MAX_INTERVAL, REFILL, NOT_SCHEDULED = "drift", "max_interval", "refill", "not_scheduled"


@dataclass(frozen=True)
class NextCalibration:
    """The next recommended calibration of one cell of one tool and why.

    `basis`: "drift" (the projected drift reaches the tolerance first), "max_interval" (too few
    calibrations for a rate, or a slow drift), "refill" (refilled after its last calibration),
    "not_scheduled" (a dopant, or no dated calibration). `rate_per_day`: the fitted d ln BEP/dt
    at `at_c` (≈ relative flux change per day), None without a fit. `points`: calibrations the
    rate was fitted on (since `refilled_at` when known)."""

    tool: str | None
    cell: str
    at_c: float
    last_at: datetime | None
    due_at: datetime | None
    basis: str
    reason: str
    rate_per_day: float | None = None
    points: int = 0
    refilled_at: datetime | None = None
    tolerance: float = TOLERANCE

    def overdue(self, now: datetime | None = None) -> bool:
        return self.due_at is not None and self.due_at <= (now or datetime.now(UTC))

    def days_left(self, now: datetime | None = None) -> float | None:
        if self.due_at is None:
            return None
        return (self.due_at - (now or datetime.now(UTC))).total_seconds() / 86400

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "cell": self.cell,
            "at_c": self.at_c,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "basis": self.basis,
            "reason": self.reason,
            "rate_per_day": self.rate_per_day,
            "points": self.points,
            "refilled_at": self.refilled_at.isoformat() if self.refilled_at else None,
            "tolerance": self.tolerance,
        }


def chain_of(calibrations: Iterable[CellCalibration]) -> list[CellCalibration]:
    """The calibrations of one cell that are compared with each other, in time order: its scans,
    or (no scan) the changes of its Fitting.txt coefficients; undated ones left out."""
    dated = [c for c in calibrations if c.taken_at is not None]
    return _comparable(dated) if dated else []


def next_calibration(
    calibrations: Iterable[CellCalibration],
    at_c: float,
    *,
    refills: Iterable[datetime] = (),
    tolerance: float = TOLERANCE,
    max_interval_days: float = MAX_INTERVAL_DAYS,
    now: datetime | None = None,
) -> NextCalibration | None:
    """The next calibration of one cell (the calibrations of one tool and cell) at its working
    temperature `at_c` (°C); None when there is no calibration. `refills`: when the cell was
    refilled; `now`: calibrations and refills after it are not known yet."""
    now = now or datetime.now(UTC)
    chain = [c for c in chain_of(calibrations) if c.taken_at is not None and c.taken_at <= now]
    if not chain:
        return None
    tool, cell, last = chain[-1].tool, chain[-1].cell, chain[-1]
    assert last.taken_at is not None
    refilled = max((r for r in refills if r <= now), default=None)
    base = {"tool": tool, "cell": cell, "at_c": float(at_c), "last_at": last.taken_at,
            "refilled_at": refilled, "tolerance": tolerance}  # fmt: skip
    if cell not in GROUP_III:
        return NextCalibration(
            **base, due_at=None, basis=NOT_SCHEDULED,
            reason=f"{cell} is a dopant: its BEP is below what a flux scan measures; doping is "
            "calibrated by SIMS / Hall on grown layers",
        )  # fmt: skip
    if refilled is not None and refilled > last.taken_at:
        return NextCalibration(
            **base, due_at=refilled, basis=REFILL,
            reason=f"refilled on {refilled:%Y-%m-%d %H:%M} after its last calibration "
            f"({last.taken_at:%Y-%m-%d}): a new charge has another flux; calibrate before the "
            "next growth",
        )  # fmt: skip
    epoch = [c for c in chain if refilled is None or c.taken_at >= refilled]  # type: ignore[operator]
    since = f"since the refill of {refilled:%Y-%m-%d}" if refilled else "in the history"
    cap = last.taken_at + timedelta(days=max_interval_days)
    if len(epoch) < MIN_POINTS_FOR_RATE:
        return NextCalibration(
            **base, due_at=cap, basis=MAX_INTERVAL, points=len(epoch),
            reason=f"{len(epoch)} calibration(s) {since}: too few to fit a drift rate (the flux "
            f"scatters ±1-2 % from day to day, {MIN_POINTS_FOR_RATE} are needed); due "
            f"{max_interval_days:g} days after the last one (the maximum interval)",
        )  # fmt: skip
    rate = drift_rate(epoch, at_c)
    crossing = days_to_tolerance(rate, tolerance)
    trend = f"{'falls' if rate < 0 else 'rises'} {100 * abs(math.expm1(rate)):.2f} %/day"
    fitted = f"flux at {at_c:.0f} °C {trend} over {len(epoch)} calibrations {since}"
    if crossing < max_interval_days:
        return NextCalibration(
            **base, due_at=last.taken_at + timedelta(days=crossing), basis=DRIFT,
            rate_per_day=rate, points=len(epoch),
            reason=f"{fitted}: the {100 * tolerance:.1f} % tolerance is reached {crossing:.1f} "
            "days after the last calibration",
        )  # fmt: skip
    beyond = f"{crossing:.0f} days" if math.isfinite(crossing) else "never at this rate"
    return NextCalibration(
        **base, due_at=cap, basis=MAX_INTERVAL, rate_per_day=rate, points=len(epoch),
        reason=f"{fitted}: {100 * tolerance:.1f} % would take {beyond}, beyond the "
        f"{max_interval_days:g}-day maximum interval",
    )  # fmt: skip


def drift_rate(chain: list[CellCalibration], at_c: float) -> float:
    """d ln BEP(at_c) / dt per day: the least-squares slope over the calibrations in `chain`."""
    t0 = chain[0].taken_at
    assert t0 is not None
    days = np.array([(c.taken_at - t0).total_seconds() / 86400 for c in chain])  # type: ignore[operator]
    ln_bep = np.log([float(c.bep(at_c)) for c in chain])
    if np.ptp(days) == 0:
        return 0.0
    return float(np.polyfit(days, ln_bep, 1)[0])


def days_to_tolerance(rate_per_day: float, tolerance: float) -> float:
    """Days until exp(rate·d) − 1 leaves ±tolerance (inf for no drift)."""
    if rate_per_day < 0:
        return math.log(1 - tolerance) / rate_per_day
    if rate_per_day > 0:
        return math.log(1 + tolerance) / rate_per_day
    return math.inf


def next_calibrations(
    history: Any,
    *,
    operating_c: float | Mapping[str, float] | None = None,
    refills: Any = None,
    tolerance: float = TOLERANCE,
    max_interval_days: float = MAX_INTERVAL_DAYS,
    now: datetime | None = None,
) -> list[NextCalibration]:
    """`next_calibration` of every tool and cell of a `calibration_history` frame (or
    CellCalibrations). `operating_c`: °C for all cells, or per cell (default: the latest
    calibration's mid-range, where drift_alerts compares); `refills`: a frame with tool, source,
    installed_at (the store's `cells` rows) or a mapping (tool, cell) -> [datetimes]."""
    calibrations = _calibrations_of(history)
    by_cell: dict[tuple[str | None, str], list[CellCalibration]] = {}
    for c in calibrations:
        by_cell.setdefault((c.tool, c.cell), []).append(c)
    refill_times = _refill_times(refills)
    found = []
    for (tool, cell), of_cell in sorted(by_cell.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        chain = chain_of(of_cell)
        if not chain:
            continue
        if isinstance(operating_c, Mapping):
            at = operating_c.get(cell)
        else:
            at = operating_c
        at = chain[-1].mid_range_c if at is None else float(at)
        result = next_calibration(
            of_cell, at, refills=refill_times.get((tool, cell), ()), tolerance=tolerance,
            max_interval_days=max_interval_days, now=now,
        )  # fmt: skip
        if result is not None:
            found.append(result)
    return found


def _refill_times(refills: Any) -> dict[tuple[str | None, str], list[datetime]]:
    if refills is None:
        return {}
    if isinstance(refills, Mapping):
        return {key: list(times) for key, times in refills.items()}
    times: dict[tuple[str | None, str], list[datetime]] = {}
    for row in refills.iter_rows(named=True):
        tool = row.get("tool", row.get("tool_id"))
        times.setdefault((tool, row["source"]), []).append(row["installed_at"])
    return times
