"""The one timestamp parser every reader uses: formats, date order, zones, epoch numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import polars as pl
import pytest

from epi_ml.readers.timestamps import (
    DAY_FIRST,
    EPIC_TIME,
    ISO,
    MONTH_FIRST,
    TimeFormat,
    _day_first_fixed_width,
    check_timezone,
    epoch_to_utc,
    localize,
    parse_times,
)


def test_fixed_width_fast_path_agrees_with_strptime() -> None:
    rng = random.Random(11)

    def draw() -> str:
        year = rng.choice([1900, 1999, 2000, 2023, 2024, 2100])
        day, month, hour = rng.randint(0, 32), rng.randint(0, 13), rng.randint(0, 25)
        minute, second, milli = rng.randint(0, 61), rng.randint(0, 61), rng.randint(0, 999)
        return f"{day:02d}/{month:02d}/{year} {hour:02d}:{minute:02d}:{second:02d}.{milli:03d}"

    texts: list[str | None] = [draw() for _ in range(5000)]
    texts += [
        "12/06/2023 00:00:01",
        "12/06/2023 00:00:01.7",
        " 12/06/2023 00:00:01.727",
        "1x/06/2023 00:00:01.727",
        None,
    ]
    series = pl.Series(texts, dtype=pl.String)
    fast = _day_first_fixed_width(series)
    slow = series.str.strptime(pl.Datetime("us"), DAY_FIRST.pattern, strict=False)
    assert fast.equals(slow)
    assert 0 < fast.null_count() < len(texts)  # both valid and invalid dates were drawn


def test_expected_format_reads_and_reports_nothing() -> None:
    parsed = parse_times(
        pl.Series(["12/06/2023 00:00:01.727", "12/06/2023 23:59:59.941"]), expected=EPIC_TIME
    )
    assert parsed.format is EPIC_TIME and parsed.findings == [] and parsed.reason.null_count() == 2
    assert parsed.utc.to_list()[0] == datetime(2023, 6, 12, 0, 0, 1, 727000, tzinfo=UTC)


def test_bad_rows_get_reasons_not_exceptions() -> None:
    parsed = parse_times(
        pl.Series(["12/06/2023 00:00:01.727", "yesterday", None, ' "12/06/2023 00:00:02.000" ']),
        expected=EPIC_TIME,
    )
    assert parsed.reason.to_list() == [
        None,
        "time is not DD/MM/YYYY hh:mm:ss[.fff]",
        "no time",
        None,
    ]
    assert parsed.utc.to_list()[3] == datetime(
        2023, 6, 12, 0, 0, 2, tzinfo=UTC
    )  # stripped and read


@pytest.mark.parametrize(
    ("texts", "fmt", "first"),
    [
        (
            ["2023-06-12T08:00:00.250", "2023-06-12T08:00:01"],
            ISO,
            datetime(2023, 6, 12, 8, 0, 0, 250000, tzinfo=UTC),
        ),
        (
            ["2023-06-12T10:00:00+02:00", "2023-06-12T08:00:01Z"],
            None,
            datetime(2023, 6, 12, 8, 0, tzinfo=UTC),
        ),
        (
            ["12.06.2023 08:00:00", "12.06.2023 08:00:01"],
            None,
            datetime(2023, 6, 12, 8, 0, tzinfo=UTC),
        ),
        (
            ["06/13/2023 08:00:00", "06/14/2023 08:00:00"],
            MONTH_FIRST,
            datetime(2023, 6, 13, 8, 0, tzinfo=UTC),
        ),
    ],
    ids=["iso", "iso-zoned", "dotted", "month-first"],
)
def test_formats_are_found_without_a_hint(
    texts: list[str], fmt: TimeFormat | None, first: datetime
) -> None:
    parsed = parse_times(pl.Series(texts))
    if fmt is not None:
        assert parsed.format is fmt
    assert parsed.utc.to_list()[0] == first
    assert parsed.reason.null_count() == len(texts)


def test_date_order_from_the_span_of_the_log() -> None:
    # 06/07 -> 07/07: one day if day-first, a month if month-first
    parsed = parse_times(pl.Series(["06/07/2023 23:59:59", "07/07/2023 00:00:02"]))
    assert parsed.format is DAY_FIRST
    assert [f.code for f in parsed.findings] == ["date_order_inferred"]
    ambiguous = parse_times(pl.Series(["06/07/2023 10:00:00", "06/07/2023 10:00:01"]))
    assert [f.code for f in ambiguous.findings] == ["ambiguous_date_order"]
    told = parse_times(pl.Series(["06/07/2023 10:00:00"]), date_order="mdy")
    assert told.findings == [] and told.utc.item() == datetime(2023, 6, 7, 10, tzinfo=UTC)


def test_localize_resolves_the_repeated_hour_from_file_order() -> None:
    naive = pl.Series(
        [
            datetime(2023, 10, 29, 2, 30),
            datetime(2023, 10, 29, 2, 10),
            datetime(2023, 10, 29, 2, 30),
            datetime(2023, 10, 29, 3, 0),
        ]
    )
    utc = localize(naive, "Europe/Berlin").to_list()
    assert [t.hour for t in utc] == [0, 1, 1, 2]  # 02:30 CEST, then 02:10 and 02:30 CET
    assert utc == sorted(utc)


def test_epoch_units_by_magnitude() -> None:
    seconds = pl.Series([1_686_556_800.0, 1_686_556_801.5])
    for scale, unit in ((1, "seconds"), (1e3, "milliseconds"), (1e6, "microseconds")):
        utc, found = epoch_to_utc(seconds * scale)
        assert found == unit and utc is not None
        assert utc.to_list() == [
            datetime(2023, 6, 12, 8, 0, tzinfo=UTC),
            datetime(2023, 6, 12, 8, 0, 1, 500000, tzinfo=UTC),
        ]
    assert epoch_to_utc(pl.Series([0.0, 1.0, 2.0])) == (None, "")


def test_unknown_zone_is_a_caller_error() -> None:
    check_timezone("Europe/Berlin")
    with pytest.raises(ValueError, match="IANA"):
        check_timezone("CEST")


def test_constant_offset_shortcut_matches_polars_zone_conversion() -> None:
    naive = pl.datetime_range(
        datetime(2023, 6, 12), datetime(2023, 6, 13), "7m", time_unit="us", eager=True
    )
    expected = naive.dt.replace_time_zone("Europe/Berlin").dt.convert_time_zone("UTC")
    assert localize(naive, "Europe/Berlin").equals(expected)
    assert localize(naive, "Asia/Kolkata").equals(
        naive.dt.replace_time_zone("Asia/Kolkata").dt.convert_time_zone("UTC")
    )
