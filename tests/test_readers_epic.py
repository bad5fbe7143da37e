"""EPIC readers on a real day of a real tool (tests/data/epic-mbe8-2023-06-12-trimmed, MIT licence):
names, units, time zones, the day's real quirks (stand-by plateaus, the GeO ramp, the ion gauges'
excursion, a log whose header names the wrong tag) and the Fitting.txt flux fits."""

from __future__ import annotations

import math
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.findings import Severity
from epi_ml.readers import detect_format, read_any, read_epic_channel, read_epic_day
from epi_ml.readers.epic_fitting import read_epic_fitting
from epi_ml.validation import validate_run

DAY = Path(__file__).parent / "data" / "epic-mbe8-2023-06-12-trimmed"
BERLIN = "Europe/Berlin"
CHANNELS = {
    "Ga.T": 1785,
    "Ga.power": 1769,
    "Ga.T_lip": 1764,
    "GeO.T": 1760,
    "GeO.power": 1758,
    "P.chamber": 1758,
    "P.main": 1758,
    "sub.T": 1758,
    "sub.T_pyro": 1758,
    "sub.power": 1758,
}


@pytest.fixture(scope="module")
def day():
    return read_epic_day(DAY, tz=BERLIN)


def values(day, channel: str) -> pl.Series:
    return day.sensors.filter(pl.col("channel") == channel).get_column("value")


def local(text: str) -> datetime:
    """A Berlin wall-clock time of 12 June 2023 (CEST, UTC+2) as UTC."""
    hour, minute, second = (float(x) for x in text.split(":"))
    wall = datetime(
        2023, 6, 12, int(hour), int(minute), int(second), round(second % 1 * 1e6), tzinfo=UTC
    )
    return wall - timedelta(hours=2)


def test_every_channel_log_is_read_under_its_canonical_name(day) -> None:
    assert day.sensors.schema == pl.Schema(SENSOR_SCHEMA)
    counts = dict(day.sensors.group_by("channel").len().iter_rows())
    assert counts == CHANNELS  # every row of every file, nothing dropped
    assert day.tags["GC IG.PG.MV"] == "P.chamber" and day.tags["Pyro.PID.MV"] == "sub.T_pyro"
    assert day.ok
    assert {p.name for p in day.files} >= {
        "Shutters.txt",
        "Messages.txt",
        "Fitting.txt",
        "Ga.PID.MV.txt",
    }
    assert len(day.files) == 13
    # the licence and notes next to the logs are noted, not read
    assert {Path(f.file).name for f in day.findings if f.code == "skipped_file"} == {
        "LICENSE",
        "README.md",
        "trim.py",
    }


def test_tool_clock_is_converted_to_utc(day) -> None:
    # first row of Ga.PID.MV.txt: `12/06/2023 09:55:01.608,300.0` on the Berlin clock (CEST)
    first_line = (DAY / "Ga.PID.MV.txt").read_text().splitlines()[3]
    assert first_line.startswith("12/06/2023 09:55:01.608,")
    ga = day.sensors.filter(pl.col("channel") == "Ga.T")
    assert ga.get_column("time").first() == local("09:55:01.608")
    default = read_epic_channel(DAY / "Ga.PID.MV.txt")  # tz defaults to UTC
    assert default.frame.get_column("time").first() == datetime(
        2023, 6, 12, 9, 55, 1, 608000, tzinfo=UTC
    )
    assert default.tag == "Ga.PID.MV" and default.frame.height == CHANNELS["Ga.T"]
    messages_time = day.messages.get_column("time").to_list()
    assert messages_time[0] == datetime(2023, 6, 11, 22, 12, 0, 661000, tzinfo=UTC)  # 00:12 CEST


def test_flat_standby_channels_are_read_exactly(day) -> None:
    ga = values(day, "Ga.T")
    assert 299.5 <= ga.min() and ga.max() <= 300.5 and ga.std() < 0.2
    lip = values(day, "Ga.T_lip")
    assert lip.min() >= 449.5 and lip.max() <= 450.5


def test_geo_ramp_from_its_hold_to_1010_c(day) -> None:
    geo = day.sensors.filter(pl.col("channel") == "GeO.T")
    assert geo.get_column("value").min() == pytest.approx(900.0, abs=0.2)
    assert geo.get_column("value").max() == pytest.approx(1010.1, abs=0.2)
    crossing = geo.filter(pl.col("value") > 950).get_column("time").first()
    assert local("10:10:00") < crossing < local("10:20:00")
    power = values(day, "GeO.power")
    assert power.max() > power.min() + 3  # the controller pushes power during the ramp


def test_ion_gauges_read_in_torr_through_the_excursion(day) -> None:
    chamber, main = values(day, "P.chamber"), values(day, "P.main")
    assert (chamber > 0).all() and (main > 0).all()
    assert chamber.min() == pytest.approx(2.92e-8) and chamber.max() == pytest.approx(1.17e-6)
    assert main.min() == pytest.approx(1.0e-9) and main.max() == pytest.approx(2.0e-8)


def test_header_naming_the_wrong_tag_is_a_warning_and_the_file_name_wins(day) -> None:
    mismatch = [f for f in day.findings if f.code == "tag_mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0].severity is Severity.WARNING
    assert Path(mismatch[0].file).name == "Pyro.PID.MV.txt" and "Sub.PID.MV" in mismatch[0].message
    assert mismatch[0].channel == "sub.T_pyro" and mismatch[0].details["tag"] == "Pyro.PID.MV"
    # both logs are kept, under different channels
    assert values(day, "sub.T_pyro").len() == values(day, "sub.T").len() == 1758


def test_shutter_events_are_long_rows_per_shutter(day) -> None:
    shutters = day.shutters
    assert shutters.schema == pl.Schema(SENSOR_SCHEMA)
    assert shutters.height == 7 * 12  # 7 events x 12 shutter columns
    assert set(shutters.get_column("channel")) >= {
        "sub.shutter",
        "Ga.shutter",
        "GeO.shutter",
        "LN2.shutter",
    }
    ga = shutters.filter(pl.col("channel") == "Ga.shutter").get_column("value").to_list()
    assert ga == [0, 1, 0, 1, 1, 0, 0]
    assert set(shutters.get_column("value")) == {0.0, 1.0}
    assert shutters.get_column("time").first() == local("01:21:15.153")


def test_messages_keep_caller_text_and_colour(day) -> None:
    assert day.messages.height == 3
    row = day.messages.row(1, named=True)
    assert row["caller"] == "Location Tab"
    assert row["message"] == "M8abcd moved from MC_manip to GC"
    assert row["color"] == -16777216


def test_fitting_coefficients_are_natural_log_arrhenius_fits(day) -> None:
    assert len(day.fittings) == 10
    ga = day.fittings["Ga"]
    assert (ga.fit, ga.order, ga.bep_to_flux) == ("AEF", 1, 4_926_000.0)
    assert ga.coeffs == (4.614, -23130.0)
    # ln(BEP) = a + b/T, T in K: 2.8e-7 Torr at 900 °C (the log10 reading would give 8e-16)
    bep = ga.bep_torr(900.0)
    assert bep == pytest.approx(math.exp(4.614 - 23130.0 / 1173.15))
    assert 1e-7 < bep < 1e-6
    assert ga.bep_torr(960.0) > bep * 1.5  # flux rises steeply with temperature
    assert day.fittings["Ge"].coeffs == (0.3758, -25760.0)
    assert day.fittings["In"].bep_torr(800.0) == pytest.approx(math.exp(5.566 - 22010 / 1073.15))


def test_fitting_file_with_broken_sections_keeps_the_others(tmp_path: Path) -> None:
    text = (DAY / "Fitting.txt").read_text()
    text = text.replace("Coeff=5.566E00,-2.201E04", "Coeff=5.566E00;oops")  # In
    text = text.replace(
        "Order=1\nBEPtoFlux=5181300\nCoeff=1.195E00", "Order=x\nBEPtoFlux=5181300\nCoeff=1.195E00"
    )
    text += "# Al\nFit=AEF\nOrder=1\n\nstray line\n"
    path = tmp_path / "Fitting.txt"
    path.write_text(text)
    fittings, findings = read_epic_fitting(path)
    assert "In" not in fittings and "Al" not in fittings and "Ga" in fittings
    by_code = {f.code for f in findings}
    assert {"bad_fit", "unparseable_line"} <= by_code
    assert all(f.severity is Severity.WARNING for f in findings)
    assert any(f.channel == "In" and f.line for f in findings)


def test_day_goes_through_validation(day) -> None:
    report = validate_run(day.all_sensors)
    codes = {f.code for f in report.findings}
    assert report.status != "quarantined"
    assert "pressure_excursion" in codes  # the venting-like rise of the ion gauges


def test_detect_and_read_any_on_real_files() -> None:
    assert detect_format(DAY) == "epic_day"
    assert detect_format(DAY / "GC IG.PG.MV.txt") == "epic_channel"
    assert detect_format(DAY / "Shutters.txt") == "epic_shutters"
    assert detect_format(DAY / "Messages.txt") == "epic_messages"
    assert detect_format(DAY / "Fitting.txt") == "epic_fitting"
    channel = read_any(DAY / "GC IG.PG.MV.txt", tz=BERLIN)
    assert channel.frame.height == CHANNELS["P.chamber"]
    fits = read_any(DAY / "Fitting.txt")
    assert fits.frame.filter(pl.col("cell") == "Ga").get_column("coeffs").item().to_list() == [
        4.614,
        -23130.0,
    ]


def test_unknown_tag_and_foreign_files_in_a_day(tmp_path: Path) -> None:
    day_dir = tmp_path / "day"
    shutil.copytree(DAY, day_dir)
    ga = (day_dir / "Ga.PID.MV.txt").read_text()
    (day_dir / "QMB.PID.MV.txt").write_text(ga.replace("Ga.PID.MV", "QMB.PID.MV"))
    (day_dir / "notes.txt").write_text("grew sample M8abcd, all fine\n")
    (day_dir / "Ga.PID.wOP.txt").write_bytes(b"\x00\x01\x02garbage" * 50)  # one broken log
    day = read_epic_day(day_dir, tz=BERLIN)
    unknown = [f for f in day.findings if f.code == "unknown_tag"]
    assert len(unknown) == 1 and unknown[0].severity is Severity.WARNING
    assert unknown[0].channel == "raw:QMB.PID.MV"
    assert values(day, "raw:QMB.PID.MV").len() == CHANNELS["Ga.T"]  # kept, nothing lost
    assert any(f.code == "not_an_epic_log" and f.file.endswith("notes.txt") for f in day.findings)
    broken = [f for f in day.findings if f.code == "binary_file"]
    assert len(broken) == 1 and broken[0].severity is Severity.ERROR
    # the broken log is reported; every other channel is still read
    assert values(day, "GeO.T").len() == CHANNELS["GeO.T"]
    assert "Ga.power" not in set(day.sensors.get_column("channel"))


def test_day_folder_problems_are_findings(tmp_path: Path) -> None:
    missing = read_epic_day(tmp_path / "nope")
    assert [f.code for f in missing.findings] == ["not_a_folder"]
    (tmp_path / "empty").mkdir()
    empty = read_epic_day(tmp_path / "empty")
    assert "no_channel_logs" in {f.code for f in empty.findings} and not empty.ok
    with pytest.raises(ValueError, match="time zone"):
        read_epic_day(DAY, tz="Mars/Olympus")
