"""Segmentation of a tool's logs into growth runs and layers, from recipe messages, wafer
transfers and the shutter log (the real EPIC day has only transfers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from epi_ml.findings import Severity
from epi_ml.ingest.segment import material_name, run_id_for, segment_tool_logs
from epi_ml.readers import read_epic_day

REAL_DAY = Path(__file__).parent / "data" / "epic-mbe8-2023-06-12-trimmed"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def messages(*rows: tuple[float, str]) -> pl.DataFrame:
    """(minutes after T0, message) -> a message table."""
    return pl.DataFrame(
        {
            "time": [T0 + timedelta(minutes=m) for m, _ in rows],
            "caller": ["Recipe"] * len(rows),
            "message": [text for _, text in rows],
        },
        schema={"time": pl.Datetime("us", "UTC"), "caller": pl.String, "message": pl.String},
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_recipe_run_with_layers_dopants_and_the_transfer_window() -> None:
    log = messages(
        (0, "W1 moved from MC_manip to GC"),
        (1, "Run MBE1-20260105-01 start recipe=hemt operator=ana wafer=W1"),
        (10, "Layer 1 start GaAs target=300.0nm label=buffer"),
        (40, "Layer 1 end"),
        (40, "Layer 2 start AlGaAs target=20.0nm x=0.300 label=barrier"),
        (42, "Layer 2 end"),
        (42, "Layer 3 start interrupt duration=60.0s dopants=Si label=delta_doping"),
        (43, "Layer 3 end"),
        (60, "Run MBE1-20260105-01 end"),
        (61, "W1 moved from GC to MC_manip"),
    )
    [run] = segment_tool_logs("MBE1", log)
    assert (run.run_id, run.status, run.segmented_by) == ("MBE1-20260105-01", "complete", "recipe")
    assert (run.recipe, run.operator, run.wafer) == ("hemt", "ana", "W1")
    assert (run.start, run.end) == (at(0), at(61))  # wafer in .. wafer out
    buffer, barrier, delta = run.layers
    assert (buffer.material, buffer.target_thickness_nm, buffer.start, buffer.end) == (
        "GaAs", 300.0, at(10), at(40),
    )  # fmt: skip
    assert buffer.open_sources == {"Ga", "As"}
    assert barrier.open_sources == {"Al", "Ga", "As"} and barrier.target_composition == 0.3
    assert delta.kind == "interrupt" and delta.open_sources == {"As", "Si"}
    assert delta.duration_s == 60.0 and delta.label == "delta_doping"
    assert run.findings == ()


def test_run_without_end_is_closed_by_the_next_start_and_the_last_stays_open() -> None:
    log = messages(
        (0, "Run MBE1-20260105-01 start recipe=a"),
        (5, "Layer 1 start GaAs target=10.0nm"),
        (30, "Run MBE1-20260105-02 start recipe=b"),
        (40, "Layer 1 start GaAs target=10.0nm"),
    )
    first, second = segment_tool_logs("MBE1", log)
    assert first.end == at(30) and first.status == "complete"
    codes = {f.code: f for f in first.findings}
    assert set(codes) == {"run_without_end", "layer_without_end"}
    assert all(f.severity is Severity.WARNING and f.hint for f in first.findings)
    assert first.layers[0].end == at(30)
    assert second.end is None and second.status == "open" and not second.complete


def test_aborted_run_is_complete_with_a_warning() -> None:
    log = messages((0, "Run MBE1-20260105-01 start"), (9, "Run MBE1-20260105-01 aborted"))
    [run] = segment_tool_logs("MBE1", log)
    assert run.status == "aborted" and run.end == at(9)
    assert [f.code for f in run.findings] == ["run_aborted"]


def test_duplicated_message_logs_give_the_same_runs() -> None:
    log = messages(
        (0, "Run MBE1-20260105-01 start"),
        (9, "Run MBE1-20260105-01 end"),
    )
    assert segment_tool_logs("MBE1", pl.concat([log, log])) == segment_tool_logs("MBE1", log)


def test_visit_without_recipe_gets_a_dated_id_and_layers_from_shutters() -> None:
    log = messages(
        (0, "Run MBE1-20260105-01 start"),
        (30, "Run MBE1-20260105-01 end"),
        (60, "W7 moved from MC_manip to GC"),
        (180, "W7 moved from GC to MC_manip"),
    )
    shutters = pl.DataFrame(
        {
            "time": [at(70)] * 3 + [at(90), at(120), at(150)],
            "channel": ["sub.shutter", "Ga.shutter", "As.shutter", "Al.shutter", "Al.shutter",
                        "Ga.shutter"],
            "value": [1.0, 1.0, 1.0, 1.0, 0.0, 0.0],
        },  # fmt: skip
        schema={"time": pl.Datetime("us", "UTC"), "channel": pl.String, "value": pl.Float64},
    )
    recipe_run, visit = segment_tool_logs("MBE1", log, shutters)
    assert visit.run_id == "MBE1-20260105-02"  # after the recipe run of the same day
    assert (visit.segmented_by, visit.wafer, visit.start, visit.end) == ("transfer", "W7", at(60), at(180))
    assert [(layer.material, layer.start, layer.end) for layer in visit.layers] == [
        ("GaAs", at(70), at(90)),
        ("AlGaAs", at(90), at(120)),
        ("GaAs", at(120), at(150)),
    ]


def test_the_real_epic_day_is_one_wafer_visit_dated_in_the_tools_zone() -> None:
    day = read_epic_day(REAL_DAY, tz="Europe/Berlin")
    [run] = segment_tool_logs("MBE8", day.messages, day.shutters, tz="Europe/Berlin")
    # The wafer went in at 00:13 Berlin time (22:13 UTC the day before): the run is the 12th's.
    assert run.run_id == "MBE8-20230612-01"
    assert run.wafer == "M8abcd" and run.segmented_by == "transfer"
    assert run.start == datetime(2023, 6, 11, 22, 13, 6, 903000, tzinfo=UTC)
    assert run.end == datetime(2023, 6, 12, 12, 13, 44, 156000, tzinfo=UTC)
    # GeO and Ga shutters alternate; the load lock and cryo-panel shutters are not sources.
    assert [layer.material for layer in run.layers] == ["GeO", "Ga", "GeO", "Ga"]
    assert all(layer.end > layer.start for layer in run.layers)


def test_names() -> None:
    assert material_name(frozenset({"Ga", "Al", "As"})) == "AlGaAs"
    assert material_name(frozenset({"In", "Ga", "As"})) == "InGaAs"
    assert material_name(frozenset({"GeO"})) == "GeO"
    late = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert run_id_for("MBE1", late, 3) == "MBE1-20260105-03"
    assert run_id_for("MBE1", late, 3, "Asia/Tokyo") == "MBE1-20260106-03"
