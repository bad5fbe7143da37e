"""Wide CSV/Parquet, flux-calibration tables, RHEED exports, measurement CSVs, format detection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.findings import Finding, Severity
from epi_ml.readers import (
    MEASUREMENT_SCHEMA,
    ReadResult,
    UnknownFormat,
    detect_format,
    read_any,
    read_calibration_table,
    read_measurements,
    read_rheed_export,
    read_wide,
)

T0 = datetime(2023, 6, 12, 8, 0, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def channel(result: ReadResult, name: str) -> pl.DataFrame:
    return result.sensors.filter(pl.col("channel") == name)


# --- wide CSV / Parquet ---------------------------------------------------------------------------


def test_wide_csv_with_iso_times_tags_units_and_gaps(tmp_path: Path) -> None:
    csv = (
        "time,Ga.PID.MV,P.chamber [mbar],sub.T,FancyNewSensor\n"
        "2023-06-12T08:00:00.000Z,900.1,1.0e-8,580,1\n"
        "2023-06-12T08:00:01.000Z,900.2,,581,2\n"  # empty cell: no sample
        "2023-06-12T08:00:02.500Z,900.3,2.0e-8,n/a,3\n"  # bad cell: only it is lost
    )
    result = read_wide(write(tmp_path / "run.csv", csv))
    assert result.sensors.schema == pl.Schema(SENSOR_SCHEMA)
    ga = channel(result, "Ga.T")
    assert ga.get_column("value").to_list() == [900.1, 900.2, 900.3]
    assert ga.get_column("time").to_list()[2] == datetime(2023, 6, 12, 8, 0, 2, 500000, tzinfo=UTC)
    chamber = channel(result, "P.chamber").get_column("value").to_list()
    assert chamber == pytest.approx([0.750062e-8, 1.500124e-8])  # mbar -> Torr
    assert channel(result, "sub.T").height == 2
    assert channel(result, "raw:FancyNewSensor").height == 3  # unknown: kept under raw:
    assert {"unknown_tag", "unit_converted", "unparseable_line"} <= codes(result.findings)
    bad = next(f for f in result.findings if f.code == "unparseable_line")
    assert bad.line == 4 and "'sub.T' is not a number" in bad.message
    assert result.ok


def test_wide_csv_epoch_seconds_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    start = T0.timestamp()
    csv = f"Time;Ga.T;As.valve\n{start:.3f};900,5;40,0\n{start + 1.5:.3f};900,6;40,5\n"
    result = read_wide(write(tmp_path / "export.csv", csv))
    assert channel(result, "Ga.T").get_column("value").to_list() == [900.5, 900.6]
    assert channel(result, "As.valve").get_column("time").to_list() == [
        T0,
        datetime(2023, 6, 12, 8, 0, 1, 500000, tzinfo=UTC),
    ]


def test_wide_csv_naive_times_are_in_the_given_zone(tmp_path: Path) -> None:
    csv = "timestamp,Ga.T\n2023-06-12 10:00:00,900\n"
    result = read_wide(write(tmp_path / "w.csv", csv), tz="Europe/Berlin")
    assert result.sensors.get_column("time").item() == T0


def test_wide_csv_structure_errors(tmp_path: Path) -> None:
    no_time = read_wide(write(tmp_path / "a.csv", "Ga.T,sub.T\n1,2\n"))
    assert codes(no_time.findings) == {"no_time_column"} and not no_time.ok
    relative = read_wide(write(tmp_path / "b.csv", "time,Ga.T\n0,1\n1,2\n"))
    assert "relative_time" in codes(relative.findings) and relative.sensors.is_empty()
    repeated = read_wide(write(tmp_path / "c.csv", "time,Ga.T,Ga.T\n2023-06-12T08:00:00,1,2\n"))
    assert "repeated_column" in codes(repeated.findings)


def test_wide_parquet_typed_and_long(tmp_path: Path) -> None:
    naive = pl.datetime_range(
        datetime(2023, 6, 12, 10), datetime(2023, 6, 12, 10, 0, 2), "1s", time_unit="us", eager=True
    )
    wide = pl.DataFrame(
        {
            "time": naive,
            "Ga.T": [900, 901, 902],
            "Sub.PID.MV": [580.0, None, 581.0],
            "flag": [True, False, True],
        }
    )
    wide.write_parquet(tmp_path / "w.parquet")
    result = read_wide(tmp_path / "w.parquet", tz="Europe/Berlin")
    assert channel(result, "Ga.T").get_column("time").first() == T0
    assert channel(result, "sub.T").height == 2
    assert channel(result, "raw:flag").get_column("value").to_list() == [1.0, 0.0, 1.0]
    long = pl.DataFrame(
        {"time": [T0, T0], "channel": ["Ga.PID.MV", "Mystery"], "value": [900.0, 1.0]}
    )
    long.write_parquet(tmp_path / "l.parquet")
    result = read_wide(tmp_path / "l.parquet")
    assert sorted(result.sensors.get_column("channel")) == ["Ga.T", "raw:Mystery"]
    assert "unknown_tag" in codes(result.findings)


# --- flux-calibration tables ----------------------------------------------------------------------

CALIBRATION = (
    "Ga\tBFM.P\tMBE.P\tBFM.P_STD\tMBE.P_STD\r\n"
    "960\t1.62E-07\t3.1E-09\t1.2E-09\t2E-11\r\n"
    "950\t1.38E-07\t3.0E-09\t1.1E-09\t2E-11\r\n"
    "940\t1.16E-07\t3.0E-09\t1.0E-09\t2E-11\r\n"
)


def test_calibration_table_with_standard_deviations(tmp_path: Path) -> None:
    table = read_calibration_table(write(tmp_path / "2018-01-05_10-40-40_Ga.txt", CALIBRATION))
    assert table.cell == "Ga" and table.setting == "T_C"
    assert table.taken_at == datetime(2018, 1, 5, 10, 40, 40, tzinfo=UTC)
    assert table.points.columns == ["T_C", "bep", "background", "bep_std", "background_std"]
    assert table.points.get_column("T_C").to_list() == [960.0, 950.0, 940.0]
    assert table.net_bep.to_list() == pytest.approx([1.589e-7, 1.35e-7, 1.13e-7])
    assert table.findings == [] and table.ok


def test_calibration_quirks_of_appending_lab_scripts(tmp_path: Path) -> None:
    text = (
        CALIBRATION
        + "Ga\tBFM.P\tMBE.P\tBFM.P_STD\tMBE.P_STD\r\n"  # the script appended a second scan
        + "930\tx\t3E-09\t1E-9\t1E-11\r\n920\t0\t3E-09\t0\t0\r\n"
    )
    table = read_calibration_table(
        write(tmp_path / "2018-01-09_08-00-00_In.txt", text), tz="Europe/Zurich"
    )
    assert table.taken_at == datetime(2018, 1, 9, 7, 0, tzinfo=UTC)
    assert table.cell == "Ga"  # the header wins; the name disagreeing is a warning
    assert {"repeated_header", "cell_mismatch", "unparseable_line", "bad_point"} <= codes(
        table.findings
    )
    bad = next(f for f in table.findings if f.code == "unparseable_line")
    assert bad.line == 6 and "BFM.P is not a number" in bad.message
    assert table.points.height == 4  # 3 good + the zero reading (kept, warned)


def test_valve_calibration_without_header(tmp_path: Path) -> None:
    table = read_calibration_table(
        write(tmp_path / "2017-07-03_As.txt", "10\t1.72E-07\t1E-9\n20\t4.16E-07\t1E-9\n")
    )
    assert table.cell == "As" and table.setting == "valve_pct"
    assert table.points.get_column("valve_pct").to_list() == [10.0, 20.0]
    assert "no_header" in codes(table.findings)
    unnamed = read_calibration_table(write(tmp_path / "scan.txt", CALIBRATION))
    assert unnamed.taken_at is None and "no_date_in_name" in codes(unnamed.findings)


# --- RHEED exports ----------------------------------------------------------------------------

POINT_SCAN = """Recorded at 2025-12-22   15:39:37.869
 Time [s]   Sensor 1    Sensor 2    Sensor 3
          ( 33703860) (   194310) ( 25263360)

  -0.000     422.366     2.10967     11.8461
   1.000     371.325     1.83105     10.8148
   2.000     467.195     6.27208     13.6955
   3.500     224.561      1.5964     40.8148
"""


def test_vendor_point_scan_export(tmp_path: Path) -> None:
    trace = read_rheed_export(
        write(tmp_path / "export point scan.asc", POINT_SCAN), tz="Europe/Berlin"
    )
    assert trace.started_at == datetime(2025, 12, 22, 14, 39, 37, 869000, tzinfo=UTC)
    assert trace.windows == ["Sensor 1", "Sensor 2", "Sensor 3"]
    assert trace.frame.get_column("time_s").to_list() == [0.0, 1.0, 2.0, 3.5]  # uneven steps kept
    assert trace.frame.get_column("Sensor 3").to_list()[3] == 40.8148
    assert trace.findings == []
    samples = trace.to_sensors("Sensor 1")
    assert samples.get_column("time").to_list()[3] == datetime(
        2025, 12, 22, 14, 39, 41, 369000, tzinfo=UTC
    )


def test_plain_csv_traces(tmp_path: Path) -> None:
    relative = read_rheed_export(
        write(tmp_path / "r.csv", "time,intensity\n0.0,1.0\n0.033,1.2\n0.07,oops\n0.1,1.1\n")
    )
    assert relative.started_at is None and relative.windows == ["intensity"]
    assert relative.frame.height == 4 and relative.frame.get_column("intensity").null_count() == 1
    assert next(f for f in relative.findings if f.code == "unparseable_line").line == 4
    absolute = read_rheed_export(
        write(tmp_path / "a.csv", "time,I\n2023-06-12T08:00:00Z,1\n2023-06-12T08:00:00.5Z,2\n")
    )
    assert absolute.started_at == T0 and absolute.frame.get_column("time_s").to_list() == [0.0, 0.5]
    millis = read_rheed_export(write(tmp_path / "m.csv", "Time [ms],I\n0,1\n250,2\n"))
    assert millis.frame.get_column("time_s").to_list() == [0.0, 0.25]


# --- measurements -----------------------------------------------------------------------------

MEASUREMENTS = """run_id,layer_index,kind,value,uncertainty,measured_at,notes
mbe1-20240105-1,2,xrd_thickness_nm,20.3,0.2,2024-01-08T10:15:00Z,"Omega-2theta, (004)"
mbe1-20240105-1,,xrd_composition,0.301,0.004,2024-01-08T10:20:00Z,
mbe1-20240105-1,1,pl_peak_nm,871.6,0.7,,
mbe1-20240105-2,1,pl_peak_nm,abc,0.7,,
"""


def test_measurements_are_typed_and_bad_rows_listed(tmp_path: Path) -> None:
    result = read_measurements(write(tmp_path / "m.csv", MEASUREMENTS))
    frame = result.frame
    assert frame.columns == [*MEASUREMENT_SCHEMA, "notes"]
    assert frame.height == 3
    assert frame.get_column("layer_index").to_list() == [2, None, 1]
    assert frame.get_column("measured_at").to_list()[0] == datetime(2024, 1, 8, 10, 15, tzinfo=UTC)
    assert frame.get_column("notes").to_list()[0] == "Omega-2theta, (004)"
    bad = [f for f in result.findings if f.severity is not Severity.INFO]
    assert [(f.code, f.line) for f in bad] == [("unparseable_line", 5)]


def test_measurements_plausibility_and_structure(tmp_path: Path) -> None:
    text = (
        "run_id,kind,value\nmbe1-20240105-1,xrd_composition,30\nrun7,pl_peak_nm,871\n"
        "run7,pl_peak_nm,871\nmbe1-20240105-1,raman_cm1,290\n"
    )
    result = read_measurements(write(tmp_path / "m.csv", text))
    assert result.frame.height == 4 and result.ok
    assert {"implausible_value", "unusual_run_id", "repeated_measurement", "unknown_kind"} <= codes(
        result.findings
    )
    percent = next(f for f in result.findings if f.code == "implausible_value")
    assert "fractions" in percent.hint
    missing = read_measurements(write(tmp_path / "x.csv", "run,value\nr,1\n"))
    assert codes(missing.findings) == {"missing_columns"} and not missing.ok


# --- detection --------------------------------------------------------------------------------


def test_detect_format_by_content(tmp_path: Path) -> None:
    assert (
        detect_format(write(tmp_path / "2018-01-05_10-40-40_Ga.txt", CALIBRATION)) == "calibration"
    )
    assert detect_format(write(tmp_path / "scan.asc", POINT_SCAN)) == "rheed"
    assert detect_format(write(tmp_path / "r.csv", "time,intensity\n0,1\n")) == "rheed"
    assert (
        detect_format(write(tmp_path / "w.csv", "time,Ga.T,sub.T\n2023-06-12T08:00:00,1,2\n"))
        == "wide_csv"
    )
    assert detect_format(write(tmp_path / "m.csv", MEASUREMENTS)) == "measurements"
    assert (
        detect_format(write(tmp_path / "x.txt", "12/06/2023 00:00:01.727,300.0\n"))
        == "epic_channel"
    )
    pl.DataFrame({"time": [T0], "Ga.T": [1.0]}).write_parquet(tmp_path / "w.parquet")
    assert detect_format(tmp_path / "w.parquet") == "wide_parquet"
    assert (
        detect_format(write(tmp_path / "empty.csv", "")) == "wide_csv"
    )  # its reader says it is empty
    assert detect_format(tmp_path) == "epic_day"


def test_unknown_formats_raise_in_detect_and_are_findings_in_read_any(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.md", "# Growth notes\nAll fine.\n")
    with pytest.raises(UnknownFormat, match="Growth notes"):
        detect_format(path)
    with pytest.raises(UnknownFormat, match="no such file"):
        detect_format(tmp_path / "absent.csv")
    result = read_any(path)
    assert isinstance(result, ReadResult) and [f.code for f in result.findings] == [
        "unknown_format"
    ]
    assert not result.ok


def test_read_any_dispatches(tmp_path: Path) -> None:
    wide = read_any(write(tmp_path / "w.csv", "time,Ga.T\n2023-06-12T08:00:00Z,900\n"))
    assert isinstance(wide, ReadResult) and wide.sensors.height == 1
    table = read_any(write(tmp_path / "2018-01-05_10-40-40_Ga.txt", CALIBRATION))
    assert table.cell == "Ga"  # type: ignore[union-attr]
    trace = read_any(write(tmp_path / "scan.asc", POINT_SCAN))
    assert trace.windows == ["Sensor 1", "Sensor 2", "Sensor 3"]  # type: ignore[union-attr]


# --- message tables ---------------------------------------------------------------------------


def test_message_tables_csv_and_parquet(tmp_path: Path) -> None:
    csv = (
        "time,caller,message\n"
        "2026-01-05T09:56:32.001Z,Location Tab,W10001 moved from MC_manip to GC\n"
        '2026-01-05T09:56:34.001Z,Recipe,"Run MBE1-20260105-01 start, recipe=rheed_calibration"\n'
        "soon,Recipe,Layer 1 start\n"
    )
    path = write(tmp_path / "run_messages.csv", csv)
    assert detect_format(path) == "messages"
    result = read_any(path)
    assert isinstance(result, ReadResult)
    assert result.frame.columns == ["time", "caller", "message", "color"]
    assert result.frame.get_column("message").to_list()[1] == (
        "Run MBE1-20260105-01 start, recipe=rheed_calibration"
    )
    assert [(f.code, f.line) for f in result.findings] == [("unparseable_line", 4)]
    result.frame.head(2).write_parquet(tmp_path / "m.parquet")
    assert detect_format(tmp_path / "m.parquet") == "messages"
    again = read_any(tmp_path / "m.parquet")
    assert again.frame.equals(result.frame.head(2))  # type: ignore[union-attr]
    no_message = read_any(write(tmp_path / "x.csv", "time,caller\n2026-01-05T09:56:32Z,a\n"))
    assert isinstance(no_message, ReadResult) and no_message.sensors.height == 0
