"""Validation of sensor streams: each check fires on its fault (right code, severity, channel,
time) and stays silent on a clean run; plus the real EPIC day with its real quirks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.signal import lfilter

from epi_ml.channels import SENSOR_SCHEMA, empty_sensor_frame
from epi_ml.findings import Finding, Severity
from epi_ml.validation import (
    DEFAULT_LIMITS,
    STATS_SCHEMA,
    ScheduleStep,
    ValidationReport,
    run_statistics,
    validate_run,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
RUN_S = 3600
EPIC_DAY = Path("/work/shared/data/epic-mbe8-2023-06-12")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- a clean synthetic run --------------------------------------------------------------------
# 1 h at 1 Hz: cells idle at stand-by, ramp up (600-1200 s), GaAs (Ga open 1500-2700 s) with
# AlGaAs on top (Al open 2100-2700 s) under As (1200-3000 s), ramp down from 3000 s.

SHUTTER_EVENTS = {
    "Ga": [(0, 0), (1500, 1), (2700, 0)],
    "Al": [(0, 0), (2100, 1), (2700, 0)],
    "As": [(0, 0), (1200, 1), (3000, 0)],
}
SCHEDULE = [
    ScheduleStep(at(1200), at(1500), frozenset({"As"}), "anneal"),
    ScheduleStep(at(1500), at(2100), frozenset({"Ga", "As"}), "GaAs"),
    ScheduleStep(at(2100), at(2700), frozenset({"Ga", "Al", "As"}), "AlGaAs"),
]


def _lag(x: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order lag of a 1 Hz signal: how a cell follows its setpoint."""
    a = np.exp(-1.0 / tau_s)
    return lfilter([1 - a], [1, -a], x, zi=[a * x[0]])[0]


def _shutter_state(events: list[tuple[int, int]], t: np.ndarray) -> np.ndarray:
    state = np.zeros_like(t)
    for start, value in events:
        state[t >= start] = value
    return state


def clean_run(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(RUN_S, dtype=float)
    series: dict[str, np.ndarray] = {}
    for cell, idle, hot in (("Ga", 550.0, 900.0), ("Al", 700.0, 1050.0)):
        setpoint = np.interp(t, [0, 600, 1200, 3000, 3500], [idle, idle, hot, hot, idle])
        opening = np.clip(np.diff(np.r_[0.0, _shutter_state(SHUTTER_EVENTS[cell], t)]), 0, None)
        dip = _lag(opening * -30.0, 30.0)  # the flux transient cools the cell by ~1 °C
        series[f"{cell}.T_set"] = setpoint
        series[f"{cell}.T"] = _lag(setpoint, 20.0) + dip + rng.normal(0, 0.05, t.size)
        series[f"{cell}.power"] = 30 + 0.02 * (setpoint - idle) + rng.normal(0, 0.2, t.size)
    series["sub.T_set"] = np.full(t.size, 600.0)
    series["sub.T"] = 600 + rng.normal(0, 0.1, t.size)
    series["sub.rpm"] = np.full(t.size, 10.0)
    as_open = (t >= 1200) & (t < 3000)
    series["As.valve"] = np.where(as_open, 60.0, 0.0)
    background = _lag(np.where(as_open, 2e-7, 5e-10), 60.0)
    series["P.chamber"] = background * (1 + rng.normal(0, 0.03, t.size))
    series["BEP"] = 1e-9 * (1 + rng.normal(0, 0.03, t.size))
    growing = (t >= 1500) & (t < 2700)
    series["RHEED.I"] = (
        1000 + 200 * growing * np.cos(2 * np.pi * t / 3.6) + rng.normal(0, 5, t.size)
    )
    frames = [
        pl.DataFrame({"time": [at(s) for s in t], "channel": name, "value": values})
        for name, values in series.items()
    ]
    frames += [
        pl.DataFrame(
            {
                "time": [at(s) for s, _ in events],
                "channel": f"{source}.shutter",
                "value": [float(v) for _, v in events],
            }
        )
        for source, events in SHUTTER_EVENTS.items()
    ]
    return pl.concat([f.cast(SENSOR_SCHEMA) for f in frames])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return clean_run()


def change(
    frame: pl.DataFrame, channel: str, start_s: float, end_s: float, value: pl.Expr | float
) -> pl.DataFrame:
    """The run with `channel`'s samples in [start_s, end_s) replaced by `value`."""
    hit = (pl.col("channel") == channel) & pl.col("time").is_between(
        at(start_s), at(end_s), closed="left"
    )
    return frame.with_columns(value=pl.when(hit).then(value).otherwise(pl.col("value")))


def only(report: ValidationReport, code: str) -> Finding:
    found = report.by_code(code)
    assert len(found) == 1, f"expected one {code}, got {found}\n{report.summary()}"
    return found[0]


def serious(report: ValidationReport) -> list[Finding]:
    return [f for f in report.findings if f.severity is not Severity.INFO]


# --- clean data -------------------------------------------------------------------------------


def test_clean_run_is_accepted_without_findings(clean: pl.DataFrame) -> None:
    report = validate_run(clean, expected_channels={"Ga.T", "Al.T", "P.chamber"}, schedule=SCHEDULE)
    assert report.findings == [], report.summary()
    assert report.status == "accepted"
    assert report.rows == clean.height
    assert report.summary().startswith("accepted: 0 error(s), 0 warning(s)")


# --- presence and time stamps -----------------------------------------------------------------


def test_missing_expected_channel_is_an_error(clean: pl.DataFrame) -> None:
    report = validate_run(clean.filter(pl.col("channel") != "Ga.T"), expected_channels={"Ga.T"})
    finding = only(report, "missing_channel")
    assert (finding.severity, finding.channel) == (Severity.ERROR, "Ga.T")
    assert report.status == "quarantined"


def test_schedule_sources_are_expected_channels(clean: pl.DataFrame) -> None:
    report = validate_run(clean.filter(pl.col("channel") != "Al.shutter"), schedule=SCHEDULE)
    assert only(report, "missing_channel").channel == "Al.shutter"


def test_all_nan_channel_is_empty(clean: pl.DataFrame) -> None:
    broken = change(clean, "BEP", 0, RUN_S, float("nan"))
    assert only(validate_run(broken), "empty_channel").severity is Severity.WARNING
    expected = only(validate_run(broken, expected_channels={"BEP"}), "empty_channel")
    assert (expected.severity, expected.channel, expected.count) == (Severity.ERROR, "BEP", RUN_S)


def test_some_nan_values_are_a_warning_with_count_and_span(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "sub.T", 100, 110, float("inf")))
    finding = only(report, "non_finite_value")
    assert (finding.severity, finding.channel, finding.count) == (Severity.WARNING, "sub.T", 10)
    assert (finding.start, finding.end) == (at(100), at(109))
    assert report.status == "accepted_with_warnings"


def test_time_stepping_back_is_reported_in_logged_order(clean: pl.DataFrame) -> None:
    rows = clean.filter(pl.col("channel") == "sub.T")
    shuffled = pl.concat(
        [rows.slice(0, 100), rows.slice(200, 100), rows.slice(100, 100), rows.slice(300)]
    )
    report = validate_run(pl.concat([clean.filter(pl.col("channel") != "sub.T"), shuffled]))
    finding = only(report, "non_monotonic_time")
    assert (finding.severity, finding.channel, finding.count) == (Severity.WARNING, "sub.T", 1)
    assert finding.details["largest_step_back_s"] == pytest.approx(199.0)  # 299 s -> 100 s
    assert report.by_code("gap") == []  # sorted before the other checks


def test_exact_duplicates_warn_and_conflicting_duplicates_quarantine(clean: pl.DataFrame) -> None:
    rows = clean.filter((pl.col("channel") == "Ga.T") & pl.col("time").is_between(at(10), at(14)))
    exact = validate_run(pl.concat([clean, rows]))
    duplicate = only(exact, "duplicate_rows")
    assert (duplicate.severity, duplicate.channel, duplicate.count) == (Severity.WARNING, "Ga.T", 5)
    assert exact.status == "accepted_with_warnings"
    conflicting = validate_run(pl.concat([clean, rows.with_columns(pl.col("value") + 1)]))
    finding = only(conflicting, "conflicting_duplicates")
    assert (finding.severity, finding.start, finding.end) == (Severity.ERROR, at(10), at(14))


def test_gap_is_reported_with_its_span(clean: pl.DataFrame) -> None:
    hole = (pl.col("channel") == "Ga.T") & pl.col("time").is_between(
        at(1000), at(1060), closed="left"
    )
    report = validate_run(clean.filter(~hole))
    finding = only(report, "gap")
    assert (finding.severity, finding.channel) == (Severity.WARNING, "Ga.T")
    assert (finding.start, finding.end) == (at(999), at(1060))


def test_channel_that_stops_early_has_a_trailing_gap(clean: pl.DataFrame) -> None:
    report = validate_run(
        clean.filter(~((pl.col("channel") == "BEP") & (pl.col("time") > at(3000))))
    )
    finding = only(report, "gap")
    assert (finding.channel, finding.start, finding.end) == ("BEP", at(3000), at(RUN_S - 1))


def test_empty_run_and_rows_without_time_are_errors(clean: pl.DataFrame) -> None:
    assert only(validate_run(empty_sensor_frame()), "empty_run").severity is Severity.ERROR
    unplaced = pl.DataFrame({"time": [None], "channel": ["Ga.T"], "value": [1.0]})
    report = validate_run(pl.concat([clean, unplaced.cast(SENSOR_SCHEMA)]))  # type: ignore[arg-type]
    finding = only(report, "incomplete_row")
    assert (finding.severity, finding.count) == (Severity.ERROR, 1)
    assert [f.code for f in report.findings] == ["incomplete_row"]  # the rest checks as usual


def test_unknown_vendor_tag_is_noted(clean: pl.DataFrame) -> None:
    extra = pl.DataFrame(
        {"time": [at(s) for s in range(RUN_S)], "channel": "raw:Foo.PID.MV", "value": 1.0}
    ).cast(SENSOR_SCHEMA)
    report = validate_run(pl.concat([clean, extra]))
    finding = only(report, "unknown_tag")
    assert (finding.severity, finding.channel) == (Severity.INFO, "raw:Foo.PID.MV")
    assert report.status == "accepted"


def test_not_a_sensor_table_is_an_error_not_a_crash() -> None:
    report = validate_run(pl.DataFrame({"when": [1], "what": ["x"]}))
    assert only(report, "bad_schema").severity is Severity.ERROR
    assert report.status == "quarantined"


# --- values -----------------------------------------------------------------------------------


def test_cell_at_minus_50_C_is_impossible(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Al.T", 2000, 2003, -50.0))
    finding = only(report, "impossible_value")
    assert (finding.severity, finding.channel, finding.count) == (Severity.ERROR, "Al.T", 3)
    assert (finding.start, finding.end) == (at(2000), at(2002))
    assert "-50" in finding.message
    assert report.status == "quarantined"


def test_shutter_value_other_than_0_or_1_is_impossible(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Ga.shutter", 1500, 1501, 0.5))
    assert only(report, "impossible_value").channel == "Ga.shutter"


def test_ion_gauge_over_range_code_is_flagged_and_not_used_as_pressure(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "P.chamber", 300, 1000, 9.9e9))
    finding = only(report, "gauge_over_range")
    assert (finding.severity, finding.channel) == (Severity.WARNING, "P.chamber")
    assert (finding.start, finding.end, finding.count) == (at(300), at(999), 700)
    assert report.by_code("stuck_sensor") == report.by_code("flat_standby") == []
    assert report.by_code("impossible_value") == []
    stats = report.stats.row(by_predicate=pl.col("channel") == "P.chamber", named=True)
    assert stats["over_range"] == 700 and stats["max"] < 1e-6
    assert report.status == "accepted_with_warnings"


def test_pressure_excursion_is_a_warning_not_an_error(clean: pl.DataFrame) -> None:
    # Venting-like: the idle chamber rises to 1e-3 Torr for 5 minutes, As closed.
    report = validate_run(change(clean, "P.chamber", 300, 600, 1e-3))
    excursion = only(report, "pressure_excursion")
    assert (excursion.severity, excursion.channel) == (Severity.WARNING, "P.chamber")
    assert at(295) <= excursion.start <= at(335) and at(590) <= excursion.end <= at(640)
    above = only(report, "out_of_operating_range")
    assert (above.channel, above.start, above.end) == ("P.chamber", at(300), at(599))
    assert "venting" in above.hint
    assert report.status == "accepted_with_warnings"


def test_pressure_rise_while_arsenic_flows_is_not_an_excursion(clean: pl.DataFrame) -> None:
    assert (
        validate_run(change(clean, "P.chamber", 1300, 2900, 5e-6)).by_code("pressure_excursion")
        == []
    )


def test_spike_fires_on_a_jump_but_not_on_thermocouple_noise(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Ga.T", 2000, 2001, pl.col("value") + 30))
    finding = only(report, "spike")
    assert (finding.severity, finding.channel, finding.start, finding.count) == (
        Severity.WARNING,
        "Ga.T",
        at(2000),
        1,
    )
    assert finding.details["spikes"][0]["deviation"] == pytest.approx(30, abs=0.5)
    # 0.5 °C of extra noise everywhere is still far below the 5 °C floor.
    rng = np.random.default_rng(1)
    noisy = clean.with_columns(
        value=pl.when(pl.col("channel") == "Ga.T")
        .then(pl.col("value") + pl.Series(rng.normal(0, 0.5, clean.height)))
        .otherwise("value")
    )
    assert validate_run(noisy).by_code("spike") == []


def test_pressure_spike_is_judged_in_decades(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "BEP", 500, 501, 1e-7))
    finding = only(report, "spike")
    assert (finding.channel, finding.start) == ("BEP", at(500))


# --- behaviour over time ----------------------------------------------------------------------


def test_flat_standby_at_setpoint_is_only_info(clean: pl.DataFrame) -> None:
    # A controller holding 550 °C to the last digit while the cell idles, shutter closed.
    report = validate_run(change(clean, "Ga.T", 0, 601, 550.0))  # the ramp starts at 600 s
    finding = only(report, "flat_standby")
    assert (finding.severity, finding.channel) == (Severity.INFO, "Ga.T")
    assert (finding.start, finding.end) == (at(0), at(600))
    assert report.by_code("stuck_sensor") == []
    assert report.status == "accepted"


def test_flat_while_setpoint_moves_is_a_frozen_reading(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Al.T", 700, 1400, 720.0))
    finding = only(report, "stuck_sensor")
    assert (finding.severity, finding.channel) == (Severity.ERROR, "Al.T")
    assert (finding.start, finding.end) == (at(700), at(1399))
    assert finding.details["kind"] == "setpoint_moved"


def test_flat_during_growth_is_a_warning(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Ga.T", 1600, 2400, 900.0))
    finding = only(report, "stuck_sensor")
    assert (finding.severity, finding.channel, finding.start) == (
        Severity.WARNING,
        "Ga.T",
        at(1600),
    )
    assert finding.details["kind"] == "growing"
    rheed = only(validate_run(change(clean, "RHEED.I", 1600, 2400, 0.0)), "stuck_sensor")
    assert (rheed.severity, rheed.channel) == (Severity.WARNING, "RHEED.I")


def test_setpoint_deviation_is_sustained_and_ignores_ramps(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Ga.T", 1800, 1920, pl.col("value") + 5))
    finding = only(report, "setpoint_deviation")
    assert (finding.severity, finding.channel) == (Severity.WARNING, "Ga.T")
    assert (finding.start, finding.end) == (at(1800), at(1919))
    assert finding.details["episodes"][0]["largest_deviation"] == pytest.approx(5, abs=1)
    brief = validate_run(change(clean, "Ga.T", 1800, 1830, pl.col("value") + 5))
    assert brief.by_code("setpoint_deviation") == []  # shorter than setpoint_sustain_s
    # The clean ramps lag their setpoint by ~12 °C; only the settling time keeps them quiet.
    impatient = DEFAULT_LIMITS.with_channel("Ga.T", setpoint_settle_s=0)
    ramps = only(validate_run(clean, limits=impatient), "setpoint_deviation")
    up, down = ramps.details["episodes"]
    assert (
        at(600)
        <= datetime.fromisoformat(up["start"])
        < datetime.fromisoformat(up["end"])
        <= at(1300)
    )
    assert at(3000) <= datetime.fromisoformat(down["start"]) < datetime.fromisoformat(down["end"])


def move_event(frame: pl.DataFrame, channel: str, from_s: float, to_s: float) -> pl.DataFrame:
    """The run with one logged event of `channel` moved in time (a shutter edge early or late)."""
    moved = (pl.col("channel") == channel) & (pl.col("time") == at(from_s))
    return frame.with_columns(time=pl.when(moved).then(pl.lit(at(to_s))).otherwise("time"))


def test_shutter_closed_early_against_recipe_quarantines(clean: pl.DataFrame) -> None:
    report = validate_run(move_event(clean, "Ga.shutter", 2700, 2400), schedule=SCHEDULE)
    finding = only(report, "shutter_mismatch")
    assert (finding.severity, finding.channel) == (Severity.ERROR, "Ga.shutter")
    assert (finding.start, finding.end) == (at(2400), at(2698))  # 2 s edge tolerance
    assert finding.details["step_name"] == "AlGaAs" and finding.details["expected_open"] is True


def test_shutter_edge_jitter_is_tolerated_and_a_late_edge_warns(clean: pl.DataFrame) -> None:
    jitter = move_event(clean, "Al.shutter", 2100, 2101)
    assert validate_run(jitter, schedule=SCHEDULE).by_code("shutter_mismatch") == []
    late = only(
        validate_run(move_event(clean, "Al.shutter", 2100, 2110), schedule=SCHEDULE),
        "shutter_mismatch",
    )
    assert (late.severity, late.channel) == (Severity.WARNING, "Al.shutter")
    assert (late.start, late.end) == (at(2102), at(2110))


def test_shutter_open_that_recipe_has_closed(clean: pl.DataFrame) -> None:
    steps = [*SCHEDULE[:1], ScheduleStep(at(1500), at(2100), frozenset({"As"}), "As only")]
    finding = only(validate_run(clean, schedule=steps), "shutter_mismatch")
    assert (finding.channel, finding.severity, finding.details["expected_open"]) == (
        "Ga.shutter",
        Severity.ERROR,
        False,
    )


# --- units ------------------------------------------------------------------------------------


def test_kelvin_temperature_next_to_celsius_setpoint(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "Ga.T", 0, RUN_S, pl.col("value") + 273.15))
    finding = only(report, "unit_mismatch")
    assert (finding.severity, finding.channel, finding.details["looks_like"]) == (
        Severity.ERROR,
        "Ga.T",
        "K",
    )
    assert report.by_code("setpoint_deviation") == []  # explained by the unit
    assert report.status == "quarantined"


def test_kelvin_substrate_outside_tool_operating_range() -> None:
    limits = DEFAULT_LIMITS.with_channel("sub.T_pyro", operating_max=750.0)
    rng = np.random.default_rng(2)
    frame = pl.DataFrame(
        {
            "time": [at(s) for s in range(600)],
            "channel": "sub.T_pyro",
            "value": 580 + 273.15 + rng.normal(0, 0.3, 600),
        }
    ).cast(SENSOR_SCHEMA)
    report = validate_run(frame, limits=limits)
    assert only(report, "unit_mismatch").details["looks_like"] == "K"
    assert report.by_code("out_of_operating_range") == []
    assert validate_run(frame.with_columns(pl.col("value") - 273.15), limits=limits).findings == []


def test_pressure_in_pascal() -> None:
    limits = DEFAULT_LIMITS.with_channel("P.main", operating_min=1e-10, operating_max=1e-8)
    rng = np.random.default_rng(3)
    torr = 2e-9 * (1 + rng.normal(0, 0.03, 600))
    frame = pl.DataFrame(
        {"time": [at(s) for s in range(600)], "channel": "P.main", "value": torr * 133.322}
    ).cast(SENSOR_SCHEMA)
    assert only(validate_run(frame, limits=limits), "unit_mismatch").details["looks_like"] == "Pa"


def test_limits_override_one_channel_only() -> None:
    limits = DEFAULT_LIMITS.with_channel("P.main", operating_max=1e-6)
    assert limits.for_channel("P.main").operating_max == 1e-6
    assert limits.for_channel("P.main").over_range_code == 1000.0  # kept from the default
    assert limits.for_channel("P.chamber").operating_max == 1e-4
    assert limits.for_channel("raw:Foo") is None


# --- statistics and the report ----------------------------------------------------------------


def test_statistics_per_channel_and_json_report(clean: pl.DataFrame) -> None:
    report = validate_run(change(clean, "sub.T", 100, 110, float("nan")))
    stats = report.stats
    assert stats.schema == pl.Schema(STATS_SCHEMA)
    assert stats.get_column("channel").to_list() == sorted(clean.get_column("channel").unique())
    sub = stats.row(by_predicate=pl.col("channel") == "sub.T", named=True)
    assert (sub["rows"], sub["count"], sub["non_finite"]) == (RUN_S, RUN_S - 10, 10)
    assert sub["unit"] == "°C" and sub["period_median_s"] == pytest.approx(1.0)
    assert sub["p50"] == pytest.approx(600, abs=0.05) and sub["std"] == pytest.approx(0.1, rel=0.1)
    assert sub["p1"] < sub["p50"] < sub["p99"] and len(sub["quantiles"]) == 21
    assert sub["missing_fraction"] == pytest.approx(10 / RUN_S, abs=1e-4)
    rpm = stats.row(by_predicate=pl.col("channel") == "sub.rpm", named=True)
    assert rpm["flat_fraction"] == 1.0
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["status"] == "accepted_with_warnings"
    assert as_dict["stats"]["sub.T"]["count"] == RUN_S - 10
    assert Finding.from_dict(as_dict["findings"][0]) == report.findings[0]
    assert run_statistics(clean).equals(validate_run(clean).stats)


# --- the real EPIC day ------------------------------------------------------------------------

EPIC_FILES = {
    "GC IG.PG.MV.txt": "P.chamber",
    "Ga.PID.MV.txt": "Ga.T",
    "GaHL.PID.MV.txt": "Ga.T_lip",
}


def _epic_time(column: str) -> pl.Expr:
    # EPIC logs local time of the tool (Berlin).
    return (
        pl.col(column)
        .str.strptime(pl.Datetime("us"), "%d/%m/%Y %H:%M:%S%.3f")
        .dt.replace_time_zone("Europe/Berlin")
        .dt.convert_time_zone("UTC")
    )


def read_epic_subset(folder: Path) -> pl.DataFrame:
    """A tiny local parse of three channel files and the shutter log (the real reader lives in
    epi_ml.readers)."""
    frames = [
        pl.read_csv(
            folder / name,
            skip_rows=3,
            has_header=False,
            new_columns=["time", "value"],
            schema_overrides={"time": pl.String, "value": pl.Float64},
        ).select(_epic_time("time"), pl.lit(channel).alias("channel"), "value")
        for name, channel in EPIC_FILES.items()
    ]
    shutters = pl.read_csv(
        folder / "Shutters.txt", skip_rows=2, schema_overrides={"Ga_Sh": pl.Float64}
    )
    frames.append(
        shutters.select(
            _epic_time(shutters.columns[0]).alias("time"),
            pl.lit("Ga.shutter").alias("channel"),
            pl.col("Ga_Sh").alias("value"),
        )
    )
    return pl.concat(frames).cast(SENSOR_SCHEMA)  # type: ignore[arg-type]


@pytest.mark.skipif(not EPIC_DAY.is_dir(), reason="real EPIC day not in shared/data")
def test_real_epic_day_reports_its_quirks_without_quarantine() -> None:
    sensors = read_epic_subset(EPIC_DAY)
    report = validate_run(sensors, expected_channels=set(EPIC_FILES.values()))
    assert report.status == "accepted_with_warnings", report.summary()
    assert [f for f in report.findings if f.severity is Severity.ERROR] == []
    # Ga idles at 300 °C (lip 450 °C) all day, to the last digit: stand-by, noted only.
    standby = {f.channel for f in report.by_code("flat_standby")}
    assert {"Ga.T", "Ga.T_lip"} <= standby
    assert all(f.channel not in {"Ga.T", "Ga.T_lip"} for f in serious(report))
    # The growth-chamber gauge rises from ~2.5e-8 to 1.17e-6 Torr around noon (local time).
    excursion = only(report, "pressure_excursion")
    assert (excursion.severity, excursion.channel) == (Severity.WARNING, "P.chamber")
    assert excursion.details["peak_torr"] == pytest.approx(1.17e-6)
    assert (
        datetime(2023, 6, 12, 7, 30, tzinfo=UTC)
        < excursion.start
        < datetime(2023, 6, 12, 8, 30, tzinfo=UTC)
    )
    assert {f.code for f in serious(report)} == {"pressure_excursion"}
