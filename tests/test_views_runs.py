"""The runs pages' read models (epi_ml.views.runs), the raw-file route and the page layouts, on a
real pipeline home (2 simulated runs, seed 3: the second has XRD results; built once for the
module). Browser tests of the same pages live in tests/browser."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest
from sqlalchemy import func, select

from assets.run import run_pipeline
from epi_ml.settings import Settings, get_settings, reset_settings_cache
from epi_ml.store import Lake, engine_for, read_session, write_session
from epi_ml.store.models import GrowthRun, IngestEvent, Layer, Measurement
from epi_ml.views import runs as view


# ---------------------------------------------------------------------------------------------
# Fixtures: one pipeline home for the module; each test points EPI_ML_HOME at it.
@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("runs-views") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EPI_ML_HOME", str(home))
        mp.delenv("EPI_ML_DATABASE_URL", raising=False)
        mp.delenv("DAGSTER_HOME", raising=False)
        reset_settings_cache()
        with dg.instance_for_test() as instance:
            lines = list(run_pipeline(instance, twin_config={"runs": 2, "tools": 1, "seed": 3}))
        assert "growth runs: 2 built, 0 quarantined, 0 failed" in lines
        reset_settings_cache()
    yield home
    reset_settings_cache()


@pytest.fixture(autouse=True)
def home(isolated_home: Path, pipeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("EPI_ML_HOME", str(pipeline_home))
    reset_settings_cache()
    yield pipeline_home
    reset_settings_cache()


@pytest.fixture
def settings(home: Path) -> Settings:
    return get_settings()


@pytest.fixture
def engine(settings: Settings):  # type: ignore[no-untyped-def]
    return engine_for(settings.database_url)


@pytest.fixture(scope="module")
def app(pipeline_home: Path):  # type: ignore[no-untyped-def]
    """The Dash app (its pages import here, once) on the pipeline home."""
    from dashboard.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EPI_ML_HOME", str(pipeline_home))
        reset_settings_cache()
        made = create_app(get_settings())
    reset_settings_cache()
    return made


def _copy_store(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite store in WAL mode (its last writes may be in the -wal file)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _runs(engine) -> list[GrowthRun]:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        runs = list(s.scalars(select(GrowthRun).order_by(GrowthRun.id)))
        s.expunge_all()
    return runs


def _find(component: Any, id: str) -> Any:
    """The component with `id` in a Dash layout tree (None when absent)."""
    if getattr(component, "id", None) == id:
        return component
    children = getattr(component, "children", None)
    if children is None:
        return None
    for child in children if isinstance(children, (list, tuple)) else [children]:
        found = _find(child, id)
        if found is not None:
            return found
    return None


def _walk(component: Any) -> Iterator[Any]:
    yield component
    children = getattr(component, "children", None)
    if children is None:
        return
    for child in children if isinstance(children, (list, tuple)) else [children]:
        yield from _walk(child)


def _text(component: Any) -> str:
    return " ".join(str(c) for c in _walk(component) if isinstance(c, (str, int, float)))


# ---------------------------------------------------------------------------------------------
# The runs table
def test_runs_table_has_one_row_per_run_as_the_store_holds_it(engine) -> None:  # type: ignore[no-untyped-def]
    table = view.runs_table(engine)
    runs = _runs(engine)
    assert table.height == len(runs) == 2
    assert table.columns == list(view.RUNS_SCHEMA)
    by_id = {r["run_id"]: r for r in table.iter_rows(named=True)}
    with read_session(engine) as s:
        layer_counts = dict(
            s.execute(select(Layer.run_id, func.count()).where(Layer.kind == "layer").group_by(Layer.run_id))
            .all()
        )  # fmt: skip
    for run in runs:
        row = by_id[run.id]
        assert (row["tool"], row["status"], row["recipe"]) == (run.tool_id, run.status, run.recipe_name or "")
        assert (row["errors"], row["warnings"]) == (run.n_errors, run.n_warnings)
        assert row["started_at"] == run.started_at and row["ended_at"] == run.ended_at
        assert row["layers"] == layer_counts[run.id] > 0
    # newest first
    starts = table.get_column("started_at").to_list()
    assert starts == sorted(starts, reverse=True)
    rows = view.grid_rows(table, lambda r: f"/runs/{r}")
    assert rows[0]["run"] == f"[{rows[0]['run_id']}](/runs/{rows[0]['run_id']})"
    assert rows[0]["started"] == f"{starts[0]:%Y-%m-%d %H:%M}"


def test_spec_verdicts_in_the_table_follow_the_measurements(engine) -> None:  # type: ignore[no-untyped-def]
    """Computed here the long way, from the rows of the store."""
    limits = view.DEFAULT_LIMITS
    with read_session(engine) as s:
        layers = [(step.run_id, step.index, step.target_thickness_nm, step.target_composition)
                  for step in s.scalars(select(Layer).where(Layer.kind == "layer"))]  # fmt: skip
        values: dict[tuple[str, int, str], list[float]] = {}
        for m in s.scalars(select(Measurement).where(Measurement.layer_index.is_not(None))):
            values.setdefault((m.run_id, m.layer_index, m.kind), []).append(m.value)
    expected: dict[str, list[bool]] = {}
    for run_id, index, target_t, target_x in layers:
        t = values.get((run_id, index, "xrd_thickness_nm"))
        x = values.get((run_id, index, "xrd_composition"))
        verdicts = []
        if t and target_t:
            verdicts.append(abs(np.mean(t) - target_t) / target_t <= limits.thickness_rel + 1e-9)
        if x and target_x is not None:
            verdicts.append(abs(np.mean(x) - target_x) <= limits.composition_abs + 1e-9)
        if verdicts:
            expected.setdefault(run_id, []).append(all(verdicts))
    table = view.runs_table(engine)
    assert sum(len(v) for v in expected.values()) > 0, "the twin's runs have XRD results"
    for row in table.iter_rows(named=True):
        judged = expected.get(row["run_id"], [])
        assert row["measured_layers"] == len(judged)
        assert row["out_of_spec_layers"] == judged.count(False)
        assert row["spec"] == (view.NOT_MEASURED if not judged else view.PASS if all(judged) else view.FAIL)


def test_spec_pass_and_fail_on_a_constructed_case() -> None:
    frame = pl.DataFrame(
        {
            "run_id": ["A", "A", "A", "A", "B", "B", "C"],
            "layer": [1, 2, 3, 4, 1, 2, 1],
            "target_thickness_nm": [100.0, 100.0, 10.0, 50.0, 100.0, 20.0, 100.0],
            "target_composition": [None, 0.30, None, None, None, 0.20, None],
            "xrd_thickness_nm": [101.9, 100.5, 10.2, None, 97.9, 20.0, None],
            "xrd_composition": [None, 0.312, None, None, None, 0.205, None],
        }
    )
    judged = view.layer_spec(frame)
    rows = {(r["run_id"], r["layer"]): r for r in judged.iter_rows(named=True)}
    assert rows["A", 1]["thickness_ok"] and rows["A", 1]["in_spec"]  # +1.9 %
    assert rows["A", 2]["thickness_ok"] and rows["A", 2]["composition_ok"] is False  # x off by 0.012
    assert rows["A", 2]["in_spec"] is False
    assert rows["A", 3]["thickness_ok"] and rows["A", 3]["thickness_error_pct"] == pytest.approx(2.0)  # at the limit
    assert rows["A", 4]["in_spec"] is None and rows["C", 1]["in_spec"] is None  # not measured
    assert rows["B", 1]["thickness_ok"] is False and rows["B", 1]["thickness_error_pct"] == pytest.approx(-2.1)
    assert rows["B", 2]["in_spec"]
    verdicts = {r["run_id"]: r for r in view.run_spec(judged).iter_rows(named=True)}
    assert (verdicts["A"]["spec"], verdicts["A"]["measured_layers"], verdicts["A"]["out_of_spec_layers"]) == ("fail", 3, 1)
    assert (verdicts["B"]["spec"], verdicts["B"]["out_of_spec_layers"]) == ("fail", 1)
    assert verdicts["C"]["spec"] == "not measured"
    # a looser spec lets B's -2.1 % through, but not A's composition
    loose = view.run_spec(view.layer_spec(frame, view.SpecLimits(thickness_rel=0.03)))
    assert dict(loose.select("run_id", "spec").iter_rows()) == {"A": "fail", "B": "pass", "C": "not measured"}


def test_filters_filter(engine) -> None:  # type: ignore[no-untyped-def]
    table = view.runs_table(engine)
    first = table.row(0, named=True)
    day = first["started_at"].date()
    assert view.filter_runs(table, view.RunFilters()).height == table.height
    assert view.filter_runs(table, view.RunFilters(tools=[first["tool"]])).height == table.height
    assert view.filter_runs(table, view.RunFilters(tools=["MBE9"])).is_empty()
    assert view.filter_runs(table, view.RunFilters(statuses=["quarantined"])).is_empty()
    by_recipe = view.filter_runs(table, view.RunFilters(recipes=[first["recipe"]]))
    assert set(by_recipe.get_column("recipe")) == {first["recipe"]} and by_recipe.height >= 1
    assert view.filter_runs(table, view.RunFilters(start=day, end=day)).get_column("run_id").to_list().count(first["run_id"]) == 1
    assert view.filter_runs(table, view.RunFilters(start=day + timedelta(days=1))).is_empty()
    assert view.filter_runs(table, view.RunFilters(end=day - timedelta(days=1))).is_empty()
    by_spec = view.filter_runs(table, view.RunFilters(specs=[first["spec"]]))
    assert first["run_id"] in by_spec.get_column("run_id").to_list()
    assert set(by_spec.get_column("spec")) == {first["spec"]}
    options = view.filter_options(table)
    assert options.tools == sorted(set(table.get_column("tool")))
    assert options.first_day <= day <= options.last_day  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------
# Overlays
def test_downsampling_keeps_spikes_and_bounds_the_points() -> None:
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 1000.0)
    y[54_321] = 50.0  # a spike
    y[7_777] = -50.0  # a dip
    y[10] = np.nan
    dx, dy = view.downsample_minmax(x, y, 2000)
    assert len(dx) <= 2000 and np.all(np.diff(dx) > 0)
    assert dy.max() == 50.0 and dy.min() == -50.0 and 54_321.0 in dx
    small_x, small_y = view.downsample_minmax(x[:500], y[:500], 2000)
    assert len(small_x) == 499  # only the NaN went


def test_overlay_is_time_since_each_runs_start_and_at_most_2000_points(settings, engine) -> None:  # type: ignore[no-untyped-def]
    runs = _runs(engine)
    channel = "sub.T"
    assert channel in view.channel_names(engine)
    overlay = view.overlay_channel(settings, engine, [r.id for r in runs] + ["MBE1-20990101-01", "../x"], channel)
    assert [t.run_id for t in overlay.traces] == [r.id for r in runs]
    assert overlay.unit == "°C"
    assert [m.split(":")[0] for m in overlay.missing] == ["MBE1-20990101-01", "../x"]
    lake = Lake(settings.lake_dir)
    for run, trace in zip(runs, overlay.traces, strict=True):
        raw = lake.read_run_table(run.id, "sensors").filter(pl.col("channel") == channel).sort("time")
        assert trace.n_samples == raw.height > 0
        assert len(trace.t_s) == len(trace.values) <= view.MAX_OVERLAY_POINTS
        first = (raw.get_column("time")[0] - run.started_at).total_seconds()
        assert trace.t_s[0] == pytest.approx(first, abs=1e-3)
        assert np.all(np.diff(trace.t_s) >= 0)
        assert float(trace.values.max()) == pytest.approx(raw.get_column("value").max(), rel=1e-6)
        assert float(trace.values.min()) == pytest.approx(raw.get_column("value").min(), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# One run
def test_merge_lines_layers_up_by_index_not_by_position() -> None:
    t0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
    steps = pl.DataFrame(
        {
            "layer": [1, 2, 3], "kind": ["layer", "interrupt", "layer"],
            "material": ["GaAs", "interrupt", "AlGaAs"], "label": ["buffer", "pause", "barrier"],
            "started_at": [t0, t0 + timedelta(minutes=10), t0 + timedelta(minutes=12)],
            "ended_at": [t0 + timedelta(minutes=10), t0 + timedelta(minutes=12), t0 + timedelta(minutes=20)],
            "target_thickness_nm": [100.0, None, 20.0], "target_composition": [None, None, 0.3],
        }
    )  # fmt: skip
    measured = pl.DataFrame(
        {"run_id": ["R", "R"], "layer": [3, 1], "xrd_thickness_nm": [20.3, 103.0],
         "xrd_thickness_nm_unc": [0.2, 1.0], "xrd_composition": [0.305, None], "xrd_composition_unc": [0.004, None]}
    )  # fmt: skip
    physics = pl.DataFrame({"layer": [3, 1], "pred_thickness_nm": [19.5, 99.0], "pred_composition": [0.29, float("nan")]})
    predicted = pl.DataFrame(
        {"layer": [3, 1], "pred_thickness_nm": [20.1, 101.0], "pred_thickness_lower_nm": [19.0, 97.0],
         "pred_thickness_upper_nm": [21.0, 104.0], "pred_composition": [0.302, None],
         "pred_composition_lower": [0.29, None], "pred_composition_upper": [0.31, None]}
    )  # fmt: skip
    merged = view.merge_layers(steps, measured, physics, predicted)
    assert merged.columns == list(view.LAYER_COLUMNS)
    rows = {r["layer"]: r for r in merged.iter_rows(named=True)}
    assert (rows[1]["xrd_thickness_nm"], rows[1]["physics_thickness_nm"], rows[1]["pred_thickness_nm"]) == (103.0, 99.0, 101.0)
    assert (rows[3]["xrd_thickness_nm"], rows[3]["physics_thickness_nm"], rows[3]["pred_thickness_upper_nm"]) == (20.3, 19.5, 21.0)
    assert rows[1]["physics_composition"] is None  # NaN from the features table is "no value"
    assert rows[1]["thickness_error_pct"] == pytest.approx(3.0) and rows[1]["in_spec"] is False
    assert rows[3]["in_spec"] is True
    assert rows[2]["xrd_thickness_nm"] is None and rows[2]["in_spec"] is None
    # without a model the prediction is the physics baseline, without an interval
    baseline = {r["layer"]: r for r in view.merge_layers(steps, measured, physics, None).iter_rows(named=True)}
    assert baseline[3]["pred_thickness_nm"] == 19.5 and baseline[3]["pred_composition"] == 0.29
    assert baseline[3]["pred_thickness_lower_nm"] is None


def test_run_detail_merges_targets_measured_and_the_physics_baseline(settings, engine) -> None:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        measured = s.execute(select(Measurement.run_id, func.count()).group_by(Measurement.run_id)
                             .order_by(func.count().desc())).first()  # fmt: skip
    assert measured is not None, "the twin's runs have XRD results"
    run = next(r for r in _runs(engine) if r.id == measured[0])
    detail = view.run_detail(settings, engine, run.id)
    assert detail is not None
    assert (detail.header.run_id, detail.header.tool, detail.header.status) == (run.id, run.tool_id, run.status)
    assert detail.model.source == "physics" and "no model trained yet" in detail.model.note
    with read_session(engine) as s:
        steps = {step.index: step for step in s.scalars(select(Layer).where(Layer.run_id == run.id))}
        xrd: dict[int, list[float]] = {}
        for m in s.scalars(select(Measurement).where(Measurement.run_id == run.id,
                                                     Measurement.kind == "xrd_thickness_nm")):  # fmt: skip
            xrd.setdefault(m.layer_index, []).append(m.value)
        s.expunge_all()
    features = Lake(settings.lake_dir).read_run_table(run.id, "features")
    physics = dict(features.select("layer", "pred_thickness_nm").iter_rows())
    assert detail.layers.get_column("layer").to_list() == sorted(steps)
    for row in detail.layers.iter_rows(named=True):
        step = steps[row["layer"]]
        assert (row["kind"], row["material"], row["target_thickness_nm"]) == (
            step.kind, step.material, step.target_thickness_nm)  # fmt: skip
        assert row["xrd_thickness_nm"] == (pytest.approx(np.mean(xrd[row["layer"]])) if row["layer"] in xrd else None)
        assert row["physics_thickness_nm"] == physics.get(row["layer"])
        assert row["pred_thickness_nm"] == row["physics_thickness_nm"]
        assert row["pred_thickness_lower_nm"] is None
    assert detail.spec == next(r for r in view.runs_table(engine).iter_rows(named=True) if r["run_id"] == run.id)["spec"]


def test_findings_point_to_their_layer_and_time() -> None:
    t0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
    layers = pl.DataFrame(
        {"layer": [1, 2], "started_at": [t0, t0 + timedelta(minutes=5)],
         "ended_at": [t0 + timedelta(minutes=5), t0 + timedelta(minutes=9)],
         "label": ["buffer", None], "material": ["GaAs", "AlGaAs"]}
    )  # fmt: skip
    findings = [
        {"code": "stuck_sensor", "severity": "warning", "message": "flat", "channel": "Ga.T",
         "start": (t0 + timedelta(minutes=6)).isoformat(), "end": (t0 + timedelta(minutes=7)).isoformat()},
        {"code": "unparseable_line", "severity": "error", "message": "bad", "file": "Ga.PID.MV.txt", "line": 12},
        {"code": "x", "severity": "info", "message": "m", "details": {"layer": 1}},
    ]  # fmt: skip
    rows = view.finding_rows(findings, t0, layers)
    assert (rows[0].layer, rows[0].layer_label, rows[0].t_s) == (2, "2 AlGaAs", 360.0)
    assert (rows[1].layer, rows[1].t_s, rows[1].file, rows[1].line) == (None, None, "Ga.PID.MV.txt", 12)
    assert (rows[2].layer, rows[2].layer_label) == (1, "1 buffer")


def test_raw_files_are_the_runs_inputs_and_what_names_it(settings, engine) -> None:  # type: ignore[no-untyped-def]
    run = _runs(engine)[0]
    detail = view.run_detail(settings, engine, run.id, predict=False)
    assert detail is not None
    files = detail.raw_files
    with read_session(engine) as s:
        named = set(s.scalars(select(IngestEvent.id).where(IngestEvent.run_id == run.id)))
        overlapping = set(s.scalars(select(IngestEvent.id).where(
            IngestEvent.tool_id == run.tool_id, IngestEvent.time_start <= run.ended_at,
            IngestEvent.time_end >= run.started_at)))  # fmt: skip
        sources = set(s.scalars(select(IngestEvent.id).where(IngestEvent.sha256.in_(
            select(Measurement.source_sha256).where(Measurement.run_id == run.id)))))  # fmt: skip
    assert set(files.get_column("event_id")) == named | overlapping | sources
    assert named and overlapping
    inputs = json.loads((settings.lake_dir / "runs" / run.id / "inputs.json").read_text())
    read = {i["sha256"] for i in inputs["inputs"]}
    with read_session(engine) as s:
        sha = dict(s.execute(select(IngestEvent.id, IngestEvent.sha256)).all())
    for row in files.iter_rows(named=True):
        assert row["href"] == f"/files/{row['event_id']}"
        assert row["size_bytes"] > 0 and row["format"]
        assert row["used"] == (sha[row["event_id"]] in read)
    assert files.filter(pl.col("kind") == "sensors").get_column("used").all()  # the partition read them


def test_unknown_run_gives_none_and_the_page_an_empty_state(settings, engine, app) -> None:  # type: ignore[no-untyped-def]
    assert view.run_detail(settings, engine, "MBE1-20990101-01") is None
    assert view.run_detail(settings, engine, "../../etc") is None
    import dash

    page = dash.page_registry["pages.run"]["layout"](run_id="MBE1-20990101-01")
    assert page.id == "run-not-found"
    assert "No run MBE1-20990101-01" in _text(page)
    assert _find(page, "run-not-found-link").href == "/runs"


# ---------------------------------------------------------------------------------------------
# Raw files over HTTP
def test_the_file_route_serves_archived_bytes_and_refuses_everything_else(settings, engine, app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = app.server.test_client()
    with read_session(engine) as s:
        event = s.scalars(select(IngestEvent).where(IngestEvent.kind == "sensors").limit(1)).one()
        s.expunge_all()
    response = client.get(f"/files/{event.id}")
    assert response.status_code == 200
    assert response.data == Path(event.archive_path).read_bytes()
    assert "attachment" in response.headers["Content-Disposition"]
    assert Path(event.archive_path).name in response.headers["Content-Disposition"]
    response.close()
    assert client.get("/files/99999999").status_code == 404
    for path in ("/files/..%2F..%2Fetc%2Fpasswd", "/files/../../etc/passwd", "/files/8/../../x", "/files/"):
        assert client.get(path).status_code == 404, path
    assert client.get("/files/-1").status_code == 404
    # events whose recorded path leads out of the archive are refused, even inside the home
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the dashboard")
    link = settings.archive_dir / "zz" / "link.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    bad = {
        "outside": str(outside),
        "traversal": str(settings.archive_dir / ".." / "epi-ml.db"),
        "symlink": str(link),
    }
    ids = {}
    with write_session(engine) as s:
        for name, path in bad.items():
            row = IngestEvent(sha256=f"{name:0<64}"[:64], original_path=path, archive_path=path,
                              size_bytes=1, format="wide_csv", kind="", status="quarantined")  # fmt: skip
            s.add(row)
            s.flush()
            ids[name] = row.id
    try:
        for name, event_id in ids.items():
            assert view.raw_file_path(settings, engine, event_id) is None, name
            assert client.get(f"/files/{event_id}").status_code == 404, name
    finally:
        with write_session(engine) as s:
            for event_id in ids.values():
                s.delete(s.get(IngestEvent, event_id))
        link.unlink()
        link.parent.rmdir()


def test_a_moved_home_still_finds_its_files_by_content_address(settings, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with read_session(engine) as s:
        event = s.scalars(select(IngestEvent).where(IngestEvent.kind == "recipe").limit(1)).one()
        s.expunge_all()
    copy = tmp_path / "copy"
    shutil.copytree(settings.archive_dir, copy / "archive")
    _copy_store(settings.home / "epi-ml.db", copy / "epi-ml.db")
    moved = Settings(home=copy)
    found = view.raw_file_path(moved, engine_for(moved.database_url), event.id)
    assert found is not None and found.is_relative_to(copy / "archive")
    assert found.read_bytes() == Path(event.archive_path).read_bytes()


# ---------------------------------------------------------------------------------------------
# Predictions by a registered model
@pytest.fixture
def home_with_a_model(settings: Settings, tmp_path: Path) -> Settings:
    """A copy of the pipeline home (store + lake) with an untrained, calibrated growth model
    registered (not champion): the registry of the shared home stays empty."""
    from model_helpers import tiny_model

    from epi_ml.features.build import TRAINING_DATASET, TRAINING_NAME
    from epi_ml.features.core import FEATURES_VERSION
    from epi_ml.models import registry
    from epi_ml.models.data import select_examples, traces_for
    from epi_ml.models.train import encode_all

    copy = tmp_path / "home"
    copy.mkdir()
    _copy_store(settings.home / "epi-ml.db", copy / "epi-ml.db")
    shutil.copytree(settings.lake_dir, copy / "lake")
    moved = Settings(home=copy)
    lake = Lake(moved.lake_dir)
    examples = select_examples(lake.read_dataset(TRAINING_DATASET, TRAINING_NAME))
    traces = lake.read_dataset(TRAINING_DATASET, "traces")
    model = tiny_model(examples)
    in_situ, recipe = encode_all(model.spec, examples, traces_for(examples, traces))
    model.calibrate(examples, in_situ, recipe, coverage=0.5)
    directory = model.save(copy / "models" / "growth" / "v1")
    registry.register_model(
        engine_for(moved.database_url), name="growth", kind="hybrid_torch", artifact_dir=directory,
        device="cpu", features_version=FEATURES_VERSION, code_version="test", hyperparameters={},
        metrics={}, lineage={},
    )  # fmt: skip
    return moved


def test_without_a_champion_the_newest_version_predicts_and_says_so(home_with_a_model: Settings) -> None:
    from epi_ml.models import registry

    settings = home_with_a_model
    engine = engine_for(settings.database_url)
    run = _runs(engine)[0]
    detail = view.run_detail(settings, engine, run.id)
    assert detail is not None
    assert (detail.model.source, detail.model.version) == ("newest", 1)
    assert "no champion" in detail.model.note and "growth v1" in detail.model.note
    growth = detail.layers.filter(
        (pl.col("kind") == "layer") & pl.col("physics_thickness_nm").is_not_null() & (pl.col("physics_thickness_nm") > 0)
    )
    assert not growth.is_empty()
    for row in growth.iter_rows(named=True):
        assert row["pred_thickness_nm"] is not None
        # an untrained network's residual is small: the prediction stays near the physics baseline
        assert row["pred_thickness_nm"] == pytest.approx(row["physics_thickness_nm"], rel=0.5)
        lower, upper = row["pred_thickness_lower_nm"], row["pred_thickness_upper_nm"]
        if lower is not None:
            assert lower <= row["pred_thickness_nm"] <= upper
    assert growth.get_column("pred_thickness_lower_nm").is_not_null().any()
    registry.promote(engine, "growth", 1, decided_by="test")
    champion = view.run_detail(settings, engine, run.id)
    assert champion is not None and champion.model.source == "champion"
    assert champion.model.note.startswith("predicted by the champion, growth v1")


# ---------------------------------------------------------------------------------------------
# Pages
def test_page_layouts_render_with_the_ids_browser_tests_use(settings, engine, app) -> None:  # type: ignore[no-untyped-def]
    import dash

    runs = _runs(engine)
    page = dash.page_registry["pages.runs"]["layout"]()
    grid = _find(page, "runs-grid")
    assert grid is not None and len(grid.rowData) == len(runs)
    assert {r["run_id"] for r in grid.rowData} == {r.id for r in runs}
    assert all(r["run"].endswith(f"(/runs/{r['run_id']})") for r in grid.rowData)
    for id in ("runs-filter-tool", "runs-filter-status", "runs-filter-recipe", "runs-filter-dates",
               "runs-overlay-runs", "runs-overlay-channel", "runs-overlay-graph", "runs-count"):  # fmt: skip
        assert _find(page, id) is not None, id
    figure = _find(page, "runs-overlay-graph").figure
    assert len(figure.data) == len(runs) and all(t.type == "scattergl" for t in figure.data)
    # prefilled from the query string
    filtered = dash.page_registry["pages.runs"]["layout"](tool="MBE9")
    assert _find(filtered, "runs-grid").rowData == []
    assert _find(filtered, "runs-filter-tool").value == ["MBE9"]

    pages = sys.modules["pages.runs"]
    rows, count, options = pages.filter_grid([runs[0].tool_id], None, None, None, None, None)
    assert len(rows) == len(runs) and count == f"{len(runs)} runs" and len(options) == len(runs)
    rows, count, _ = pages.filter_grid(["MBE9"], None, None, None, None, None)
    assert rows == [] and count == f"0 of {len(runs)} runs"
    figure, missing = pages.draw_overlay([runs[0].id, "MBE1-20990101-01"], "Ga.T")
    assert len(figure.data) == 1 and "MBE1-20990101-01" in missing

    for run in runs:
        detail_page = dash.page_registry["pages.run"]["layout"](run_id=run.id)
        for id in ("run-status", "run-dagster-link", "run-layers", "run-layers-table", "run-layers-figure",
                   "run-model-note", "run-findings", "run-raw-files", "run-raw-files-table", "findings"):  # fmt: skip
            assert _find(detail_page, id) is not None, (run.id, id)
        assert _find(detail_page, "run-dagster-link").href.endswith(f"/assets/run_summary?view=partitions&partition={run.id}")
        table = _find(detail_page, "run-layers-table")
        layer_rows = [c for c in _walk(table) if str(getattr(c, "id", "")).startswith("layer-")]
        with read_session(engine) as s:
            n_steps = s.scalar(select(func.count()).select_from(Layer).where(Layer.run_id == run.id))
        assert len(layer_rows) == n_steps
        links = [c.href for c in _walk(detail_page) if "raw-file-link" in (getattr(c, "className", "") or "")]
        assert links and all(h.startswith("/files/") for h in links)
        assert "no model trained yet" in _text(_find(detail_page, "run-model-note"))

    overview = dash.page_registry["pages.overview"]["layout"]()
    hrefs = {c.href for c in _walk(_find(overview, "overview-latest-runs")) if getattr(c, "href", None)}
    assert {f"/runs/{r.id}" for r in runs} <= hrefs


def test_the_store_not_ready_is_said_not_raised(tmp_path, monkeypatch, app) -> None:  # type: ignore[no-untyped-def]
    import dash

    monkeypatch.setenv("EPI_ML_DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'nothing.db'}")
    reset_settings_cache()
    for name, kwargs in (("pages.runs", {}), ("pages.run", {"run_id": "MBE1-20260105-01"})):
        page = dash.page_registry[name]["layout"](**kwargs)
        assert "store-not-ready" in (page.className or ""), name
