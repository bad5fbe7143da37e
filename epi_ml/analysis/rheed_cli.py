"""`epi-ml rheed FILE`: growth rate from the RHEED specular-intensity oscillations in a file.

FILE is a RHEED intensity export (time + one or more intensity windows), a wide CSV/Parquet with
a RHEED.I column (the twin's `<run>_rheed.csv`), or an EPIC `RHEED.Spec.MV.txt` channel log.
`--start/--end` cut the window (seconds on the file's time axis: an export's own seconds, or from
the first sample of a file with absolute times; or ISO times);
`--messages` takes the run's recipe messages and gives one estimate per growth layer.

Exit status: 0 a rate was found, 1 no oscillation anywhere, 2 usage errors (no such file, a file
the readers cannot use: their findings are printed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from epi_ml.analysis.rheed import RheedEstimate
    from epi_ml.findings import Finding
    from epi_ml.readers import RheedTrace

EXIT_RATE, EXIT_NO_OSCILLATION, EXIT_USAGE = 0, 1, 2


def register(app: typer.Typer) -> None:
    app.command("rheed")(rheed)


class UsageError(Exception):
    """What the user has to fix; printed, exit status 2."""

    def __init__(self, message: str, findings: list[Finding] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


@dataclass
class Series:
    """One intensity trace: seconds from `origin` (absolute, UTC; None when the file has no
    clock) and values; `rpm` the wafer rotation logged alongside, when the file has it."""

    name: str
    seconds: np.ndarray
    values: np.ndarray
    origin: datetime | None
    rpm: tuple[np.ndarray, np.ndarray] | None = None  # seconds, rpm


@dataclass
class Window:
    label: str
    start_s: float | None
    end_s: float | None
    material: str
    x: float | None
    layer: dict[str, Any] | None = None


def rheed(
    file: Path = typer.Argument(
        ...,
        help="RHEED export (time + intensity columns), wide CSV/Parquet with a RHEED.I column, "
        "or an EPIC RHEED.Spec.MV.txt log.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    start: str | None = typer.Option(
        None, "--start", help="Window start: seconds on the file's time axis, or an ISO time."
    ),
    end: str | None = typer.Option(
        None, "--end", help="Window end: seconds on the file's time axis, or an ISO time."
    ),
    material: str = typer.Option(
        "GaAs", "--material", help="What grows: GaAs, AlAs, InAs, AlGaAs, InGaAs (ML thickness)."
    ),
    x: float | None = typer.Option(None, "--x", help="Composition of an AlGaAs/InGaAs layer."),
    channel: str = typer.Option("RHEED.I", "--channel", help="Channel of a wide file."),
    window: str | None = typer.Option(
        None, "--window", help="One intensity window (column) of an export; default all."
    ),
    rpm: float | None = typer.Option(
        None, "--rpm", help="Wafer rotation, rpm (a wide file's sub.rpm is used otherwise)."
    ),
    messages: Path | None = typer.Option(
        None,
        "--messages",
        help="The run's recipe messages (<run>_messages.csv or EPIC Messages.txt): one estimate "
        "per growth layer.",
    ),
    method: str = typer.Option("damped_sine", "--method", help="damped_sine or fft."),
    tz: str = typer.Option("UTC", "--tz", help="Time zone of times written without one."),
) -> None:
    """Growth rate (ML/s, nm/s, µm/h) from RHEED specular-intensity oscillations."""
    from epi_ml.analysis.rheed import estimate_growth_rate
    from epi_ml.physics import monolayer_thickness_nm

    try:
        if method not in ("damped_sine", "fft"):
            raise UsageError(f"--method must be damped_sine or fft, not {method!r}")
        traces, notes = load_traces(file, channel=channel, window=window, tz=tz)
        if messages is not None:
            windows = layer_windows(messages, traces, material, x, tz)
        else:
            begin, finish = _seconds(start, traces, "--start"), _seconds(end, traces, "--end")
            windows = [Window("", begin, finish, material, x)]
        for w in windows:
            if w.material in ("AlGaAs", "InGaAs") and w.x is None:
                raise UsageError(f"{w.material} needs its composition: give --x")
            monolayer_thickness_nm(w.material, w.x or 0.0)  # an unknown material fails here
    except UsageError as exc:
        for finding in exc.findings:
            typer.echo(f"  {finding}", err=True)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc

    results = []
    for trace in traces:
        for w in windows:
            keep = _inside(trace.seconds, w.start_s, w.end_s)
            estimate = estimate_growth_rate(
                trace.seconds[keep],
                trace.values[keep],
                monolayer_nm=float(monolayer_thickness_nm(w.material, w.x or 0.0)),
                rotation_rpm=rpm if rpm is not None else _median_rpm(trace, w),
                method=method,  # type: ignore[arg-type]
            )
            results.append((trace, w, estimate))
    found = any(estimate.oscillating for _, _, estimate in results)
    if as_json:
        typer.echo(json.dumps(_report(file, results, notes), indent=2, default=str))
    else:
        for finding in notes:
            typer.echo(f"  {finding}", err=True)
        for trace, w, estimate in results:
            _print(trace, w, estimate)
    raise typer.Exit(EXIT_RATE if found else EXIT_NO_OSCILLATION)


# ---------------------------------------------------------------------------------------------
def load_traces(
    path: Path, *, channel: str = "RHEED.I", window: str | None = None, tz: str = "UTC"
) -> tuple[list[Series], list[Finding]]:
    """The intensity traces in `path` and the readers' non-fatal findings; UsageError when the
    file cannot be used."""
    import polars as pl

    from epi_ml.findings import has_errors
    from epi_ml.readers import (
        UnknownFormat,
        detect_format,
        read_epic_channel,
        read_rheed_export,
        read_wide,
    )

    if not path.exists():
        raise UsageError(f"no such file: {path}")
    try:
        kind = detect_format(path)
    except UnknownFormat as exc:
        raise UsageError(str(exc)) from exc
    wide = read_wide(path, tz=tz) if kind in ("wide_csv", "wide_parquet") else None
    if kind == "wide_csv" and wide is not None and not wide.ok:
        # `time,counts` with seconds from the start is an export whose columns are not named
        # like intensities: the RHEED reader takes what the sensor reader cannot place in time
        export = read_rheed_export(path, tz=tz)
        if export.ok and export.windows and export.frame.height:
            return _export_series(path, export, window), _notes(export.findings)
    if kind == "rheed":
        export = read_rheed_export(path, tz=tz)
        if has_errors(export.findings) or export.frame.height == 0:
            raise UsageError(f"{path}: no usable RHEED trace", export.findings)
        return _export_series(path, export, window), _notes(export.findings)
    no_rotation = pl.DataFrame(schema={"time": pl.Datetime("us", "UTC"), "value": pl.Float64})
    if kind == "epic_channel":
        log = read_epic_channel(path, tz=tz)
        findings, name = log.findings, log.tag
        samples, rotation = log.frame.select("time", "value"), no_rotation
    elif wide is not None:
        findings, name = wide.findings, channel
        samples = wide.sensors.filter(pl.col("channel") == channel).select("time", "value")
        rotation = wide.sensors.filter(pl.col("channel") == "sub.rpm").select("time", "value")
        if wide.ok and samples.height == 0:
            present = sorted(set(wide.sensors.get_column("channel").to_list()))
            raise UsageError(
                f"{path}: no {channel} column (channels: {', '.join(present) or 'none'}); "
                "pick one with --channel"
            )
    else:
        raise UsageError(
            f"{path}: holds {kind.replace('_', ' ')}, not an intensity trace (give a RHEED "
            "export, a wide file with a RHEED.I column or an EPIC RHEED.Spec.MV.txt log)"
        )
    if has_errors(findings) or samples.height == 0:
        raise UsageError(f"{path}: no usable intensity trace", findings)
    samples = samples.drop_nulls().sort("time")
    origin: datetime = samples.get_column("time")[0]
    rpm = None
    if rotation.height:
        rotation = rotation.drop_nulls().sort("time")
        rpm = (_seconds_from(rotation, origin), rotation.get_column("value").to_numpy())
    values = samples.get_column("value").to_numpy().astype(float)
    return [Series(name, _seconds_from(samples, origin), values, origin, rpm)], _notes(findings)


def _export_series(path: Path, export: RheedTrace, window: str | None) -> list[Series]:
    names = export.windows
    if window is not None:
        if window not in names:
            raise UsageError(f"{path}: no window {window!r}; it has {', '.join(names)}")
        names = [window]
    series = []
    for name in names:
        rows = export.frame.select("time_s", name).drop_nulls()
        series.append(
            Series(
                name,
                rows.get_column("time_s").to_numpy().astype(float),
                rows.get_column(name).to_numpy().astype(float),
                export.started_at,
            )
        )
    return series


def _seconds_from(frame: pl.DataFrame, origin: datetime) -> np.ndarray:
    import polars as pl

    offset = frame.select((pl.col("time") - pl.lit(origin)).dt.total_microseconds() / 1e6)
    return offset.to_series().to_numpy().astype(float)


def layer_windows(
    path: Path, traces: list[Series], material: str, x: float | None, tz: str
) -> list[Window]:
    """One window per growth layer of the recipe messages in `path`."""
    from epi_ml.ingest.segment import segment_tool_logs
    from epi_ml.readers import read_any

    if not path.exists():
        raise UsageError(f"no such file: {path}")
    origin = traces[0].origin
    if origin is None:
        raise UsageError("the trace has no clock: its samples cannot be matched to layers")
    read = read_any(path, tz=tz)
    frame = getattr(read, "frame", None)
    if frame is None or "message" not in frame.columns or not getattr(read, "ok", False):
        raise UsageError(f"{path}: not a message log", list(getattr(read, "findings", [])))
    windows = []
    for run in segment_tool_logs("tool", frame):
        for layer in run.layers:
            if layer.kind != "layer" or layer.end is None:
                continue
            known = layer.material in ("GaAs", "AlAs", "InAs", "AlGaAs", "InGaAs")
            windows.append(
                Window(
                    f"layer {layer.index} {layer.material}"
                    + (f" ({layer.label})" if layer.label else ""),
                    (layer.start - origin).total_seconds(),
                    (layer.end - origin).total_seconds(),
                    layer.material if known else material,
                    layer.target_composition if known else x,
                    {"run_id": run.run_id, **layer.to_dict()},
                )
            )
    if not windows:
        raise UsageError(f"{path}: no growth layer ('Layer <k> start <material>' ... 'end')")
    return windows


def _notes(findings: list[Finding]) -> list[Finding]:
    from epi_ml.findings import Severity

    return [f for f in findings if f.severity is not Severity.INFO]


def _seconds(text: str | None, traces: list[Series], option: str) -> float | None:
    """`--start`/`--end`: seconds on the trace's axis (an export's own, else from its first
    sample), or an ISO time."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: neither seconds nor an ISO time") from exc
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    origin = traces[0].origin
    if origin is None:
        raise UsageError(f"{option} as a time needs a trace with a clock; give seconds")
    return (moment - origin).total_seconds()


def _inside(seconds: np.ndarray, start: float | None, end: float | None) -> np.ndarray:
    import numpy as np

    keep = np.ones(len(seconds), dtype=bool)
    if start is not None:
        keep &= seconds >= start
    if end is not None:
        keep &= seconds < end
    return keep


def _median_rpm(trace: Series, window: Window) -> float | None:
    import numpy as np

    if trace.rpm is None:
        return None
    seconds, values = trace.rpm
    inside = _inside(seconds, window.start_s, window.end_s) & np.isfinite(values)
    return float(np.median(values[inside])) if inside.any() else None


def _span(trace: Series, window: Window) -> str:
    keep = _inside(trace.seconds, window.start_s, window.end_s)
    if not keep.any():
        return "no samples"
    first, last = trace.seconds[keep][[0, -1]]
    return f"{first:.1f}-{last:.1f} s, {int(keep.sum())} samples"


def _print(trace: Series, window: Window, estimate: RheedEstimate) -> None:
    title = " ".join(part for part in (trace.name, window.label) if part)
    typer.echo(f"{title} [{_span(trace, window)}]")
    if not estimate.oscillating:
        typer.echo(f"  no oscillation: {estimate.reason}")
    else:
        assert estimate.rate_ml_s is not None and estimate.rate_nm_s is not None
        sigma = estimate.uncertainty_ml_s or 0.0
        typer.echo(
            f"  rate    {estimate.rate_ml_s:.4f} ± {sigma:.4f} ML/s = "
            f"{estimate.rate_nm_s:.4f} ± {estimate.uncertainty_nm_s or 0.0:.4f} nm/s = "
            f"{estimate.rate_um_h:.3f} µm/h ({window.material}, "
            f"{estimate.monolayer_nm:.5f} nm/ML)"
        )
        quality = estimate.quality
        extras = ", ".join(
            f"{label} {quality[key]:{fmt}}"
            for key, label, fmt in (("r2", "R²", ".3f"), ("snr", "SNR", ".0f"))
            if key in quality and math.isfinite(quality[key])
        )
        typer.echo(
            f"  period  {estimate.period_s:.3f} s, {estimate.n_periods:.1f} periods, "
            f"{estimate.method}{f' ({extras})' if extras else ''}"
        )
    for warning in estimate.warnings:
        typer.echo(f"  warning: {warning}")


def _report(
    path: Path, results: list[tuple[Series, Window, RheedEstimate]], notes: list[Finding]
) -> dict[str, Any]:
    return {
        "file": str(path),
        "oscillating": any(e.oscillating for _, _, e in results),
        "results": [
            {
                "window": trace.name,
                "layer": window.layer,
                "material": window.material,
                "x": window.x,
                "start_s": window.start_s,
                "end_s": window.end_s,
                **estimate.to_dict(),
            }
            for trace, window, estimate in results
        ],
        "findings": [f.to_dict() for f in notes],
    }
