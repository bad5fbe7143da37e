"""Fast, exact text formatting of EPIC log rows: `DD/MM/YYYY HH:MM:SS.fff,<value>\\r\\n`.

A campaign writes tens of millions of rows, so rows are built with numpy from lookup tables
instead of Python string formatting: every timestamp field and every value is a table lookup
(`HH:MM:SS` from 86,400 precomputed entries, `.fff` from 1,000, values from a per-format table of
their quantised codes). The variable-width rows are then packed by one boolean mask.

Value formats copy what the real EPIC files hold (shared/data/epic-mbe8-2023-06-12):
- `fixed1`:   temperatures, valve %, rpm, intensities: one decimal (`300.0`, `1000.2`)
- `sig4`:     controller output %: four significant digits (`5.900`, `14.30`, `0.9000`, zero `0.0`)
- `pressure`: ion gauges: `2.78E-08`; readings >= 1 (over-range sentinels) as `1000.0`
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

ValueFormat = Literal["fixed1", "sig4", "pressure"]
VALUE_FORMATS: tuple[ValueFormat, ...] = ("fixed1", "sig4", "pressure")

MS_PER_DAY = 86_400_000
TIMESTAMP_WIDTH = 23  # DD/MM/YYYY HH:MM:SS.fff
ENTRY_WIDTH = 16  # ",<value>\r\n" padded with NULs

# fixed1 covers -1000.0 .. 9999.9 through the table; anything else is formatted one by one.
_FIXED1_MIN, _FIXED1_MAX = -10_000, 99_999
# pressure codes: decade -15 .. -1, mantissa 100..999
_P_DECADES = np.arange(-15, 0)


def _entries(texts: list[str]) -> tuple[NDArray[np.void], NDArray[np.int64]]:
    raw = [f",{t}\r\n".encode() for t in texts]
    table = np.array(raw, dtype=f"S{ENTRY_WIDTH}")
    lengths = np.array([len(r) for r in raw], dtype=np.int64)
    return table, lengths


@cache
def _fixed1_table() -> tuple[NDArray[np.void], NDArray[np.int64]]:
    codes = range(_FIXED1_MIN, _FIXED1_MAX + 1)
    return _entries([f"{c / 10:.1f}" if c != 0 else "0.0" for c in codes])


@cache
def _sig4_table() -> tuple[NDArray[np.void], NDArray[np.int64]]:
    # code = (decade + 4) * 10000 + mantissa (1000..9999), decade -4..2; entry 0 is zero
    texts = ["0.0"] * (7 * 10_000)
    for decade in range(-4, 3):
        decimals = 3 - decade
        for mantissa in range(1000, 10_000):
            value = mantissa * 10.0 ** (decade - 3)
            texts[(decade + 4) * 10_000 + mantissa] = f"{value:.{max(decimals, 1)}f}"
    return _entries(texts)


@cache
def _pressure_table() -> tuple[NDArray[np.void], NDArray[np.int64]]:
    texts = []
    for decade in _P_DECADES:
        for mantissa in range(100, 1000):
            texts.append(f"{mantissa / 100:.2f}E{decade:+03d}")
    return _entries(texts)


@cache
def _clock_tables() -> tuple[NDArray[np.void], NDArray[np.void]]:
    hms = np.array(
        [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}".encode() for s in range(86_400)],
        dtype="S8",
    )
    millis = np.array([f".{m:03d}".encode() for m in range(1000)], dtype="S4")
    return hms, millis


def format_value_python(value: float, fmt: ValueFormat) -> str:
    """One value, the slow way: the reference the tables are built from, and the fallback."""
    text = _format_value(value, fmt)
    return "0.0" if text == "-0.0" else text


def _format_value(value: float, fmt: ValueFormat) -> str:
    if not np.isfinite(value):
        return "NaN"
    if fmt == "fixed1":
        return f"{value:.1f}"
    if fmt == "pressure":
        if value >= 1.0 or value <= 0.0:
            return f"{value:.1f}"
        mantissa, exponent = f"{value:.2E}".split("E")
        return f"{mantissa}E{int(exponent):+03d}"
    # sig4
    if value == 0.0:
        return "0.0"
    if value < 0 or value >= 1000 or value < 1e-4:
        return f"{value:.1f}"
    decade = int(np.floor(np.log10(value)))
    digits = int(np.rint(value / 10.0 ** (decade - 3)))
    if digits >= 10_000:
        decade, digits = decade + 1, 1000
    if decade > 2:
        return f"{value:.1f}"
    return f"{digits * 10.0 ** (decade - 3):.{max(3 - decade, 1)}f}"


def _near_half(scaled: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Values whose rounding is a near tie: numpy rounds half to even on the scaled double, Python
    rounds the exact binary value; these few go through Python formatting."""
    return np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6


def _codes(
    values: NDArray[np.float64], fmt: ValueFormat
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Table index of every value, and a mask of the values the table cannot hold."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    safe = np.where(finite, v, 0.0)
    if fmt == "fixed1":
        scaled = safe * 10
        code = np.rint(scaled).astype(np.int64)
        outside = ~finite | (code < _FIXED1_MIN) | (code > _FIXED1_MAX) | _near_half(scaled)
        return np.clip(code, _FIXED1_MIN, _FIXED1_MAX) - _FIXED1_MIN, outside
    positive = safe > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        decade = np.floor(np.log10(np.where(positive, safe, 1.0))).astype(np.int64)
    digits = 2 if fmt == "pressure" else 3  # after the first significant digit
    scaled = safe / 10.0 ** (decade - digits)
    mantissa = np.rint(scaled).astype(np.int64)
    carry = mantissa >= 10 ** (digits + 1)
    decade = decade + carry
    mantissa = np.where(carry, 10**digits, mantissa)
    tie = _near_half(scaled)
    if fmt == "pressure":
        outside = ~finite | ~positive | (decade < -15) | (decade > -1) | tie
        code = (np.clip(decade, -15, -1) + 15) * 900 + np.clip(mantissa, 100, 999) - 100
        return code, outside
    zero = finite & (safe == 0.0)
    outside = ~finite | (~positive & ~zero) | (positive & ((decade < -4) | (decade > 2) | tie))
    code = np.where(zero, 0, (np.clip(decade, -4, 2) + 4) * 10_000 + np.clip(mantissa, 1000, 9999))
    return code, outside


_TABLES = {"fixed1": _fixed1_table, "sig4": _sig4_table, "pressure": _pressure_table}


def value_entries(
    values: NDArray[np.float64], fmt: ValueFormat
) -> tuple[NDArray[np.void], NDArray[np.int64]]:
    """`,<value>\\r\\n` entries (fixed 16-byte slots) and their lengths."""
    table, lengths = _TABLES[fmt]()
    code, outside = _codes(values, fmt)
    entries = table[code]
    lens = lengths[code]
    if outside.any():
        for i in np.flatnonzero(outside):
            raw = f",{format_value_python(float(values[i]), fmt)}\r\n".encode()[:ENTRY_WIDTH]
            entries[i] = raw
            lens[i] = len(raw)
    return entries, lens


def epic_rows(epoch_ms: NDArray[np.int64], values: NDArray[np.float64], fmt: ValueFormat) -> bytes:
    """EPIC log rows `DD/MM/YYYY HH:MM:SS.fff,value\\r\\n` for samples of one UTC day or more."""
    ms = np.asarray(epoch_ms, dtype=np.int64)
    n = len(ms)
    if n == 0:
        return b""
    hms_table, ms_table = _clock_tables()
    days = ms // MS_PER_DAY
    of_day = ms - days * MS_PER_DAY
    row = np.dtype(
        {
            "names": ["date", "space", "hms", "millis", "entry"],
            "formats": ["S10", "S1", "S8", "S4", f"S{ENTRY_WIDTH}"],
            "offsets": [0, 10, 11, 19, TIMESTAMP_WIDTH],
            "itemsize": TIMESTAMP_WIDTH + ENTRY_WIDTH,
        }
    )
    buf = np.zeros(n, dtype=row)
    first_day = int(days.min())
    day_index = days - first_day
    day_texts = np.array(
        [
            datetime.fromtimestamp((first_day + d) * 86_400, UTC).strftime("%d/%m/%Y").encode()
            for d in range(int(day_index.max()) + 1)
        ],
        dtype="S10",
    )
    buf["date"] = day_texts[day_index]
    buf["space"] = b" "
    buf["hms"] = hms_table[of_day // 1000]
    buf["millis"] = ms_table[of_day % 1000]
    entries, lengths = value_entries(values, fmt)
    buf["entry"] = entries
    width = TIMESTAMP_WIDTH + ENTRY_WIDTH
    rows = buf.view(np.uint8).reshape(n, width)
    if lengths.min() == lengths.max():  # common (a set point, a 3-digit temperature): no packing
        return rows[:, : TIMESTAMP_WIDTH + int(lengths[0])].tobytes()
    keep = np.arange(width)[None, :] < (TIMESTAMP_WIDTH + lengths)[:, None]
    return rows[keep].tobytes()


def epic_timestamp(moment: datetime) -> str:
    """`DD/MM/YYYY HH:MM:SS.fff` of a UTC datetime (for the event files: shutters, messages)."""
    moment = moment.astimezone(UTC)
    return f"{moment:%d/%m/%Y %H:%M:%S}.{moment.microsecond // 1000:03d}"


def epic_timestamp_ms(epoch_ms: int) -> str:
    return epic_timestamp(datetime.fromtimestamp(epoch_ms / 1000, UTC))


def day_of_ms(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms // MS_PER_DAY * 86_400, UTC).date()


def epic_coefficient(value: float) -> str:
    """Fitting.txt coefficients as EPIC writes them: `4.614E00`, `-2.313E04`, `3.758E-01`."""
    mantissa, exponent = f"{value:.3E}".split("E")
    exp = int(exponent)
    return f"{mantissa}E{'-' if exp < 0 else ''}{abs(exp):02d}"


def quantize(values: NDArray[np.float64], fmt: ValueFormat) -> NDArray[np.float64]:
    """Round values to the digits the EPIC text would show, as the nearest doubles of those decimals
    (so that a CSV writer's shortest representation prints `2.78e-8`, not
    `2.7800000000000002e-8`)."""
    v = np.asarray(values, dtype=float)
    if fmt == "fixed1":
        return np.round(v * 10) / 10
    digits = 2 if fmt == "pressure" else 3
    finite_positive = np.isfinite(v) & (v > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.where(finite_positive, v, 1.0))).astype(np.int64)
    shift = digits - exponent  # decimal places that keep `digits + 1` significant digits
    up = np.power(10.0, np.clip(shift, 0, 22))
    down = np.power(10.0, np.clip(-shift, 0, 22))
    rounded = np.where(shift >= 0, np.round(v * up) / up, np.round(v / down) * down)
    return np.where(finite_positive, rounded, np.where(np.isfinite(v), np.round(v * 10) / 10, v))
