"""`epi-ml calibrate FILE...`: Arrhenius fits of calibration scans and Fitting.txt files, per cell,
with the drift between consecutive calibrations of the same cell and the ΔT that holds the flux.

Folders are walked for scans (`YYYY-MM-DD_HH-MM-SS_<cell>.txt`) and Fitting.txt files; other
files in them are left out. Exit status: 0 every file used (valved As/Sb scans are skipped, not
errors), 3 a file could not be used (the reasons are printed), 2 usage errors (a path that does
not exist, nothing to read).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import typer

EXIT_OK, EXIT_UNUSABLE = 0, 3  # usage errors: 2 (epi_ml.cli_common)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)


def calibrate(
    paths: list[Path] = typer.Argument(..., help="Calibration scans, Fitting.txt files, folders."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    tool: str | None = typer.Option(
        None, help="The tool of every file (default: what the folders say, <tool>/calibrations)."
    ),
    at: float | None = typer.Option(
        None, "--at", help="Cell temperature (°C) for BEP and drift (default: mid-range)."
    ),
    tz: str | None = typer.Option(
        None, help="Time zone of the dates in file and folder names (default: tools.yaml, UTC)."
    ),
    tolerance: float = typer.Option(
        0.03, help="Relative BEP change between a cell's last two calibrations that alerts."
    ),
) -> None:
    """Per cell: activation energy, prefactor, fit quality, BEP, and drift between dates."""
    from epi_ml.calibration.cells import CellCalibration, drift_alerts, drift_series
    from epi_ml.cli_common import require_paths, usage_error
    from epi_ml.calibration.history import calibrations_from_files, dedupe_fittings, history_frame
    from epi_ml.ingest.tools import ToolConfigError, load_tool_configs
    from epi_ml.readers.timestamps import check_timezone
    from epi_ml.settings import get_settings

    require_paths(paths)
    try:
        if tz:
            check_timezone(tz)
        zones = {name: c.timezone for name, c in load_tool_configs(get_settings().home).items()}
    except (ValueError, ToolConfigError) as exc:
        usage_error(str(exc))
    results = calibrations_from_files(paths, tool=tool, tz=tz, timezones=zones)
    if not results:
        usage_error("no calibration scan or Fitting.txt in the given paths")
    frame = history_frame(dedupe_fittings(c for r in results for c in r.calibrations))
    calibrations = [CellCalibration.from_row(row) for row in frame.iter_rows(named=True)]
    drifts = drift_series(calibrations, at)
    alerts = drift_alerts(calibrations, operating_c=at, tolerance=tolerance, now=datetime.now(UTC))
    unusable = [r for r in results if not r.usable and not r.skipped]
    code = EXIT_UNUSABLE if unusable else EXIT_OK

    if as_json:
        report = {
            "exit_code": code,
            "calibrations": [
                c.to_dict() | {"at_c": t, "bep_torr_at": c.bep(t)}
                for c in calibrations
                for t in [at if at is not None else c.mid_range_c]
            ],
            "drift": [d.to_dict() for d in drifts],
            "alerts": [f.to_dict() for f in alerts],
            "files": [
                {
                    "path": r.path,
                    "kind": r.kind,
                    "usable": r.usable,
                    "skipped": r.skipped,
                    "cells": [c.cell for c in r.calibrations],
                    "findings": [f.to_dict() for f in r.findings],
                }
                for r in results
            ],
        }
        typer.echo(json.dumps(report, indent=2, default=str))
        raise typer.Exit(code)

    if calibrations:
        typer.echo(
            f"{'tool':<6} {'cell':<5} {'taken at (UTC)':<16} {'source':<7} {'E (eV)':>7} "
            f"{'a':>8} {'r²':>8} {'rmse':>7} {'pts':>3} {'range °C':>11}  BEP at T"
        )
    else:
        typer.echo("no usable calibration in these files")
    for c in calibrations:
        t = at if at is not None else c.mid_range_c
        span = f"{c.t_min_c:.0f}-{c.t_max_c:.0f}" if c.t_min_c is not None else "-"
        rate = f"  rate {c.rate_ml_s(t):.3f} ML/s" if c.bep_to_rate is not None else ""
        typer.echo(
            f"{c.tool or '-':<6} {c.cell:<5} {_when(c.taken_at):<16} {c.source:<7} "
            f"{c.activation_ev:>7.3f} {c.ln_prefactor:>8.3f} {_num(c.r2, '.5f'):>8} "
            f"{_pct(c.rmse_ln):>7} {c.n_points or '-':>3} {span:>11}  "
            f"{c.bep(t):.3e} Torr at {t:.1f} °C ({c.percent_per_c(t):.2f} %/°C){rate}"
        )
    if drifts:
        typer.echo("\ndrift between consecutive calibrations (BEP at T; ΔT that holds the flux):")
        for d in drifts:
            days = f"{d.days:.1f} d" if d.days is not None else "? d"
            typer.echo(
                f"  {d.tool or '-':<6} {d.cell:<5} {_when(d.earlier.taken_at)[:10]} -> "
                f"{_when(d.later.taken_at)[:10]} ({days:>6}) at {d.at_c:.1f} °C: "
                f"{100 * d.drift:+6.2f} %  hold {d.hold_c:+.2f} °C"
            )
    for finding in alerts:
        typer.echo(f"\nALERT {finding.message}\n  {finding.hint}")
    skipped = [r for r in results if r.skipped]
    if skipped:
        typer.echo(f"\nskipped (not Arrhenius): {', '.join(Path(r.path).name for r in skipped)}")
    warned = [r for r in results if r.usable and r.reasons]
    for r in warned:
        typer.echo(f"\nnotes on {r.path}:")
        for reason in r.reasons:
            typer.echo(f"  {reason}")
    for r in unusable:
        typer.echo(f"\nnot used: {r.path}")
        for reason in r.reasons or ["no usable calibration in the file"]:
            typer.echo(f"  {reason}")
    raise typer.Exit(code)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "undated"


def _num(value: float, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, fmt)


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f} %"
