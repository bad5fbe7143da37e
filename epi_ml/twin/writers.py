"""Write runs the way tools write them: EPIC per-channel day files, or wide CSV / Parquet per run.

EPIC (`<tool>/logs/<YYYY_MM_DD>/`), exactly like the real day in shared/data:
- `<tag>.txt`: `'EPIC <tag> Log File`, blank line, `'Date,<tag>`, then rows
  `DD/MM/YYYY HH:MM:SS.fff,value`
  rows, CRLF; appended run after run, split at midnight UTC;
- `Shutters.txt`: one row per shutter change with the state of every shutter (1 = open);
- `Messages.txt`: `Date&Time,CallerID,Message,Color` (recipe run/layer boundaries, wafer transfers);
- `Fitting.txt`: the tool's current Arrhenius fits, `Coeff=a,b` with ln(BEP) = a + b/T.
Wide (`<tool>/logs/<run_id>.csv|parquet`): `time` + one column per canonical channel at the
logger's passes (empty = no reading), shutters as 0/1 columns; RHEED (faster clock) in
`<run_id>_rheed.*` and the recipe messages in `<run_id>_messages.*`.

Writers append time windows of a run, so the live mode and the batch campaign share one code path:
the batch writes the whole run as one window, the live mode a window per tick.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import polars as pl

from epi_ml.physics import ArrheniusFit
from epi_ml.twin.calibration import CalibrationScan
from epi_ml.twin.formats import (
    MS_PER_DAY,
    day_of_ms,
    epic_coefficient,
    epic_rows,
    epic_timestamp_ms,
    quantize,
)
from epi_ml.twin.logged import (
    LOGGED,
    RHEED,
    SHUTTER_COLUMNS,
    SHUTTER_NAMES,
    LoggedChannel,
    shutter_channel,
)
from epi_ml.twin.measurements import Measurement
from epi_ml.twin.run import RunTrace
from epi_ml.twin.state import ToolState

MESSAGE_COLOR = "-16777216"  # black, as in the real Messages.txt
MESSAGES_HEADER = b"'EPIC Message Log File\r\n\r\n'Date&Time,CallerID,Message,Color\r\n"
FORMATS = ("epic", "csv", "parquet")


class RunWriter(Protocol):
    def begin_run(self, trace: RunTrace, state: ToolState) -> None: ...

    def write_window(self, trace: RunTrace, t0: float, t1: float) -> None: ...

    def write_message(self, trace: RunTrace, at: float, caller: str, text: str) -> None: ...

    def end_run(self, trace: RunTrace) -> None: ...

    def run_files(self, trace: RunTrace) -> list[tuple[Path, int]]: ...

    def write_tool_message(self, at: datetime, caller: str, text: str) -> Path: ...


def make_writer(fmt: str, tool_dir: Path) -> RunWriter:
    if fmt == "epic":
        return EpicWriter(tool_dir)
    if fmt in ("csv", "parquet"):
        return WideWriter(tool_dir, fmt)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_run(writer: RunWriter, trace: RunTrace, state: ToolState) -> None:
    writer.begin_run(trace, state)
    writer.write_window(trace, -np.inf, np.inf)
    writer.end_run(trace)


def stamp_run_files(writer: RunWriter, trace: RunTrace) -> None:
    """Give the run's files the modification time the tool's logger would have left: when it
    last wrote to them. A campaign is written in seconds; what reads landing/ (the landing
    sensor, the live tailer) must see the logs of weeks past, not files being written now."""
    for path, epoch_ms in writer.run_files(trace):
        if path.exists():
            os.utime(path, ns=(epoch_ms * 1_000_000, epoch_ms * 1_000_000))


def _append(path: Path, header: bytes, payload: bytes) -> None:
    if not payload:
        return
    new = not path.exists()
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        if new:
            f.write(header)
        f.write(payload)


def shutter_states(trace: RunTrace) -> list[tuple[float, tuple[int, ...]]]:
    """(time, state of every shutter) after each commanded change; simultaneous changes make
    one row."""
    state = dict.fromkeys(SHUTTER_NAMES, 0)
    rows: list[tuple[float, tuple[int, ...]]] = []
    for at, name, is_open in sorted(trace.plan.shutter_events, key=lambda e: e[0]):
        state[name] = int(is_open)
        snapshot = tuple(state[n] for n in SHUTTER_NAMES)
        if rows and abs(rows[-1][0] - at) < 1e-6:
            rows[-1] = (at, snapshot)
        else:
            rows.append((at, snapshot))
    return rows


def fitting_text(state: ToolState) -> str:
    """Fitting.txt: group-III cells from the latest calibration scans (BEPtoFlux in ML/s per Torr),
    dopant cells with their nominal curves (not scanned: their BEP is below the gauge)."""
    fits = dict(state.belief.fits)
    for name, cell in state.spec.cells.items():
        fits.setdefault(name, ArrheniusFit(cell.ln_prefactor, cell.activation_ev, 1.0, 0))
    sections = ["'EPIC Fitting Config File", ""]
    for source, fit in fits.items():
        a, b = fit.epic_coefficients
        bep_to_flux = (
            round(state.belief.flux_per_torr[source]) if source in state.belief.flux_per_torr else 1
        )
        sections += [
            f"# {source}",
            "Fit=AEF",
            "Order=1",
            f"BEPtoFlux={bep_to_flux}",
            f"Coeff={epic_coefficient(a)},{epic_coefficient(b)}",
            "",
        ]
    return "\r\n".join(sections) + "\r\n"


class EpicWriter:
    def __init__(self, tool_dir: Path):
        self.logs = tool_dir / "logs"
        self._shutters: list[tuple[float, tuple[int, ...]]] = []

    def day_dir(self, epoch_ms: int) -> Path:
        return self.logs / f"{day_of_ms(epoch_ms):%Y_%m_%d}"

    def begin_run(self, trace: RunTrace, state: ToolState) -> None:
        self._shutters = shutter_states(trace)
        text = fitting_text(state).encode()
        first = int(trace.epoch_ms(np.array([0.0]))[0])
        last = int(trace.epoch_ms(np.array([trace.plan.duration_s]))[0])
        for day_ms in range(first - first % MS_PER_DAY, last + 1, MS_PER_DAY):
            folder = self.day_dir(day_ms)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "Fitting.txt").write_bytes(text)

    def write_window(self, trace: RunTrace, t0: float, t1: float) -> None:
        for channel in LOGGED:
            self._samples(
                channel,
                trace.log_t,
                trace.values[channel.name],
                trace,
                t0,
                t1,
                trace.log_offsets_ms[channel.name],
            )
        self._samples(RHEED, trace.rheed_t, trace.rheed, trace, t0, t1, 0)
        self._shutter_rows(trace, t0, t1)
        self._message_rows(trace, t0, t1)

    def end_run(self, trace: RunTrace) -> None:
        self._shutters = []

    def run_files(self, trace: RunTrace) -> list[tuple[Path, int]]:
        """Every file of the day folders the run wrote to, with the run's last moment in that
        day (its end, or the day's end for a day it ran through)."""
        first = int(trace.epoch_ms(np.array([0.0]))[0])
        last = int(trace.epoch_ms(np.array([trace.plan.duration_s]))[0])
        files = []
        for day_ms in range(first - first % MS_PER_DAY, last + 1, MS_PER_DAY):
            until = min(last, day_ms + MS_PER_DAY - 1)
            folder = self.day_dir(day_ms)
            files += [(p, until) for p in folder.iterdir()] if folder.is_dir() else []
        return files

    def _samples(
        self,
        channel: LoggedChannel,
        t: np.ndarray,
        values: np.ndarray,
        trace: RunTrace,
        t0: float,
        t1: float,
        offset_ms: int,
    ) -> None:
        keep = (t >= t0) & (t < t1) & np.isfinite(values)
        if not keep.any():
            return
        ms = trace.epoch_ms(t[keep], offset_ms)
        v = values[keep]
        header = f"'EPIC {channel.tag} Log File\r\n\r\n'Date,{channel.tag}\r\n".encode()
        for i0, i1, day_ms in _split_days(ms):
            _append(
                self.day_dir(day_ms) / f"{channel.tag}.txt",
                header,
                epic_rows(ms[i0:i1], v[i0:i1], channel.fmt),
            )

    def _shutter_rows(self, trace: RunTrace, t0: float, t1: float) -> None:
        header = (
            "'EPIC Shutter Log File\r\n\r\n'Date&Time," + ",".join(SHUTTER_COLUMNS) + "\r\n"
        ).encode()
        for at, state in self._shutters:
            if t0 <= at < t1:
                ms = int(trace.epoch_ms(np.array([at]))[0])
                row = f"{epic_timestamp_ms(ms)},{','.join(map(str, state))}\r\n".encode()
                _append(self.day_dir(ms) / "Shutters.txt", header, row)

    def _message_rows(self, trace: RunTrace, t0: float, t1: float) -> None:
        for at, caller, text in trace.plan.messages:
            if t0 <= at < t1:
                self.write_message(trace, at, caller, text)

    def write_message(self, trace: RunTrace, at: float, caller: str, text: str) -> None:
        ms = int(trace.epoch_ms(np.array([at]))[0])
        self._message_at(ms, caller, text)

    def write_tool_message(self, at: datetime, caller: str, text: str) -> Path:
        """A message outside any run (maintenance), in the day's Messages.txt."""
        return self._message_at(int(at.timestamp() * 1000), caller, text)

    def _message_at(self, ms: int, caller: str, text: str) -> Path:
        row = f"{epic_timestamp_ms(ms)},{caller},{text},{MESSAGE_COLOR}\r\n".encode()
        path = self.day_dir(ms) / "Messages.txt"
        _append(path, MESSAGES_HEADER, row)
        return path


def _split_days(ms: np.ndarray) -> Iterable[tuple[int, int, int]]:
    days = ms // MS_PER_DAY
    bounds = np.flatnonzero(np.diff(days)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(ms)]])
    for i0, i1 in zip(starts, stops, strict=True):
        yield int(i0), int(i1), int(ms[i0])


class WideWriter:
    """One file per run: `time` + canonical channels, as most tools export."""

    def __init__(self, tool_dir: Path, fmt: str):
        self.logs = tool_dir / "logs"
        self.fmt = fmt

    def begin_run(self, trace: RunTrace, state: ToolState) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)

    def path(self, trace: RunTrace, suffix: str = "") -> Path:
        return self.logs / f"{trace.run_id}{suffix}.{self.fmt}"

    def run_files(self, trace: RunTrace) -> list[tuple[Path, int]]:
        last = int(trace.epoch_ms(np.array([trace.plan.duration_s]))[0])
        return [(self.path(trace, suffix), last) for suffix in ("", "_rheed", "_messages")]

    def write_tool_message(self, at: datetime, caller: str, text: str) -> Path:
        """A message outside any run (maintenance), in `logs/<date>_messages.<fmt>`."""
        path = self.logs / f"{at:%Y-%m-%d}_messages.{self.fmt}"
        row = pl.DataFrame(
            {"time": [at], "caller": [caller], "message": [text]},
            schema={"time": pl.Datetime("ms", "UTC"), "caller": pl.String, "message": pl.String},
        )
        if path.exists():
            row = pl.concat([pl.read_parquet(path) if self.fmt == "parquet" else
                             pl.read_csv(path, try_parse_dates=True).cast(row.schema), row])  # fmt: skip
        self._write(path, row)
        return path

    def write_window(self, trace: RunTrace, t0: float, t1: float) -> None:
        keep = (trace.log_t >= t0) & (trace.log_t < t1)
        rheed_keep = (trace.rheed_t >= t0) & (trace.rheed_t < t1)
        messages = [m for m in trace.plan.messages if t0 <= m[0] < t1]
        self._write(self.path(trace), wide_frame(trace, keep))
        self._write(
            self.path(trace, "_rheed"),
            pl.DataFrame(
                {
                    "time": _times(trace, trace.rheed_t[rheed_keep]),
                    RHEED.name: quantize(trace.rheed[rheed_keep], RHEED.fmt),
                }
            ),
        )
        if messages:
            self._write(
                self.path(trace, "_messages"),
                pl.DataFrame(
                    {
                        "time": _times(trace, np.array([m[0] for m in messages])),
                        "caller": [m[1] for m in messages],
                        "message": [m[2] for m in messages],
                    }
                ),
            )

    def write_message(self, trace: RunTrace, at: float, caller: str, text: str) -> None:
        self._write(
            self.path(trace, "_messages"),
            pl.DataFrame(
                {"time": _times(trace, np.array([at])), "caller": [caller], "message": [text]}
            ),
        )

    def end_run(self, trace: RunTrace) -> None:
        pass

    def _write(self, path: Path, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self.fmt == "parquet":
            if path.exists():
                raise ValueError(
                    f"{path}: Parquet files cannot be appended; live mode writes epic or csv"
                )
            frame.write_parquet(path, compression="zstd", statistics=False)
            return
        text = frame.write_csv(
            include_header=not path.exists(), datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ"
        )
        with path.open("a", newline="") as f:
            f.write(text)


def _times(trace: RunTrace, t: np.ndarray) -> pl.Series:
    return pl.Series("time", trace.epoch_ms(t)).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")


def wide_frame(trace: RunTrace, keep: np.ndarray | None = None) -> pl.DataFrame:
    """The run (or the passes in `keep`) as a wide table: time + channels + shutters."""
    keep = np.ones(len(trace.log_t), dtype=bool) if keep is None else keep
    t = trace.log_t[keep]
    columns: dict[str, pl.Series] = {"time": _times(trace, t)}
    for channel in LOGGED:
        values = quantize(trace.values[channel.name][keep], channel.fmt)
        columns[channel.name] = pl.Series(channel.name, values, nan_to_null=True)
    states = shutter_states(trace)
    times = np.array([at for at, _ in states])
    index = np.searchsorted(times, t, side="right") - 1
    table = np.array([s for _, s in states] or [(0,) * len(SHUTTER_NAMES)], dtype=np.int8)
    for k, name in enumerate(SHUTTER_NAMES):
        column = np.where(index >= 0, table[np.clip(index, 0, None), k], 0).astype(np.int8)
        columns[shutter_channel(name)] = pl.Series(shutter_channel(name), column)
    return pl.DataFrame(columns)


def write_calibration(tool_dir: Path, scan: CalibrationScan) -> Path:
    """`<tool>/calibrations/YYYY-MM-DD_HH-MM-SS_<source>.txt`, tab-separated as lab scripts
    write them."""
    path = tool_dir / "calibrations" / scan.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(scan.to_tsv().encode())
    return path


def append_measurements(path: Path, measurements: list[Measurement]) -> None:
    """Append rows to a measurements CSV: run_id, layer_index, kind, value, uncertainty, unit,
    measured_at."""
    if not measurements:
        return
    frame = pl.DataFrame(
        [m.row() for m in measurements],
        schema={
            "run_id": pl.String,
            "layer_index": pl.Int64,
            "kind": pl.String,
            "value": pl.Float64,
            "uncertainty": pl.Float64,
            "unit": pl.String,
            "measured_at": pl.String,
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = frame.write_csv(include_header=not path.exists())
    with path.open("a", newline="") as f:
        f.write(text)
