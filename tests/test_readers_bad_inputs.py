"""The corpus of bad inputs: every reader meets truncated, binary, mislabelled, re-saved,
re-encoded, empty and partly garbled files and answers with findings (file, line, what, what to
do), never an exception, keeping the good rows. The files are made in tmp_path from a real EPIC
log (the first rows of tests/data/epic-mbe8-2023-06-12-trimmed/Ga.PID.MV.txt), so the repository
stays small."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from epi_ml.findings import Finding, Severity
from epi_ml.readers import (
    read_any,
    read_calibration_table,
    read_epic_channel,
    read_epic_day,
    read_measurements,
    read_rheed_export,
    read_wide,
)
from epi_ml.validation import validate_run

REAL_LOG = Path(__file__).parent / "data" / "epic-mbe8-2023-06-12-trimmed" / "Ga.PID.MV.txt"
ROWS = 40
_lines = REAL_LOG.read_text().splitlines()
HEADER, BODY = _lines[:3], _lines[3 : 3 + ROWS]  # 'EPIC Ga.PID.MV Log File, '', 'Date,Ga.PID.MV
FIRST_ROW_LINE = 4


def epic_text(
    body: list[str] | None = None, header: list[str] | None = None, end: str = "\r\n"
) -> str:
    lines = (HEADER if header is None else header) + (BODY if body is None else body)
    return end.join(lines) + end


def write(tmp_path: Path, content: str | bytes, name: str = "Ga.PID.MV.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def only(findings: list[Finding], code: str) -> Finding:
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {[str(f) for f in findings]}"
    return found[0]


def assert_explained(findings: list[Finding]) -> None:
    """Every WARNING and ERROR says where and what to do."""
    for f in findings:
        assert f.file, f
        if f.severity is not Severity.INFO:
            assert f.message and f.hint, f


@pytest.fixture
def good(tmp_path: Path) -> pl.DataFrame:
    """The template log as read untouched."""
    (tmp_path / "good").mkdir()
    return read_epic_channel(write(tmp_path / "good", epic_text())).frame


# --- file-level problems: one ERROR, nothing read, nothing raised -------------------------------


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"\r\n  \r\n\t\r\n", "empty_file"),
        (noise(4, 3000), "binary_file"),
        (b"PK\x03\x04" + b"\x00" * 200, "binary_file"),  # an .xlsx workbook under a .txt name
        (b"time,Ga.T\n2023-06-12T00:00:00,300\n", "wrong_header"),  # a wide CSV, not an EPIC log
        (epic_text(body=[]).encode(), "no_rows"),
    ],
    ids=["empty", "blank-lines", "binary-garbage", "xlsx", "wrong-header", "header-only"],
)
def test_unusable_epic_log_is_one_error(tmp_path: Path, content: bytes, code: str) -> None:
    channel = read_epic_channel(write(tmp_path, content))
    assert channel.frame.is_empty()
    error = only(channel.findings, code)
    assert error.severity is Severity.ERROR
    assert_explained(channel.findings)


def test_missing_file_is_an_error_not_an_exception(tmp_path: Path) -> None:
    channel = read_epic_channel(tmp_path / "absent.txt")
    assert only(channel.findings, "unreadable_file").severity is Severity.ERROR


def test_excel_workbook_named_csv_says_so(tmp_path: Path) -> None:
    result = read_wide(write(tmp_path, b"PK\x03\x04" + b"\x00" * 100, "export.csv"))
    finding = only(result.findings, "binary_file")
    assert "Excel" in finding.message and "CSV" in finding.hint


# --- recoverable encodings and line ends: same rows as the original ----------------------------


@pytest.mark.parametrize(
    ("encode", "note"),
    [
        (lambda t: t.encode(), None),
        (lambda t: t.replace("\r\n", "\n").encode(), None),  # LF
        (lambda t: t.replace("\r\n", "\r").encode(), "cr_line_ends"),  # classic Mac
        (lambda t: b"\xef\xbb\xbf" + t.encode(), None),  # UTF-8 BOM
        (lambda t: t.encode("utf-16"), "utf16_text"),  # Windows "Unicode" save
        (lambda t: t.encode() + b"\x00" * 512, "nul_padding"),  # logger killed mid-write
    ],
    ids=["crlf", "lf", "cr", "bom", "utf16", "nul-padding"],
)
def test_encodings_and_line_ends_read_the_same_rows(
    tmp_path: Path, good: pl.DataFrame, encode: Callable[[str], bytes], note: str | None
) -> None:
    channel = read_epic_channel(write(tmp_path, encode(epic_text())))
    assert channel.frame.equals(good)
    assert good.height == ROWS
    assert codes(channel.findings) == ({note} if note else set())


# --- partly bad files: bad lines listed by number, good rows kept ------------------------------


def test_truncated_last_line(tmp_path: Path) -> None:
    text = epic_text()[: -len("5.123,300.0\r\n")]  # cut in the middle of the last timestamp
    channel = read_epic_channel(write(tmp_path, text))
    assert channel.frame.height == ROWS - 1
    finding = only(channel.findings, "unparseable_line")
    assert finding.line == FIRST_ROW_LINE + ROWS - 1
    assert "ends in the middle of this line" in finding.message
    assert finding.severity is Severity.WARNING


def test_line_cut_after_the_separator(tmp_path: Path) -> None:
    body = [*BODY[:-1], BODY[-1].split(",")[0] + ","]
    channel = read_epic_channel(write(tmp_path, epic_text(body)))
    finding = only(channel.findings, "unparseable_line")
    assert "no value" in finding.message and finding.line == FIRST_ROW_LINE + ROWS - 1


def test_garbled_lines_in_the_middle(tmp_path: Path) -> None:
    body = list(BODY)
    body[5] = "12/06/2023 09:55:0#,300.0"  # bad time
    body[9] = "12/06/2023 09:55:12.001,3OO.O"  # letters O for zeros
    body[12] = "12/06/2023 09:55:16.001,300.0,17"  # a field too many: the slow path finds it
    body[20] = '12/06/2023 09:55:30.001,"300.1"'  # quoted: read anyway
    channel = read_epic_channel(write(tmp_path, epic_text(body)))
    bad = {f.line: f for f in channel.findings if f.code == "unparseable_line"}
    assert set(bad) == {FIRST_ROW_LINE + 5, FIRST_ROW_LINE + 9, FIRST_ROW_LINE + 12}
    assert "time is not DD/MM/YYYY" in bad[FIRST_ROW_LINE + 5].message
    assert "value is not a number" in bad[FIRST_ROW_LINE + 9].message
    assert "3 fields, expected 2" in bad[FIRST_ROW_LINE + 12].message
    assert channel.frame.height == ROWS - 3
    assert 300.1 in channel.frame.get_column("value").to_list()
    assert_explained(channel.findings)


def test_many_bad_lines_are_summarised_with_their_count(tmp_path: Path) -> None:
    body = list(BODY[:10]) + ["#### corrupted ####"] * 500 + list(BODY[10:])
    channel = read_epic_channel(write(tmp_path, epic_text(body)))
    assert channel.frame.height == ROWS
    finding = only(channel.findings, "unparseable_line")
    assert finding.count == 500
    assert finding.line == FIRST_ROW_LINE + 10
    assert f"lines {FIRST_ROW_LINE + 10}-{FIRST_ROW_LINE + 509}" in finding.message
    assert len(finding.details["lines"]) == 500 and len(finding.details["examples"]) == 5


def test_nothing_readable_is_an_error_with_the_line_findings(tmp_path: Path) -> None:
    channel = read_epic_channel(write(tmp_path, epic_text(["garbage"] * 5)))
    assert {"unparseable_line", "no_rows"} <= codes(channel.findings)
    assert only(channel.findings, "no_rows").severity is Severity.ERROR


# --- re-saved files: other separators and date formats -----------------------------------------


@pytest.mark.parametrize("separator", [";", "\t"], ids=["semicolon", "tab"])
def test_other_separators_are_read_with_a_warning(
    tmp_path: Path, good: pl.DataFrame, separator: str
) -> None:
    comma = "," if separator == ";" else "."  # re-saved with ';' by a German Excel: decimal comma
    header = [HEADER[0], "", f"'Date{separator}Ga.PID.MV"]
    body = [row.replace(",", separator).replace(".", comma).replace(comma, ".", 1) for row in BODY]
    channel = read_epic_channel(write(tmp_path, epic_text(body, header)))
    assert "unexpected_separator" in codes(channel.findings)
    assert channel.frame.equals(good)


def test_iso_timestamps_in_an_epic_log(tmp_path: Path, good: pl.DataFrame) -> None:
    body = [f"2023-06-12T{row[11:23]},{row.split(',')[1]}" for row in BODY]
    channel = read_epic_channel(write(tmp_path, epic_text(body)))
    finding = only(channel.findings, "unexpected_time_format")
    assert "ISO 8601" in finding.message and finding.severity is Severity.WARNING
    assert channel.frame.equals(good)


def test_month_first_dates_are_detected_when_a_day_exceeds_12(
    tmp_path: Path, good: pl.DataFrame
) -> None:
    body = [f"06/12/{row[6:]}" for row in BODY]  # 12 June written month-first: 06/12/2023
    # ambiguous on its own (could be 6 December): EPIC writes day-first, so it is read day-first
    ambiguous = read_epic_channel(write(tmp_path, epic_text(body)))
    assert ambiguous.frame.get_column("time").dt.month().unique().to_list() == [12]
    # a date that cannot be day-first (13 June -> 06/13) settles it for the file
    body[-1] = "06/13/2023" + body[-1][10:]
    channel = read_epic_channel(write(tmp_path, epic_text(body)))
    finding = only(channel.findings, "date_order")
    assert "06/13/2023" in finding.message and finding.severity is Severity.WARNING
    assert channel.frame.get_column("time").dt.month().unique().to_list() == [6]
    assert channel.frame.height == ROWS


def test_ambiguous_dates_in_a_wide_csv_are_a_warning(tmp_path: Path) -> None:
    csv = "time,Ga.T\n06/07/2023 10:00:00,300.0\n06/07/2023 10:00:01,300.1\n"
    result = read_wide(write(tmp_path, csv, "wide.csv"))
    finding = only(result.findings, "ambiguous_date_order")
    assert "date_order='mdy'" in finding.hint
    assert result.sensors.get_column("time").first() == datetime(2023, 7, 6, 10, 0, tzinfo=UTC)
    settled = read_wide(tmp_path / "wide.csv", date_order="mdy")
    assert settled.sensors.get_column("time").first() == datetime(2023, 6, 7, 10, 0, tzinfo=UTC)
    assert "ambiguous_date_order" not in codes(settled.findings)


# --- rows kept for validation to judge: NaN/inf, 9.9e9, repeats, time going back -----------------


def test_values_and_order_problems_are_kept_with_their_lines(tmp_path: Path) -> None:
    body = list(BODY)
    body[3] = body[3].split(",")[0] + ",NaN"
    body[4] = body[4].split(",")[0] + ",inf"
    body[6] = body[6].split(",")[0] + ",9.9E+09"  # an ion gauge's over-range code
    body[8] = body[7]  # a repeated row
    body[15], body[16] = body[16], body[15]  # time steps back
    channel = read_epic_channel(write(tmp_path, epic_text(body)))
    assert channel.frame.height == ROWS  # nothing dropped
    values = channel.frame.get_column("value")
    assert values.is_nan().sum() == 1 and values.is_infinite().sum() == 1
    assert values.filter(values.is_finite()).max() == 9.9e9
    non_finite = [f for f in channel.findings if f.code == "non_finite_line"]
    assert [f.line for f in non_finite] == [FIRST_ROW_LINE + 3, FIRST_ROW_LINE + 4]
    assert only(channel.findings, "repeated_line").line == FIRST_ROW_LINE + 8
    assert only(channel.findings, "time_steps_back").line == FIRST_ROW_LINE + 16
    assert all(f.severity is Severity.INFO for f in channel.findings)


def test_validation_judges_what_the_reader_kept(tmp_path: Path) -> None:
    gauge = [row.split(",")[0] + ",2.5E-08" for row in BODY]
    gauge[10] = gauge[10].split(",")[0] + ",9.9E+09"
    path = write(
        tmp_path,
        epic_text(gauge, header=[h.replace("Ga.PID.MV", "GC IG.PG.MV") for h in HEADER]),
        "GC IG.PG.MV.txt",
    )
    day = read_epic_day(tmp_path)
    assert day.sensors.get_column("value").max() == 9.9e9
    report = validate_run(day.sensors)
    assert "gauge_over_range" in codes(report.findings)
    assert path.exists()


# --- missing header, daylight saving -------------------------------------------------------------


def test_log_without_header_takes_the_tag_from_its_name(tmp_path: Path, good: pl.DataFrame) -> None:
    channel = read_epic_channel(write(tmp_path, epic_text(header=[])))
    assert channel.tag == "Ga.PID.MV"
    assert only(channel.findings, "missing_header").severity is Severity.WARNING
    assert channel.frame.equals(good)


def test_daylight_saving_fall_back_and_spring_forward(tmp_path: Path) -> None:
    # 29 Oct 2023 in Berlin: 02:00-03:00 happens twice; 26 Mar 2023: 02:00-03:00 does not exist
    fall = [
        f"29/10/2023 0{h}:{m}:00.000,{i}"
        for i, (h, m) in enumerate([(1, 50), (2, 10), (2, 50), (2, 10), (2, 50), (3, 10)])
    ]
    channel = read_epic_channel(write(tmp_path, epic_text(fall)), tz="Europe/Berlin")
    times = channel.frame.get_column("time")
    assert times.is_sorted() and times.n_unique() == 6
    assert times.diff().drop_nulls().dt.total_minutes().to_list() == [20, 40, 20, 40, 20]
    spring = ["26/03/2023 01:59:00.000,1", "26/03/2023 02:30:00.000,2", "26/03/2023 03:01:00.000,3"]
    channel = read_epic_channel(write(tmp_path, epic_text(spring)), tz="Europe/Berlin")
    assert channel.frame.height == 2
    gap = only(channel.findings, "unparseable_line")
    assert gap.line == FIRST_ROW_LINE + 1 and "daylight-saving" in gap.message


# --- every reader, every bad file: findings, never an exception ---------------------------------

BAD_FILES: dict[str, bytes] = {
    "empty": b"",
    "binary": noise(7, 2000),
    "nul": b"\x00" * 100,
    "utf16": "time,Ga.T\r\n".encode("utf-16"),
    "one-line": b"hello",
    "only-header": b"time,Ga.T\n",
    "ragged": b"a,b,c\n1\n1,2,3,4,5\n\n,,,\n",
    "quotes": b'"unterminated,1\n2,"3\n',
    "huge-line": b"x" * 200_000,
    "latin1": "Zeit;Temperatur (\xb0C)\n".encode("latin-1"),
}
READERS: dict[str, Callable[[Path], object]] = {
    "epic_channel": read_epic_channel,
    "wide_csv": read_wide,
    "calibration": read_calibration_table,
    "rheed": read_rheed_export,
    "measurements": read_measurements,
    "any": read_any,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("bad", BAD_FILES)
def test_no_reader_raises_on_bad_files(tmp_path: Path, reader: str, bad: str) -> None:
    path = write(
        tmp_path,
        BAD_FILES[bad],
        f"2018-01-05_10-40-40_Ga.{'csv' if reader == 'wide_csv' else 'txt'}",
    )
    result = READERS[reader](path)
    findings = result.findings  # type: ignore[attr-defined]
    assert any(f.severity is not Severity.INFO for f in findings), [str(f) for f in findings]
    assert_explained(findings)


def test_broken_parquet_is_an_error(tmp_path: Path) -> None:
    result = read_wide(write(tmp_path, b"PAR1 but not really", "wide.parquet"))
    assert only(result.findings, "unreadable_parquet").severity is Severity.ERROR


def test_fuzzed_epic_logs_never_raise(tmp_path: Path) -> None:
    """Random damage to a real log (cut, inserted bytes, swapped and doubled lines): the reader
    always answers, keeps rows only from the file, and points at lines that exist."""
    rng = random.Random(2023)
    original = epic_text().encode()
    for case in range(120):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            action = rng.choice(["cut", "insert", "delete", "swap"])
            if action == "cut":
                del data[at:]
            elif action == "insert":
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif action == "delete":
                del data[at : at + rng.randint(1, 30)]
            else:
                lines = bytes(data).split(b"\r\n")
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"\r\n".join(lines))
        path = write(tmp_path, bytes(data), f"case{case}-Ga.PID.MV.txt")
        channel = read_epic_channel(path)
        assert channel.frame.height <= ROWS + 1
        last = len(bytes(data).replace(b"\r\n", b"\n").split(b"\n"))
        assert all(f.line is None or 1 <= f.line <= last for f in channel.findings)
        assert_explained(channel.findings)


# --- EPIC event logs and wide rows ---------------------------------------------------------------

SHUTTERS = (
    "'EPIC Shutter Log File\r\n\r\n'Date&Time,Sub_Sh,Ga_Sh,In_Sh,Mystery\r\n"
    "12/06/2023 01:21:15.153,1,0,0,5\r\n"
    "12/06/2023 02:23:24.656,1,x,0,5\r\n"  # one unreadable state: only it is lost
    "12/06/2023 02:51:2\r\n"  # cut short
    "12/06/2023 05:15:03.145,1,1,0,5\r\n"
)


def test_shutter_log_keeps_every_readable_state(tmp_path: Path) -> None:
    day = tmp_path / "day"
    day.mkdir()
    write(day, SHUTTERS, "Shutters.txt")
    write(day, epic_text(BODY[:3]))
    shutters = read_epic_day(day).shutters
    ga = shutters.filter(pl.col("channel") == "Ga.shutter").get_column("value").to_list()
    assert ga == [0.0, 1.0]
    assert shutters.filter(pl.col("channel") == "sub.shutter").height == 3
    assert shutters.filter(pl.col("channel") == "raw:Mystery").height == 3
    findings = read_epic_day(day).findings
    lines = {f.line: f.message for f in findings if f.code == "unparseable_line"}
    assert set(lines) == {5, 6}
    assert "'Ga_Sh' is not a number" in lines[5]
    assert "one field, expected 5" in lines[6]
    assert "unknown_tag" in codes(findings)


def test_shutter_log_without_column_line_is_an_error(tmp_path: Path) -> None:
    text = "'EPIC Shutter Log File\r\n\r\n12/06/2023 01:21:15.153,1,0\r\n"
    write(tmp_path, text, "Shutters.txt")
    write(tmp_path, epic_text(BODY[:3]))
    day = read_epic_day(tmp_path)
    assert only(day.findings, "no_shutter_columns").severity is Severity.ERROR
    assert day.sensors.height == 3  # the channel logs are still read


def test_messages_with_commas_and_bad_lines(tmp_path: Path) -> None:
    text = (
        "'EPIC Message Log File\r\n\r\n'Date&Time,CallerID,Message,Color\r\n"
        "12/06/2023 00:12:00.661,Recipe,Layer 3: GaAs, 20 nm, start,-16777216\r\n"
        "garbled line\r\n"
        "12/06/2023 00:13:06.903,Location Tab,M8abcd moved from MC_manip to GC,-16777216\r\n"
    )
    write(tmp_path, text, "Messages.txt")
    write(tmp_path, epic_text(BODY[:3]))
    day = read_epic_day(tmp_path)
    assert day.messages.get_column("message").to_list() == [
        "Layer 3: GaAs, 20 nm, start",
        "M8abcd moved from MC_manip to GC",
    ]
    assert only(day.findings, "unparseable_line").line == 5


def test_junk_between_header_and_rows_is_a_bad_line(tmp_path: Path) -> None:
    channel = read_epic_channel(write(tmp_path, epic_text(["-- logger restarted --", *BODY])))
    assert only(channel.findings, "unparseable_line").line == FIRST_ROW_LINE
    assert channel.frame.height == ROWS


def test_short_row_in_a_wide_csv_is_reported(tmp_path: Path) -> None:
    csv = (
        "time,Ga.T,sub.T\n2023-06-12T08:00:00Z,900,580\n"
        "2023-06-12T08:00:01Z,901\n"  # a cell short
        "2023-06-12T08:00:02Z,902,581\n"
    )
    result = read_wide(write(tmp_path, csv, "w.csv"))
    finding = only(result.findings, "unparseable_line")
    assert finding.line == 3 and "2 fields, expected 3" in finding.message
    assert result.sensors.height == 4
