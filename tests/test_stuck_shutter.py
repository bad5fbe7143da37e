"""Stuck and late shutters found from the cells' heat load (epi_ml.validation.shutter_load), on
twin runs with the fault forced and without it, and what the layer features make of them."""

from __future__ import annotations

import pytest
from twin_helpers import layer_windows, run_context, sensor_table, step_of, with_stuck_shutter

from epi_ml.features.core import layer_features
from epi_ml.findings import Severity
from epi_ml.twin.faults import Fault
from epi_ml.twin.single import GrownRun, grow_one_run
from epi_ml.validation import ScheduleStep, validate_run
from epi_ml.validation.shutter_load import shutter_evidence

RECIPES = ("gaas_buffer", "hemt_algaas_gaas", "qw_ingaas_gaas", "xrd_calibration",
           "rheed_calibration", "dbr_alas_gaas")  # fmt: skip


def schedule(run: GrownRun) -> list[ScheduleStep]:
    """The layers as ingest hands them to validation (steps that open a source)."""
    return [
        ScheduleStep(w.start, w.end, w.open_sources, name=f"layer {w.index} ({w.label})")
        for w in layer_windows(run.trace)
    ]


def shutter_findings(run: GrownRun) -> dict[str, list]:  # type: ignore[type-arg]
    report = validate_run(sensor_table(run.trace), schedule=schedule(run))
    return {code: report.by_code(code) for code in ("stuck_shutter", "shutter_late_close")}


def features(run: GrownRun):  # type: ignore[no-untyped-def]
    table = layer_features(sensor_table(run.trace), layer_windows(run.trace), run_context(run))
    return {row["label"]: row for row in table.iter_rows(named=True)}


@pytest.fixture(scope="module")
def stuck_barrier() -> tuple[GrownRun, GrownRun]:
    """HEMT: the Ga shutter stuck closed for the AlGaAs barrier (it stays closed for the cap,
    logged open right after it, too): the barrier grew as AlAs, 7 nm of its 25."""
    return with_stuck_shutter("hemt_algaas_gaas", "barrier", "Ga", "stuck_closed", seed=0)


@pytest.fixture(scope="module")
def late_ga() -> tuple[GrownRun, GrownRun]:
    """DBR: the Ga shutter closes 30 s late after a GaAs layer, into the next AlAs layer."""
    return with_stuck_shutter("dbr_alas_gaas", "dbr_gaas", "Ga", "stuck_open", seed=0, stuck_s=30.0)


def test_a_shutter_stuck_closed_is_an_error_on_its_layer_and_cell(stuck_barrier) -> None:  # type: ignore[no-untyped-def]
    clean, faulty = stuck_barrier
    barrier, cap = step_of(faulty, "barrier"), step_of(faulty, "cap")
    truth = {layer["label"]: layer for layer in faulty.trace.layers}
    assert truth["barrier"]["thickness_nm"] < 0.4 * truth["barrier"]["target_thickness_nm"]
    found = shutter_findings(faulty)
    (stuck,) = found["stuck_shutter"]
    assert stuck.severity is Severity.ERROR and stuck.channel == "Ga.shutter"
    assert [layer["step"] for layer in stuck.details["layers"]] == [barrier.index, cap.index]
    assert all(layer["open_fraction"] < 0.2 for layer in stuck.details["layers"])
    assert "layer 25 (barrier)" in stuck.message
    assert found["shutter_late_close"] == []
    # the Al shutter of the same layer worked: no finding on it; the fault-free run has none
    assert shutter_findings(clean) == {"stuck_shutter": [], "shutter_late_close": []}


@pytest.mark.parametrize(
    ("recipe", "label", "cell", "seed"),
    [
        ("xrd_calibration", "algaas", "Al", 1),  # 629 s: the steady power while logged open
        ("xrd_calibration", "ingaas", "In", 1),  # 56 s: too short for that; its heat, alone
        ("qw_ingaas_gaas", "well", "In", 1),  # 28 s well between GaAs barriers
        ("dbr_alas_gaas", "dbr_alas", "Al", 0),  # one of fifteen AlAs layers
    ],
)
def test_stuck_closed_shutters_of_each_cell_are_found(recipe: str, label: str, cell: str, seed: int) -> None:
    _, faulty = with_stuck_shutter(recipe, label, cell, "stuck_closed", seed=seed)
    step = step_of(faulty, label)
    windows = layer_windows(faulty.trace)
    evidence = shutter_evidence(sensor_table(faulty.trace), [(w.start, w.end) for w in windows])
    flagged = {(windows[e.window].index, e.cell) for e in evidence.estimates if e.stuck}
    assert flagged == {(step.index, cell)}
    estimate = evidence.estimate(step.index - 1, cell)
    assert estimate is not None and estimate.physical_fraction == 0.0


def test_a_late_close_is_a_warning_with_about_its_seconds(late_ga) -> None:  # type: ignore[no-untyped-def]
    _, faulty = late_ga
    found = shutter_findings(faulty)
    assert found["stuck_shutter"] == []
    (late,) = found["shutter_late_close"]
    assert late.severity is Severity.WARNING and late.channel == "Ga.shutter"
    (close,) = late.details["closes"]
    assert close["late_s"] == pytest.approx(30.0, abs=8.0)
    assert close["step"] == step_of(faulty, "dbr_gaas").index


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fault_free_runs_have_no_shutter_findings(seed: int) -> None:
    for recipe in RECIPES:
        run = grow_one_run(recipe, seed=seed, deviate=False, faults=[])
        windows = layer_windows(run.trace)
        evidence = shutter_evidence(sensor_table(run.trace), [(w.start, w.end) for w in windows])
        judged = [e for e in evidence.estimates if e.fraction is not None]
        assert judged, recipe
        assert not [e for e in judged if e.stuck or e.partly_open], recipe
        assert evidence.late_closes == [], recipe
        assert all(abs(e.fraction - 1) < 0.2 for e in judged), recipe  # type: ignore[operator]
    assert shutter_findings(grow_one_run("hemt_algaas_gaas", seed=seed, deviate=False, faults=[])) == {
        "stuck_shutter": [], "shutter_late_close": []
    }  # fmt: skip


@pytest.mark.parametrize("rate", [-8.0, 8.0])
def test_a_drifting_thermocouple_is_not_a_stuck_shutter(rate: float) -> None:
    """A couple reading off holds the cell at another true temperature, so its power drifts at a
    fixed reading: by as much as the open-shutter step over the hour between the closed level
    before the buffer and the HEMT's barrier. Neighbours minutes apart do not drift that much."""
    clean = grow_one_run("hemt_algaas_gaas", seed=0, deviate=False, faults=[])
    g0, _ = clean.trace.plan.phases["growth"]
    drift = Fault("tc_drift", "Ga.T", g0 - 600, clean.trace.plan.duration_s,
                  {"source": "Ga", "rate_c_per_h": rate})  # fmt: skip
    run = grow_one_run("hemt_algaas_gaas", seed=0, deviate=False, faults=[drift])
    assert shutter_findings(run) == {"stuck_shutter": [], "shutter_late_close": []}


def test_the_baseline_of_a_stuck_layer_moves_to_what_grew(stuck_barrier) -> None:  # type: ignore[no-untyped-def]
    clean, faulty = stuck_barrier
    truth = {layer["label"]: layer for layer in faulty.trace.layers}
    before, after = features(clean), features(faulty)
    barrier = after["barrier"]
    assert barrier["open_Ga_s"] == pytest.approx(before["barrier"]["open_Ga_s"])  # the log
    assert barrier["open_Ga_actual_s"] == 0.0 and barrier["Ga_open_fraction"] < 0.2
    assert barrier["open_Al_actual_s"] == barrier["open_Al_s"]
    # grown: AlAs only. The logged time predicts 25 nm of x = 0.3; the heat load, what grew
    true_t, true_x = truth["barrier"]["thickness_nm"], truth["barrier"]["composition"]
    assert before["barrier"]["pred_thickness_nm"] / true_t > 3
    assert barrier["pred_thickness_nm"] == pytest.approx(true_t, rel=0.05)
    assert barrier["pred_composition"] == pytest.approx(true_x, abs=0.02)
    assert after["cap"]["pred_thickness_nm"] == 0.0  # the cap did not grow either
    # everything else as logged, exactly as in the fault-free run
    for label in ("buffer", "channel", "spacer"):
        for column in ("open_Ga_actual_s", "pred_thickness_nm", "pred_composition"):
            assert after[label][column] == before[label][column], (label, column)
        assert after[label]["open_Ga_actual_s"] == after[label]["open_Ga_s"]


def test_a_late_close_adds_its_seconds_to_the_layer_it_grew_into(late_ga) -> None:  # type: ignore[no-untyped-def]
    clean, faulty = late_ga
    gaas = step_of(faulty, "dbr_gaas")
    alas = next(s for s in faulty.trace.plan.steps if s.index == gaas.index + 1)
    truth = {layer["index"]: layer["thickness_nm"] for layer in faulty.trace.layers}
    table = layer_features(sensor_table(faulty.trace), layer_windows(faulty.trace), run_context(faulty))
    rows = {r["layer"]: r for r in table.iter_rows(named=True)}
    clean_rows = {
        r["layer"]: r
        for r in layer_features(
            sensor_table(clean.trace), layer_windows(clean.trace), run_context(clean)
        ).iter_rows(named=True)
    }
    grown = rows[alas.index]
    assert grown["open_Ga_s"] == 0.0 and grown["open_Ga_actual_s"] == pytest.approx(30.0, abs=8.0)
    logged_error = abs(clean_rows[alas.index]["pred_thickness_nm"] - truth[alas.index])
    assert abs(grown["pred_thickness_nm"] - truth[alas.index]) < 0.35 * logged_error
    assert rows[gaas.index]["open_Ga_actual_s"] == rows[gaas.index]["open_Ga_s"]
