"""Cell calibration tracking: Arrhenius flux fits per cell and tool, their history, drift between
calibrations (depletion), the set-point change that holds a flux, and drift alerts.

Public API (method and numbers in docs/calibration.md):

    CellCalibration(tool, cell, taken_at, source, activation_ev, ln_prefactor, r2, rmse_ln,
                    n_points, t_min_c, t_max_c, bep_to_rate, file, sha256)
        .bep(T_C) -> Torr, .temperature_for(bep) -> °C, .rate_ml_s(T_C) -> ML/s | None,
        .temperature_for_rate(ml_s) -> °C, .percent_per_c(T_C), .mid_range_c, .to_dict(),
        CellCalibration.from_row(history_row)
    fit_scan(table: CalibrationTable, *, tool=None, use_background=True) -> ScanFit
        ScanFit(calibration | None, findings); .ok, .reason
    from_fitting(fitting: EpicFitting, *, tool, valid_from) -> CellCalibration   (ValueError
        for a non-AEF / higher-order fit); fitting_calibrations(fittings, ...) screens a file
    flux_drift(earlier, later, at_c) -> relative BEP change at at_c
    temperature_to_hold(earlier, later, at_c) -> °C that brings the later curve to the earlier BEP
    drift_between(earlier, later, at_c=None) -> Drift; drift_series(calibrations, at_c) -> [Drift]
    drift_alerts(history, *, operating_c=None, tolerance=0.03, now=None) -> [Finding]
        ("calibration_drift", WARNING)
    calibration_history(ctx) -> polars.DataFrame (HISTORY_SCHEMA), from the store
    history_from_files(paths, *, tool=None, tz=None) -> (DataFrame, [FileCalibrations])
    calibrations_from_files(paths, ...) -> [FileCalibrations]; calibration_file(path, tool=, tz=)
    latest_calibrations(history, tool, at=None) -> {cell: CellCalibration}   (in force at `at`)
    fitting_valid_from(path, tz) -> datetime | None   (a Fitting.txt's day folder, 00:00 local)
    as_alarms(findings) -> [Alarm]   (unsaved store rows)
    record_drift_alarms(ctx, history, tolerance=0.03) -> [Finding]   (stored once as alarms)

The physics baseline that predicts layers from these calibrations is `epi_ml.baseline`.
"""

from epi_ml.calibration.cells import (
    CellCalibration,
    Drift,
    ScanFit,
    drift_alerts,
    drift_between,
    drift_series,
    fit_scan,
    fitting_calibrations,
    flux_drift,
    from_fitting,
    temperature_to_hold,
)
from epi_ml.calibration.history import (
    HISTORY_SCHEMA,
    FileCalibrations,
    as_alarms,
    calibration_file,
    calibration_history,
    calibrations_from_files,
    collect_calibrations,
    dedupe_fittings,
    fitting_valid_from,
    history_frame,
    history_from_files,
    latest_calibrations,
    record_drift_alarms,
    tool_in_path,
)

__all__ = [
    "HISTORY_SCHEMA",
    "CellCalibration",
    "Drift",
    "FileCalibrations",
    "ScanFit",
    "as_alarms",
    "calibration_file",
    "calibration_history",
    "calibrations_from_files",
    "collect_calibrations",
    "dedupe_fittings",
    "drift_alerts",
    "drift_between",
    "drift_series",
    "fit_scan",
    "fitting_calibrations",
    "fitting_valid_from",
    "flux_drift",
    "from_fitting",
    "history_frame",
    "history_from_files",
    "latest_calibrations",
    "record_drift_alarms",
    "temperature_to_hold",
    "tool_in_path",
]
