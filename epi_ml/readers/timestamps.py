"""Timestamps: text or epoch numbers -> UTC, with every reader using the same rules.

Parsing is vectorised (one `str.strptime` over the column); only the rows that fail are looked at
again (stripped of blanks and quotes) and, if a file is not in the format its tool writes, the
other known formats are tried on a sample first. A row that is still unreadable gets a reason,
never an exception. Naive times are in the tool's zone `tz`; around a daylight-saving fall-back the
repeated hour is resolved from the file order (the second pass through it is the later one).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa

from epi_ml.findings import Finding, Severity

DateOrder = Literal["dmy", "mdy"]
TIME_TYPE = pl.Datetime("us", "UTC")
SAMPLE_SIZE = 1000  # rows tried per candidate format before parsing a whole column
MAX_SPAN_CHECKED = timedelta(days=62)  # longer files go through polars' per-row zone conversion


@dataclass(frozen=True)
class TimeFormat:
    label: str  # as engineers read it, used in messages
    pattern: str  # strptime pattern (polars / chrono); `%.f` accepts 0-9 decimals or none
    zoned: bool = False  # the text carries its zone (Z or +hh:mm)


DAY_FIRST = TimeFormat("DD/MM/YYYY hh:mm:ss[.fff]", "%d/%m/%Y %H:%M:%S%.f")
MONTH_FIRST = TimeFormat("MM/DD/YYYY hh:mm:ss[.fff]", "%m/%d/%Y %H:%M:%S%.f")
ISO = TimeFormat("ISO 8601 YYYY-MM-DDThh:mm:ss[.fff]", "%Y-%m-%dT%H:%M:%S%.f")
ISO_ZONED = TimeFormat(
    "ISO 8601 with zone, YYYY-MM-DDThh:mm:ss[.fff]+hh:mm", "%Y-%m-%dT%H:%M:%S%.f%#z", True
)
ISO_SPACE = TimeFormat("YYYY-MM-DD hh:mm:ss[.fff]", "%Y-%m-%d %H:%M:%S%.f")
ISO_SPACE_ZONED = TimeFormat("YYYY-MM-DD hh:mm:ss[.fff]+hh:mm", "%Y-%m-%d %H:%M:%S%.f%#z", True)
DOTTED = TimeFormat("DD.MM.YYYY hh:mm:ss[.fff]", "%d.%m.%Y %H:%M:%S%.f")
EPIC_TIME = DAY_FIRST  # EPIC writes `12/06/2023 00:00:01.727`
CANDIDATES: tuple[TimeFormat, ...] = (
    DAY_FIRST,
    MONTH_FIRST,
    ISO,
    ISO_ZONED,
    ISO_SPACE,
    ISO_SPACE_ZONED,
    DOTTED,
)
SLASHED = (DAY_FIRST, MONTH_FIRST)
STRIP = " \t\"'"
# The fixed layout of DAY_FIRST rows as EPIC writes them: DD/MM/YYYY HH:MM:SS.fff
FIXED_WIDTH = 23
FIXED_SEPARATOR_AT = [2, 5, 10, 13, 16, 19]
FIXED_SEPARATORS = np.frombuffer(b"// ::.", dtype=np.uint8)
FIXED_DIGITS = [i for i in range(FIXED_WIDTH) if i not in FIXED_SEPARATOR_AT]
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@dataclass
class ParsedTimes:
    utc: pl.Series  # Datetime(us, UTC); null where `reason` says why
    reason: pl.Series  # String; null where the time was read
    format: TimeFormat | None
    findings: list[Finding] = field(default_factory=list)


def check_timezone(tz: str) -> None:
    """A clear ValueError for a zone name that does not exist (a caller error, not bad data)."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from exc


def parse_times(
    texts: pl.Series,
    *,
    tz: str = "UTC",
    expected: TimeFormat | None = None,
    date_order: DateOrder | None = None,
    file: str | None = None,
    channel: str | None = None,
) -> ParsedTimes:
    """Read a column of time texts. `expected`: the format the writing tool uses (then other
    formats are only tried when it fails); `date_order` settles DD/MM vs MM/DD for slashed dates;
    `tz`: the zone of times written without one."""
    check_timezone(tz)
    where = {"file": file, "channel": channel}
    if date_order is not None:
        expected = DAY_FIRST if date_order == "dmy" else MONTH_FIRST
    texts = texts.cast(pl.String)
    present = texts.is_not_null() & (texts.str.len_bytes() > 0)
    findings: list[Finding] = []

    fmt, parsed = expected, _strptime(texts, expected) if expected else None
    if fmt is None or _misses(parsed, present) > 0:
        fmt, parsed, note = _choose_format(texts, present, expected, parsed, date_order, where)
        if note:
            findings.append(note)
    if fmt is None or parsed is None:
        unknown = pl.lit("time is in no known format")
        reason = present.to_frame("p").select(
            pl.when("p").then(unknown).otherwise(pl.lit("no time"))
        )
        nothing = pl.Series([None] * len(texts), dtype=TIME_TYPE)
        return ParsedTimes(nothing, reason.to_series(), None, findings)

    parsed = _second_chance(texts, present, parsed, fmt)
    utc = parsed.dt.convert_time_zone("UTC") if fmt.zoned else localize(parsed, tz)
    if utc.null_count() == 0:  # the normal case: nothing to explain
        reason = pl.repeat(None, len(texts), dtype=pl.String, eager=True)
        return ParsedTimes(utc.cast(TIME_TYPE), reason, fmt, findings)
    unread = present & parsed.is_null()
    gap = parsed.is_not_null() & utc.is_null()
    reason = pl.select(
        pl.when(~present)
        .then(pl.lit("no time"))
        .when(unread)
        .then(pl.lit(f"time is not {fmt.label}"))
        .when(gap)
        .then(pl.lit(f"time does not exist in {tz} (skipped by the daylight-saving change)"))
        .otherwise(pl.lit(None, dtype=pl.String))
    ).to_series()
    return ParsedTimes(utc.cast(TIME_TYPE), reason, fmt, findings)


def localize(naive: pl.Series, tz: str) -> pl.Series:
    """Naive wall-clock times in `tz` -> UTC. In the repeated hour of a fall-back, a time at or
    before one already seen in the file is the second pass (`latest`); times in the skipped hour
    of a spring-forward do not exist and become null."""
    if tz == "UTC":
        return naive.dt.replace_time_zone("UTC")
    offset = constant_offset(naive, tz)
    if offset is not None:  # the common case: no clock change inside the file
        return (naive - offset).dt.replace_time_zone("UTC")
    seen = pl.col("t").cum_max().shift(1)
    ambiguous = pl.when(pl.col("t") <= seen).then(pl.lit("latest")).otherwise(pl.lit("earliest"))
    return (
        naive.to_frame("t")
        .select(
            pl.col("t")
            .dt.replace_time_zone(tz, ambiguous=ambiguous, non_existent="null")
            .dt.convert_time_zone("UTC")
        )
        .to_series()
    )


def constant_offset(naive: pl.Series, tz: str) -> timedelta | None:
    """The UTC offset of `tz` if it is the same, and unambiguous, at every hour the times span
    (checked on both sides of each hour: a clock change shows as two offsets); else None. Spares
    polars' per-row zone conversion on the files of a normal day."""
    first, last = naive.min(), naive.max()
    if first is None or last - first > MAX_SPAN_CHECKED:  # type: ignore[operator]
        return None
    zone = zoneinfo.ZoneInfo(tz)
    hour = first.replace(minute=0, second=0, microsecond=0)  # type: ignore[union-attr]
    offsets = set()
    while hour <= last + timedelta(hours=1):  # type: ignore[operator]
        offsets.add(hour.replace(tzinfo=zone).utcoffset())
        offsets.add(hour.replace(tzinfo=zone, fold=1).utcoffset())
        hour += timedelta(hours=1)
    return offsets.pop() if len(offsets) == 1 else None


# Epoch numbers: the unit follows from the magnitude (seconds since 1970 are ~1.7e9 today).
EPOCH_UNITS: tuple[tuple[float, float, str, int], ...] = (
    (1e8, 1e11, "seconds", 1_000_000),
    (1e11, 1e14, "milliseconds", 1_000),
    (1e14, 1e17, "microseconds", 1),
)


def epoch_to_utc(values: pl.Series) -> tuple[pl.Series | None, str]:
    """Epoch numbers -> UTC times, with the unit guessed from their size; (None, "") when they
    are too small to be epoch times (relative seconds)."""
    magnitude = values.abs().median()
    for low, high, unit, to_us in EPOCH_UNITS:
        if magnitude is not None and low <= magnitude < high:  # type: ignore[operator]
            micros = (values * to_us).round().cast(pl.Int64, strict=False)
            return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC"), unit
    return None, ""


def parse_epic_times(texts: pl.Series) -> pl.Series | None:
    """EPIC's `DD/MM/YYYY HH:MM:SS.fff` as naive datetimes, fast (null where a text is not in
    that layout); None when `texts` is too short for the fast path to pay."""
    return _day_first_fixed_width(texts) if len(texts) > SAMPLE_SIZE else None


def _strptime(texts: pl.Series, fmt: TimeFormat) -> pl.Series:
    if fmt is DAY_FIRST and len(texts) > SAMPLE_SIZE:
        return _day_first_fixed_width(texts)
    dtype = pl.Datetime("us", "UTC") if fmt.zoned else pl.Datetime("us")
    return texts.str.strptime(dtype, fmt.pattern, strict=False, cache=False)


def _day_first_fixed_width(texts: pl.Series) -> pl.Series:
    """`DD/MM/YYYY HH:MM:SS.fff`, the layout of every EPIC row, read straight from the bytes at
    their fixed positions with numpy: about 10x faster than strptime, which matters on the ~86k
    rows of each file of a day. Rows in any other layout (or with an invalid date) fall back to
    strptime, so the result is the same as strptime's, only sooner."""
    array = texts.rechunk().to_arrow()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    _, offsets_buffer, data_buffer = array.buffers()
    n = len(array)
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + n + 1]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, np.uint8)
    )
    fixed = np.diff(offsets) == FIXED_WIDTH
    if array.null_count:
        fixed &= ~np.asarray(array.is_null())
    rows = np.flatnonzero(fixed)
    if len(rows) == n and offsets[-1] - offsets[0] == n * FIXED_WIDTH:  # all rows back to back
        chars = data[offsets[0] : offsets[-1]].reshape(n, FIXED_WIDTH)
    else:
        chars = data[offsets[rows][:, None] + np.arange(FIXED_WIDTH)]
    d = chars - np.uint8(48)  # digit values; uint8 wraps anything below '0' above 9
    layout = (chars[:, FIXED_SEPARATOR_AT] == FIXED_SEPARATORS).all(axis=1) & (
        d[:, FIXED_DIGITS] <= 9
    ).all(axis=1)

    def number(*at: int) -> np.ndarray:
        value = d[:, at[0]].astype(np.int32)
        for i in at[1:]:
            value = value * 10 + d[:, i]
        return value

    hour, minute, second, milli = number(11, 12), number(14, 15), number(17, 18), number(20, 21, 22)
    valid = layout & (hour < 24) & (minute < 60) & (second < 61)
    date_key = number(0, 1, 3, 4, 6, 7, 8, 9)  # DDMMYYYY as one number
    if len(chars) and (date_key == date_key[0]).all():
        # A day file: every row has the same date, so it is checked and converted once.
        days = _valid_days(d[:1, :10])
        valid &= days[0] >= 0
        days = np.broadcast_to(days, hour.shape)
    else:
        days = _valid_days(d[:, :10])
        valid &= days >= 0
    seconds = days.astype(np.int64) * 86_400 + (hour * 60 + minute) * 60 + second
    micros = seconds * 1_000_000 + milli * 1000
    if valid.all() and len(rows) == n:  # the usual log: every row read here
        return pl.Series(micros).cast(pl.Datetime("us"))
    values = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    values[rows[valid]], ok[rows[valid]] = micros[valid], True
    result = pl.Series(values).cast(pl.Datetime("us")).set(pl.Series(~ok), None)
    other = texts.is_not_null() & result.is_null()
    if not other.any():
        return result
    at = other.arg_true()
    return result.scatter(
        at, texts.gather(at).str.strptime(pl.Datetime("us"), DAY_FIRST.pattern, strict=False)
    )


def _valid_days(d: np.ndarray) -> np.ndarray:
    """Days since 1970 of the `DD/MM/YYYY` digit rows `d` (n x 10), -1 where the date is no
    calendar date (month 13, 30 February, ...)."""

    def number(*at: int) -> np.ndarray:
        value = d[:, at[0]].astype(np.int32)
        for i in at[1:]:
            value = value * 10 + d[:, i]
        return value

    day, month, year = number(0, 1), number(3, 4), number(6, 7, 8, 9)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = DAYS_IN_MONTH[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    valid = (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    return np.where(valid, _days_since_epoch(year, month, day), -1)


def _days_since_epoch(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days from 1970-01-01 of proleptic Gregorian dates (H. Hinnant's days_from_civil)."""
    y = year.astype(np.int64) - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _misses(parsed: pl.Series | None, present: pl.Series) -> int:
    return len(present) if parsed is None else int((present & parsed.is_null()).sum())


def _sample(texts: pl.Series, rows: pl.Series) -> pl.Series:
    chosen = texts.filter(rows)
    step = max(1, len(chosen) // SAMPLE_SIZE)
    return chosen.gather_every(step).head(SAMPLE_SIZE).str.strip_chars(STRIP)


def _choose_format(
    texts: pl.Series,
    present: pl.Series,
    expected: TimeFormat | None,
    parsed: pl.Series | None,
    date_order: DateOrder | None,
    where: dict,
) -> tuple[TimeFormat | None, pl.Series | None, Finding | None]:
    """The expected format failed on some rows (or there is none): try the others on a sample of
    the rows it could not read, then on the whole column; keep the one that reads most rows."""
    failing = present if parsed is None else present & parsed.is_null()
    sample = _sample(texts, failing)
    tried = [f for f in CANDIDATES if f != expected and _strptime(sample, f).is_not_null().any()]
    if date_order is not None:  # the caller settled the order: never swap it
        tried = [f for f in tried if f not in SLASHED]
    best, best_parsed, best_read = expected, parsed, len(texts) - _misses(parsed, present)
    for fmt in tried:
        candidate = _strptime(texts, fmt)
        read = len(texts) - _misses(candidate, present)
        if read > best_read:
            best, best_parsed, best_read = fmt, candidate, read
    if best is None or best_read == 0:
        return None, None, None
    if expected is None:
        if best in SLASHED and date_order is None:
            return _settle_date_order(texts, present, best, best_parsed, where)
        return best, best_parsed, None
    if best is expected:
        return best, best_parsed, None
    if expected in SLASHED and best in SLASHED:
        example = _example(texts, present, expected)
        note = Finding(
            "date_order",
            Severity.WARNING,
            f"dates are {best.label}, not {expected.label} as this tool writes them "
            f"({example!r} cannot be read the expected way); read as {best.label}",
            hint="The file was probably re-saved on a computer with other regional settings; "
            "check the dates of the run.",
            **where,
        )
    else:
        note = Finding(
            "unexpected_time_format",
            Severity.WARNING,
            f"times are written as {best.label}, not {expected.label} as this tool writes them; "
            f"read as {best.label}",
            hint="The file was re-exported or edited by another program; check its origin.",
            **where,
        )
    return best, best_parsed, note


def _settle_date_order(
    texts: pl.Series, present: pl.Series, best: TimeFormat, parsed: pl.Series | None, where: dict
) -> tuple[TimeFormat, pl.Series | None, Finding | None]:
    """Slashed dates with no convention: DD/MM or MM/DD? A day above 12 decides; else the order
    giving the shorter span (a log covers days, not months); else it is ambiguous (warned)."""
    day_first = parsed if best is DAY_FIRST else _strptime(texts, DAY_FIRST)
    month_first = parsed if best is MONTH_FIRST else _strptime(texts, MONTH_FIRST)
    read_d, read_m = (len(texts) - _misses(p, present) for p in (day_first, month_first))
    if day_first.equals(month_first):  # e.g. every date is 06/06: both orders agree
        return DAY_FIRST, day_first, None
    if read_d != read_m:
        why = "other dates cannot be read the other way round"
        chosen = (DAY_FIRST, day_first) if read_d > read_m else (MONTH_FIRST, month_first)
        return (*chosen, _order_inferred(chosen[0], why, where))
    span_d, span_m = (p.max() - p.min() for p in (day_first, month_first))  # type: ignore[operator]
    if span_d != span_m:
        why = "the other order would spread the log over a much longer time"
        shorter = span_d < span_m  # type: ignore[operator]
        chosen = (DAY_FIRST, day_first) if shorter else (MONTH_FIRST, month_first)
        return (*chosen, _order_inferred(chosen[0], why, where))
    example = _example(texts, present, DAY_FIRST, failing=False)
    return (
        DAY_FIRST,
        day_first,
        Finding(
            "ambiguous_date_order",
            Severity.WARNING,
            f"every date in the file (e.g. {example!r}) has day and month up to 12, so it could "
            "be DD/MM/YYYY or MM/DD/YYYY; read as DD/MM/YYYY (day first)",
            hint="If the tool writes month-first (US) dates, read the file again with "
            "date_order='mdy'; better, export ISO dates (YYYY-MM-DD).",
            **where,
        ),
    )


def _order_inferred(fmt: TimeFormat, why: str, where: dict) -> Finding:
    return Finding(
        "date_order_inferred",
        Severity.INFO,
        f"slashed dates read as {fmt.label} ({why})",
        hint="Pass date_order='dmy' or 'mdy' to state it; ISO dates (YYYY-MM-DD) avoid the "
        "question.",
        **where,
    )


def _example(texts: pl.Series, present: pl.Series, fmt: TimeFormat, *, failing: bool = True) -> str:
    rows = present & _strptime(texts, fmt).is_null() if failing else present
    found = texts.filter(rows).head(1).to_list()
    return found[0] if found else ""


def _second_chance(
    texts: pl.Series, present: pl.Series, parsed: pl.Series, fmt: TimeFormat
) -> pl.Series:
    """Rows that failed are tried once more without surrounding blanks and quotes."""
    failing = present & parsed.is_null()
    if not failing.any():
        return parsed
    rows = failing.arg_true()
    retried = _strptime(texts.gather(rows).str.strip_chars(STRIP), fmt)
    return parsed.scatter(rows, retried)


def parse_time_column(
    column: pl.Series,
    *,
    tz: str = "UTC",
    date_order: DateOrder | None = None,
    file: str | None = None,
) -> ParsedTimes:
    """A table's time column, whatever its type: datetimes (naive ones are in `tz`), dates, epoch
    numbers (unit from their size) or text (parse_times). Small numbers are relative seconds,
    which cannot be placed in time: an ERROR `relative_time`."""
    if isinstance(column.dtype, pl.Datetime):
        naive = column.dtype.time_zone is None
        times = column.cast(pl.Datetime("us", column.dtype.time_zone))
        utc = localize(times, tz) if naive else times.dt.convert_time_zone("UTC")
        return ParsedTimes(utc.cast(TIME_TYPE), _reasons(utc, "no time"), None)
    if column.dtype == pl.Date:
        utc = localize(column.cast(pl.Datetime("us")), tz)
        return ParsedTimes(utc.cast(TIME_TYPE), _reasons(utc, "no time"), None)
    numbers = column.cast(pl.Float64, strict=False)
    if numbers.null_count() == column.null_count() < len(column):
        utc, unit = epoch_to_utc(numbers)
        if utc is None:
            finding = Finding(
                "relative_time",
                Severity.ERROR,
                f"the time column holds small numbers ({numbers.min():g} .. {numbers.max():g}), "
                "not dates or epoch times, so the samples cannot be placed in time",
                hint="Export absolute times (ISO 8601 or epoch seconds), or the start time with "
                "them.",
                file=file,
            )
            nothing = pl.Series([None] * len(column), dtype=TIME_TYPE)
            return ParsedTimes(nothing, _reasons(nothing, "no time"), None, [finding])
        notes = []
        if unit != "seconds":
            notes.append(
                Finding(
                    "epoch_unit",
                    Severity.INFO,
                    f"times read as epoch {unit} (from their size)",
                    file=file,
                )
            )
        return ParsedTimes(utc.cast(TIME_TYPE), _reasons(utc, "time is not a number"), None, notes)
    return parse_times(column.cast(pl.String), tz=tz, date_order=date_order, file=file)


def _reasons(values: pl.Series, reason: str) -> pl.Series:
    return pl.select(
        pl.when(values.is_null()).then(pl.lit(reason)).otherwise(pl.lit(None, dtype=pl.String))
    ).to_series()
