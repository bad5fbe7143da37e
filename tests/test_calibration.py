"""Cell calibration tracking: Arrhenius fits of scans and Fitting.txt, drift and ΔT to hold, drift
alerts, the history from the store and the calibration in force; on synthetic points, the twin
and the real EPIC Fitting.txt."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from ingest_helpers import REAL_DAY
from typer.testing import CliRunner

from epi_ml.calibration import (
    CellCalibration,
    as_alarms,
    calibration_file,
    calibration_history,
    drift_alerts,
    drift_series,
    fit_scan,
    fitting_calibrations,
    fitting_valid_from,
    flux_drift,
    from_fitting,
    history_from_files,
    latest_calibrations,
    temperature_to_hold,
)
from epi_ml.cli import app
from epi_ml.findings import Severity
from epi_ml.physics import K_B_EV, arrhenius_bep
from epi_ml.readers.calibration import read_calibration_table
from epi_ml.readers.epic_fitting import EpicFitting, read_epic_fitting

T0 = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
CAMPAIGN_RUNS, CAMPAIGN_TOOLS, CAMPAIGN_SEED = 60, 2, 3


def write_scan(
    folder: Path, name: str, rows: list[tuple[float, float, float]], cell: str = "Ga"
) -> Path:
    path = folder / name
    lines = [f"{cell}\tBFM.P\tMBE.P"] + [f"{t:g}\t{p:.6E}\t{b:.6E}" for t, p, b in rows]
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def synthetic(energy: float, a: float, temps: list[float], background: float = 0.0) -> list[tuple]:
    return [(t, float(arrhenius_bep(t, a, energy)) + background, background) for t in temps]


def calibration(
    cell: str, a: float, energy: float, at: datetime, tool: str = "MBE1"
) -> CellCalibration:
    return CellCalibration(tool, cell, at, "scan", energy, a, 1.0, 0.0, 6, 950.0, 1030.0)


# ---------------------------------------------------------------------------------------------
# Fits on synthetic points
def test_fit_recovers_activation_energy_and_prefactor_exactly(tmp_path: Path) -> None:
    temps = [1035, 1020, 1005, 990, 975, 960]
    path = write_scan(tmp_path, "2026-01-05_07-16-31_Ga.txt", synthetic(2.65, 9.28, temps, 3e-9))
    result = fit_scan(read_calibration_table(path), tool="MBE1")
    cal = result.calibration
    assert result.ok and cal is not None and not result.findings
    # the file holds 7 significant digits: E and a back to ~1e-6
    assert cal.activation_ev == pytest.approx(2.65, rel=1e-5)
    assert cal.ln_prefactor == pytest.approx(9.28, abs=1e-4)
    assert cal.r2 == pytest.approx(1.0, abs=1e-9) and cal.rmse_ln < 1e-5
    assert (cal.tool, cal.cell, cal.source, cal.n_points) == ("MBE1", "Ga", "scan", 6)
    assert (cal.t_min_c, cal.t_max_c) == (960.0, 1035.0)
    assert cal.taken_at == datetime(2026, 1, 5, 7, 16, 31, tzinfo=UTC)
    assert cal.bep(1000.0) == pytest.approx(float(arrhenius_bep(1000.0, 9.28, 2.65)), rel=1e-4)
    assert cal.temperature_for(cal.bep(987.0)) == pytest.approx(987.0)
    assert cal.rate_ml_s(1000.0) is None  # no BEPtoFlux known for a bare scan
    with_rate = cal.with_rate(2.2e6)
    assert with_rate.rate_ml_s(1000.0) == pytest.approx(2.2e6 * cal.bep(1000.0))
    assert with_rate.temperature_for_rate(with_rate.rate_ml_s(990.0)) == pytest.approx(990.0)
    # ~2 %/°C (DESIGN.md) for Ga near 950 °C
    assert cal.percent_per_c(950.0) == pytest.approx(2.0, abs=0.2)
    d = cal.to_dict()
    assert d["taken_at"] == "2026-01-05T07:16:31+00:00" and d["epic_coefficients"][1] < 0
    json.dumps(d)


def test_background_is_subtracted_and_can_be_kept(tmp_path: Path) -> None:
    rows = synthetic(2.2, 6.9, [850, 835, 820, 805, 790, 775], background=2e-8)
    table = read_calibration_table(write_scan(tmp_path, "2026-01-05_In.txt", rows, "In"))
    net = fit_scan(table).calibration
    raw = fit_scan(table, use_background=False).calibration
    assert net is not None and raw is not None
    assert net.activation_ev == pytest.approx(2.2, rel=1e-5)
    assert raw.activation_ev < 2.15  # a constant background flattens the curve


def test_an_outlier_is_reported_and_left_out(tmp_path: Path) -> None:
    rows = synthetic(2.65, 9.28, [1035, 1020, 1005, 990, 975, 960])
    t, p, b = rows[2]
    rows[2] = (t, p * 1.15, b)  # the cell had not settled at 1005 °C
    result = fit_scan(read_calibration_table(write_scan(tmp_path, "2026-01-05_Ga.txt", rows)))
    assert result.calibration is not None
    (outlier,) = [f for f in result.findings if f.code == "outlier_point"]
    assert outlier.severity is Severity.WARNING and "1005.0 °C" in outlier.message
    assert "+15.0 %" in outlier.message and outlier.details["dropped"]
    assert result.calibration.n_points == 5
    assert result.calibration.activation_ev == pytest.approx(2.65, rel=1e-5)


def test_noisy_scan_keeps_every_point(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = [(t, p * (1 + rng.normal(0, 0.01)), b) for t, p, b in
            synthetic(2.65, 9.28, [1035, 1020, 1005, 990, 975, 960])]  # fmt: skip
    result = fit_scan(read_calibration_table(write_scan(tmp_path, "2026-01-05_Ga.txt", rows)))
    assert result.calibration is not None and result.calibration.n_points == 6
    assert not [f for f in result.findings if f.severity is not Severity.INFO]
    assert result.calibration.activation_ev == pytest.approx(2.65, rel=0.03)


# ---------------------------------------------------------------------------------------------
# Bad inputs: clear results, no exceptions
def test_bad_scans_give_reasons_not_exceptions(tmp_path: Path) -> None:
    single = write_scan(tmp_path, "2026-01-05_Ga.txt", [(1000, 3e-7, 3e-9)])
    one = calibration_file(single, tool="T")
    assert not one.usable and not one.skipped
    assert any(f.code == "too_few_points" and f.severity is Severity.ERROR for f in one.findings)
    assert "two temperatures" in " ".join(one.reasons)

    rows = synthetic(2.65, 9.28, [1035, 1020, 1005, 990])
    rows[3] = (990, -1e-9, 3e-9)  # a gauge below its range
    some = calibration_file(write_scan(tmp_path, "2026-01-06_Ga.txt", rows), tool="T")
    assert some.usable and some.calibrations[0].n_points == 3
    assert any(f.code == "non_positive_bep" and "990 °C" in f.message for f in some.findings)

    negative = [(t, -1e-9, 3e-9) for t in (1000, 990, 980)]
    none = calibration_file(write_scan(tmp_path, "2026-01-07_Ga.txt", negative), tool="T")
    assert not none.usable
    assert {"non_positive_bep", "too_few_points"} <= {f.code for f in none.findings}

    repeated = write_scan(tmp_path, "2026-01-08_Ga.txt", [(1000, 3e-7, 0), (1000, 3.1e-7, 0)])
    same_t = calibration_file(repeated, tool="T")
    assert not same_t.usable and "one temperature" in " ".join(same_t.reasons)

    valve = [(10, 1.7e-7, 1e-9), (20, 4.2e-7, 2e-9), (30, 1.5e-6, 5e-9)]
    arsenic = calibration_file(write_scan(tmp_path, "2026-01-05_As.txt", valve, "As"), tool="T")
    assert arsenic.skipped and not arsenic.usable
    assert [f.code for f in arsenic.findings] == ["not_arrhenius"]
    scan = fit_scan(read_calibration_table(tmp_path / "2026-01-05_As.txt"))
    assert scan.skipped and "valve" in (scan.reason or "")

    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n")
    other = calibration_file(junk, tool=None)
    assert other.kind == "" and not other.usable and other.reasons


def test_fitting_sections_that_are_not_first_order_arrhenius_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "2026_01_05" / "Fitting.txt"
    path.parent.mkdir()
    path.write_text(
        "'EPIC Fitting Config File\r\n\r\n"
        "# Ga\r\nFit=AEF\r\nOrder=1\r\nBEPtoFlux=2232219\r\nCoeff=9.074E00,-3.062E04\r\n\r\n"
        "# Al\r\nFit=POLY\r\nOrder=1\r\nBEPtoFlux=5907035\r\nCoeff=2.795E00,-2.600E04\r\n\r\n"
        "# In\r\nFit=AEF\r\nOrder=2\r\nBEPtoFlux=1189755\r\nCoeff=7.4,-2.5E04,1.0E03\r\n\r\n"
        "# Si\r\nFit=AEF\r\nOrder=1\r\nBEPtoFlux=1\r\nCoeff=1.321E01,-5.338E04\r\n"
    )
    fittings, _ = read_epic_fitting(path)
    with pytest.raises(ValueError, match="not the Arrhenius fit"):
        from_fitting(fittings["Al"], tool="MBE1", valid_from=None)
    with pytest.raises(ValueError, match="first-order"):
        from_fitting(fittings["In"], tool="MBE1", valid_from=None)
    result = calibration_file(path, tool="MBE1")
    assert result.usable and sorted(c.cell for c in result.calibrations) == ["Ga", "Si"]
    assert {f.channel for f in result.findings if f.code == "unusable_fit"} == {"Al", "In"}
    ga = next(c for c in result.calibrations if c.cell == "Ga")
    si = next(c for c in result.calibrations if c.cell == "Si")
    assert ga.activation_ev == pytest.approx(3.062e4 * K_B_EV) and ga.ln_prefactor == 9.074
    assert ga.bep_to_rate == 2232219 and si.bep_to_rate is None  # BEPtoFlux=1: no rate factor
    assert ga.taken_at == datetime(2026, 1, 5, tzinfo=UTC) and math.isnan(ga.r2)
    # the same fit EPIC's own reader evaluates
    assert ga.bep(950.0) == pytest.approx(fittings["Ga"].bep_torr(950.0), rel=1e-12)
    found, notes = fitting_calibrations(
        {"X": EpicFitting("X", "AEF", 1, 5e6, (3.0, 1.0e4))}, tool=None, valid_from=None
    )
    assert not found and "slope" in notes[0].message


def test_fitting_time_is_the_start_of_its_day_folder_in_the_tools_zone() -> None:
    day = Path("/x/MBE8/2023_06_12/Fitting.txt")
    assert fitting_valid_from(day) == datetime(2023, 6, 12, tzinfo=UTC)
    assert fitting_valid_from(day, "Europe/Berlin") == datetime(2023, 6, 11, 22, tzinfo=UTC)
    assert fitting_valid_from("/data/epic-mbe8-2023-06-12/Fitting.txt") == datetime(
        2023, 6, 12, tzinfo=UTC
    )
    assert fitting_valid_from("/somewhere/Fitting.txt") is None


# ---------------------------------------------------------------------------------------------
# The real EPIC Fitting.txt (PDI Berlin MBE8, 2023-06-12)
def test_real_fitting_gives_plausible_beps_and_activation_energies() -> None:
    result = calibration_file(REAL_DAY / "Fitting.txt", tool="MBE8")
    assert result.usable and not [f for f in result.findings if f.severity is Severity.ERROR]
    cells = {c.cell: c for c in result.calibrations}
    assert {"Ga", "In"} <= set(cells)
    ga, indium = cells["Ga"], cells["In"]
    # Coeff=4.614E00,-2.313E04: E = 2.313e4·k = 1.99 eV; In 2.201e4·k = 1.90 eV
    assert ga.activation_ev == pytest.approx(1.993, abs=0.001)
    assert indium.activation_ev == pytest.approx(1.897, abs=0.001)
    for cal in (ga, indium):
        assert 1.8 < cal.activation_ev < 2.8  # the range of real group-III cells (DESIGN: 2.2-2.65)
    beps = [ga.bep(t) for t in (900.0, 950.0, 1000.0)]
    assert beps == sorted(beps)
    assert 1e-8 < beps[0] < 1e-6 and 1e-7 < beps[-1] < 2e-6  # 2.8e-7 at 900 °C, 1.3e-6 at 1000
    assert 800 < ga.temperature_for(1e-7) < 900  # ~842 °C for 1e-7 Torr
    assert ga.bep_to_rate == 4926000.0 and ga.rate_ml_s(900.0) == pytest.approx(4926000.0 * beps[0])
    assert ga.taken_at == datetime(2023, 6, 12, tzinfo=UTC)  # the day in the folder name


# ---------------------------------------------------------------------------------------------
# Drift and the temperature that holds the flux
def test_drift_and_temperature_to_hold_on_synthetic_curves() -> None:
    before = calibration("Ga", 9.28, 2.65, T0)
    after = calibration("Ga", 9.28 + math.log(0.95), 2.65, T0 + timedelta(days=30))  # -5 % BEP
    assert flux_drift(before, after, 950.0) == pytest.approx(-0.05)
    hold = temperature_to_hold(before, after, 950.0)
    assert after.bep(950.0 + hold) == pytest.approx(before.bep(950.0))
    # linearised: ΔT ≈ -ln(1 + drift)/(E/kT²) ≈ 5.1 %/(2.1 %/°C)
    assert hold == pytest.approx(-math.log(0.95) / (after.percent_per_c(950.0) / 100), rel=0.01)
    assert 2.0 < hold < 3.0
    assert temperature_to_hold(after, before, 950.0) < 0  # refilled: lower the cell


def _scan_file(folder: Path, scan) -> Path:  # type: ignore[no-untyped-def]
    path = folder / scan.filename
    path.write_text(scan.to_tsv())
    return path


def test_drift_between_two_scans_of_a_depleting_twin_cell(tmp_path: Path) -> None:
    from epi_ml.twin.calibration import scan_cell
    from epi_ml.twin.state import initial_state
    from epi_ml.twin.tools import make_tool

    rng = np.random.default_rng(7)
    state = initial_state(make_tool("MBE1", 0, 7), rng)
    state.day_factors = {}  # depletion only, no day-to-day shift
    drifts = {}
    for cell in ("Ga", "In", "Al"):
        spec = state.spec.cells[cell]
        first = _scan_file(tmp_path, scan_cell(state, cell, T0, rng))
        factor_before = state.flux_factor(cell)
        state.cells[cell].used_g += 0.3 * spec.charge_g  # ~4-5 % of BEP at fixed temperature
        second = _scan_file(tmp_path, scan_cell(state, cell, T0 + timedelta(days=60), rng))
        expected = state.flux_factor(cell) / factor_before - 1
        a = fit_scan(read_calibration_table(first), tool="MBE1").calibration
        b = fit_scan(read_calibration_table(second), tool="MBE1").calibration
        assert a is not None and b is not None
        at = b.mid_range_c
        drift, hold = flux_drift(a, b, at), temperature_to_hold(a, b, at)
        drifts[cell] = (drift, hold)
        assert drift < 0 and drift == pytest.approx(expected, abs=0.015)
        assert hold > 0
        # consistent with the local slope (~2 %/°C for Ga): ΔT ≈ -drift / (dlnBEP/dT)
        assert hold == pytest.approx(-math.log(1 + drift) / (b.percent_per_c(at) / 100), rel=0.05)
    ga_drift, ga_hold = drifts["Ga"]
    assert 0.35 < ga_hold / (-100 * ga_drift) < 0.65  # °C per % of flux: ~0.5 at ~2 %/°C


def test_alert_fires_above_the_tolerance_and_not_below() -> None:
    base = calibration("Ga", 9.28, 2.65, T0)
    small = calibration("Ga", 9.28 + math.log(0.98), 2.65, T0 + timedelta(days=10))
    big = calibration("Ga", 9.28 + math.log(0.95), 2.65, T0 + timedelta(days=10))
    now = T0 + timedelta(days=14)
    assert drift_alerts([base, small], operating_c=950.0, tolerance=0.03, now=now) == []
    (alert,) = drift_alerts([base, big], operating_c=950.0, tolerance=0.03, now=now)
    assert alert.code == "calibration_drift" and alert.severity is Severity.WARNING
    for part in ("MBE1", "Ga", "5.0 %", "10.0 days", "+2.", "950.0 °C"):
        assert part in alert.message, part
    assert alert.hint.startswith("recalibrate Ga") and "4.0 days ago" in alert.hint
    assert alert.details["drift"] == pytest.approx(-0.05) and alert.details["hold_c"] > 0
    # only calibrations up to `now` count; per-cell operating temperatures work
    assert drift_alerts([base, big], operating_c=950.0, now=T0 + timedelta(days=5)) == []
    assert drift_alerts([base, big], operating_c={"Ga": 950.0}, tolerance=0.06, now=now) == []
    # a refill (flux up) is a drift too
    refill = calibration("Ga", 9.28 + math.log(1.12), 2.65, T0 + timedelta(days=20))
    (up,) = drift_alerts([base, big, refill], operating_c=950.0, now=T0 + timedelta(days=21))
    assert "rose" in up.message and up.details["hold_c"] < 0
    (alarm,) = as_alarms([alert])
    assert (alarm.tool_id, alarm.code, alarm.severity, alarm.channel) == (
        "MBE1", "calibration_drift", "warning", "Ga.T",
    )  # fmt: skip


def test_alert_on_a_depleted_twin_cell(tmp_path: Path) -> None:
    from epi_ml.twin.calibration import scan_cell
    from epi_ml.twin.state import initial_state
    from epi_ml.twin.tools import make_tool

    rng = np.random.default_rng(3)
    state = initial_state(make_tool("MBE1", 0, 3), rng)
    state.day_factors = {}
    scans = [_scan_file(tmp_path, scan_cell(state, "Ga", T0, rng))]
    state.cells["Ga"].used_g += 0.05 * state.spec.cells["Ga"].charge_g  # <1 %: no alert
    scans.append(_scan_file(tmp_path, scan_cell(state, "Ga", T0 + timedelta(days=4), rng)))
    history, _ = history_from_files(scans, tool="MBE1")
    assert drift_alerts(history, now=T0 + timedelta(days=5)) == []
    state.cells["Ga"].used_g += 0.4 * state.spec.cells["Ga"].charge_g  # ~-6 %
    scans.append(_scan_file(tmp_path, scan_cell(state, "Ga", T0 + timedelta(days=90), rng)))
    history, _ = history_from_files(scans, tool="MBE1")
    (alert,) = drift_alerts(history, now=T0 + timedelta(days=91))
    assert alert.details["drift"] < -0.03 and 2 < alert.details["hold_c"] < 5


# ---------------------------------------------------------------------------------------------
# The twin's campaign
@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from epi_ml.twin import simulate_campaign

    out = tmp_path_factory.mktemp("calibration") / "twin"
    simulate_campaign(out, runs=CAMPAIGN_RUNS, seed=CAMPAIGN_SEED, tools=CAMPAIGN_TOOLS)
    return out


@pytest.fixture(scope="module")
def truth(campaign: Path) -> dict:
    return json.loads((campaign / "manifest.json").read_text())["truth"]


def calibration_paths(campaign: Path) -> list[Path]:
    """What the history needs: every scan and every day folder's Fitting.txt."""
    paths: list[Path] = []
    for tool_dir in sorted(p for p in campaign.iterdir() if (p / "calibrations").is_dir()):
        paths += [tool_dir / "calibrations", *sorted((tool_dir / "logs").glob("*/Fitting.txt"))]
    return paths


def test_campaign_scans_recover_the_true_activation_energies(campaign: Path, truth: dict) -> None:
    history, results = history_from_files(calibration_paths(campaign))
    scans = history.filter(pl.col("source") == "scan")
    assert scans.height == sum(1 for c in truth["calibrations"] if c["source"] != "As")
    assert all(r.usable or r.skipped for r in results)
    errors = []
    for row in scans.iter_rows(named=True):
        true_e = truth["tools"][row["tool"]]["cells"][row["cell"]]["activation_energy_ev"]
        errors.append((row["tool"], row["cell"], row["activation_ev"] / true_e - 1))
        assert row["r2"] > 0.99 and row["rmse_ln"] < 0.03
    assert max(abs(e) for _, _, e in errors) < 0.05  # every single scan within 5 %
    for tool in truth["tools"]:
        for cell in ("Ga", "Al", "In"):
            mine = [e for t, c, e in errors if (t, c) == (tool, cell)]
            assert len(mine) >= 3 and abs(float(np.mean(mine))) < 0.02, (tool, cell, mine)
    # the fit is the one the twin's engineers made from the same scan (manifest, 6 digits)
    for entry in [c for c in truth["calibrations"] if c["source"] != "As"]:
        taken = datetime.fromisoformat(entry["started_at"]).replace(microsecond=0)
        row = scans.filter(
            (pl.col("tool") == entry["tool"])
            & (pl.col("cell") == entry["source"])
            & (pl.col("taken_at") == taken)
        )
        assert row.height == 1
        expected = entry["fit"]["activation_energy_ev"]
        assert row["activation_ev"][0] == pytest.approx(expected, rel=1e-5)


def test_campaign_drift_between_scans_tracks_the_true_flux_factor(
    campaign: Path, truth: dict
) -> None:
    history, _ = history_from_files(calibration_paths(campaign))
    calibrations = [CellCalibration.from_row(r) for r in history.iter_rows(named=True)]
    runs = sorted(truth["runs"], key=lambda r: r["start"])

    def true_factor(tool: str, cell: str, when: datetime) -> float | None:
        later = [r for r in runs if r["tool"] == tool and datetime.fromisoformat(r["start"]) > when]
        same_day = later and later[0]["start"][:10] == when.date().isoformat()
        return later[0]["flux_factor"][cell] if same_day else None

    compared = 0
    for d in drift_series(calibrations):
        before = true_factor(d.tool, d.cell, d.earlier.taken_at)
        after = true_factor(d.tool, d.cell, d.later.taken_at)
        if before and after:
            # depletion + the day's environment, read through ~1 % gauge noise
            assert d.drift == pytest.approx(after / before - 1, abs=0.02), d.to_dict()
            assert d.hold_c * d.drift < 0
            compared += 1
    assert compared >= 12


def test_history_from_the_store_and_the_calibration_in_force(
    campaign: Path, truth: dict, isolated_home: Path
) -> None:
    from epi_ml.ingest.batch import ingest_paths, open_context

    ctx = open_context()
    report = ingest_paths(ctx, calibration_paths(campaign), build=False)
    assert report.exit_code == 0
    history = calibration_history(ctx)
    assert history.columns[:4] == ["tool", "cell", "taken_at", "source"]
    assert history.equals(history.sort(["tool", "cell", "taken_at", "source"]))

    # expected rows, counted from the files: one per scan, one per change of a cell's Fitting
    n_scans = sum(1 for c in truth["calibrations"] if c["source"] != "As")
    changes = 0
    for tool in truth["tools"]:
        last: dict[str, tuple] = {}
        for path in sorted((campaign / tool / "logs").glob("*/Fitting.txt")):
            for cell, fitting in read_epic_fitting(path)[0].items():
                key = (fitting.coeffs, fitting.bep_to_flux)
                changes += last.get(cell) != key
                last[cell] = key
    assert history.filter(pl.col("source") == "scan").height == n_scans
    assert history.filter(pl.col("source") == "fitting").height == changes
    assert changes < sum(len(list((campaign / t / "logs").glob("*/Fitting.txt"))) * 5
                         for t in truth["tools"])  # fmt: skip  (identical days deduplicated)
    from_files, _ = history_from_files(calibration_paths(campaign))
    assert history.drop("file", "sha256").equals(from_files.drop("file", "sha256"))

    # the calibration in force at each run: the latest scan before it, BEPtoFlux of its day
    for run in truth["runs"]:
        start = datetime.fromisoformat(run["start"])
        in_force = latest_calibrations(history, run["tool"], start)
        for cell in ("Ga", "Al", "In"):
            scans = [c for c in truth["calibrations"]
                     if c["tool"] == run["tool"] and c["source"] == cell
                     and datetime.fromisoformat(c["started_at"]) <= start]  # fmt: skip
            expected = max(scans, key=lambda c: c["started_at"])
            cal = in_force[cell]
            assert cal.source == "scan" and cal.file
            assert cal.file.endswith(Path(expected["file"]).name)
            true_fit = expected["fit"]["activation_energy_ev"]
            assert cal.activation_ev == pytest.approx(true_fit, rel=1e-5)
            day = campaign / run["tool"] / "logs" / f"{start:%Y_%m_%d}" / "Fitting.txt"
            assert cal.bep_to_rate == read_epic_fitting(day)[0][cell].bep_to_flux
    # before the first scan of the campaign: the day's Fitting.txt stands in
    first = min(datetime.fromisoformat(c["started_at"]) for c in truth["calibrations"])
    early = latest_calibrations(history, "MBE1", first - timedelta(minutes=1))
    assert early["Ga"].source == "fitting" and early["Ga"].bep_to_rate
    assert latest_calibrations(history, "MBE1", first - timedelta(days=1)) == {}
    assert set(latest_calibrations(history, "MBE1")) >= {"Ga", "Al", "In", "Si", "Be"}

    # alerts over the stored history are consistent with the drifts, and can be stored
    now = max(history["taken_at"].to_list())
    alerts = drift_alerts(history, tolerance=0.03, now=now)
    latest_drift = {(d.tool, d.cell): d for d in drift_series(
        [CellCalibration.from_row(r) for r in history.iter_rows(named=True)])}  # fmt: skip
    assert {(a.details["tool"], a.details["cell"]) for a in alerts} == {
        key for key, d in latest_drift.items() if abs(d.drift) > 0.03
    }
    assert drift_alerts(history, tolerance=1.0, now=now) == []
    loud = drift_alerts(history, tolerance=0.0, now=now)
    assert len(loud) == len(latest_drift)
    from epi_ml.store import write_session

    with write_session(ctx.engine) as session:
        session.add_all(as_alarms(loud))


# ---------------------------------------------------------------------------------------------
# epi-ml calibrate
def test_cli_on_a_campaign_folder_and_the_real_fitting(campaign: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    folder = campaign / "MBE1" / "calibrations"
    done = runner.invoke(app, ["calibrate", str(folder)])
    assert done.exit_code == 0, done.output
    assert "MBE1   Ga" in done.output and "drift between consecutive calibrations" in done.output
    assert "hold" in done.output and "skipped (not Arrhenius)" in done.output

    done = runner.invoke(app, ["calibrate", str(folder), "--json", "--at", "980"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert {c["cell"] for c in report["calibrations"]} == {"Ga", "Al", "In"}
    assert all(d["at_c"] == 980.0 for d in report["drift"]) and report["drift"]

    done = runner.invoke(app, ["calibrate", str(REAL_DAY / "Fitting.txt"), "--tool", "MBE8"])
    assert done.exit_code == 0, done.output
    assert "MBE8   Ga" in done.output and "1.993" in done.output

    bad = write_scan(tmp_path, "2026-01-05_Ga.txt", [(1000, 3e-7, 3e-9)])
    done = runner.invoke(app, ["calibrate", str(bad), str(REAL_DAY / "Fitting.txt")])
    assert done.exit_code == 3 and "not used" in done.output and "too_few_points" in done.output
    assert runner.invoke(app, ["calibrate", str(tmp_path / "nope.txt")]).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["calibrate", str(empty)]).exit_code == 2
