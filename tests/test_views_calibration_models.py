"""The /calibration and /models pages without a browser: their views on real data (a pipeline
home built once, a registry trained once), the next-calibration recommendation on constructed
drift series, the write callbacks behind credentials, and the layouts on empty stores."""

from __future__ import annotations

import base64
import math
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import torch
from model_helpers import QUICK, known_residual, synthetic_training_set, write_training_set

from dashboard.auth import WRITE_REFUSED
from dashboard.components import run_href
from epi_ml.calibration import (
    CellCalibration,
    calibration_history,
    history_frame,
    latest_calibrations,
)
from epi_ml.calibration.schedule import (
    DRIFT,
    MAX_INTERVAL,
    MAX_INTERVAL_DAYS,
    NOT_SCHEDULED,
    REFILL,
    TOLERANCE,
    next_calibration,
    next_calibrations,
)
from epi_ml.features.build import TRAINING_DATASET, TRAINING_NAME
from epi_ml.ingest.batch import open_context
from epi_ml.models import lifecycle, registry
from epi_ml.settings import Settings, get_settings, reset_settings_cache
from epi_ml.store import read_session, write_session
from epi_ml.store.models import Alarm, Cell, IngestEvent
from epi_ml.views.calibration import calibration_view, read_context
from epi_ml.views.models import (
    PROMOTE,
    ROLLBACK,
    apply_action,
    ledger_frame,
    lineage_of,
    models_view,
    slice_metrics,
)

T0 = datetime(2026, 1, 5, 7, tzinfo=UTC)
E_GA = 2.65  # eV (DESIGN.md)
USER, PASSWORD = "eng", "s3cret"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


# ---------------------------------------------------------------------------------------------
# Homes, built once per module
def _use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("EPI_ML_HOME", str(home))
    for name in ("EPI_ML_DASH_USER", "EPI_ML_DASH_PASSWORD", "EPI_ML_DATABASE_URL", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    reset_settings_cache()


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A twin campaign of 8 runs on one tool through the whole pipeline (calibrations ingested,
    runs built, training set written)."""
    from assets.run import run_pipeline

    home = tmp_path_factory.mktemp("calibration-pipeline") / "home"
    with pytest.MonkeyPatch.context() as mp:
        _use_home(mp, home)
        with dg.instance_for_test() as instance:
            lines = list(run_pipeline(instance, twin_config={"runs": 8, "tools": 1, "seed": 5}))
        assert "materialized cell_calibrations" in lines
    reset_settings_cache()
    yield home


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry of two trained versions: v1 judged by the gate and promoted when it passed
    (else by hand), v2 the challenger."""
    home = tmp_path_factory.mktemp("models-registry") / "home"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        _use_home(mp, home)
        ctx = open_context()
        frame, traces = synthetic_training_set(480, seed=3, residual=known_residual, noise=0.002)
        write_training_set(ctx, frame, traces)
        v1 = lifecycle.train_candidate(ctx, hp=QUICK, search_trials=0)
        verdict = lifecycle.evaluate_candidate(ctx, v1.version)
        if not lifecycle.promote_if_passed(ctx, verdict):
            registry.promote(ctx.engine, lifecycle.MODEL_NAME, v1.version, decided_by="test")
        lifecycle.train_candidate(ctx, hp=QUICK, search_trials=0, seed=1)
    torch.set_num_threads(threads)
    reset_settings_cache()
    yield home


@pytest.fixture
def calibration_home(pipeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _use_home(monkeypatch, pipeline_home)
    return pipeline_home


@pytest.fixture
def registry_home(models_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _use_home(monkeypatch, models_home)
    return models_home


def _copy_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of a shared home for a test that writes."""
    copy = tmp_path / "copy"
    shutil.copytree(home, copy)
    _use_home(monkeypatch, copy)
    return copy


@pytest.fixture(scope="module")
def pages() -> dict[str, Any]:
    """The page modules as the app imported them (Dash imports pages/ as `pages.<name>`)."""
    from dashboard.app import create_app

    app = create_app(Settings())
    return {"app": app, "calibration": sys.modules["pages.calibration"], "models": sys.modules["pages.models"]}


# ---------------------------------------------------------------------------------------------
# Component trees
def walk(component: Any) -> Iterator[Any]:
    if component is None or isinstance(component, (str, int, float)):
        return
    if isinstance(component, (list, tuple)):
        for item in component:
            yield from walk(item)
        return
    yield component
    yield from walk(getattr(component, "children", None))
    for prop in ("right",):
        yield from walk(getattr(component, prop, None))


def find(component: Any, id: str) -> Any:
    for c in walk(component):
        if getattr(c, "id", None) == id:
            return c
    raise AssertionError(f"no component with id {id!r}")


def ids(component: Any) -> set[str]:
    return {c.id for c in walk(component) if isinstance(getattr(c, "id", None), str)}


def text(component: Any) -> str:
    parts = []

    def visit(c: Any) -> None:
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, (int, float)):
            parts.append(str(c))
        elif isinstance(c, (list, tuple)):
            for item in c:
                visit(item)
        elif c is not None:
            visit(getattr(c, "children", None))

    visit(component)
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# Next calibration on constructed drift series
def ga(days: float, ln_shift: float, *, tool: str = "MBE1", cell: str = "Ga") -> CellCalibration:
    """A Ga scan taken `days` after T0 whose BEP at every temperature is exp(ln_shift) times
    the first one's (same activation energy)."""
    return CellCalibration(
        tool=tool, cell=cell, taken_at=T0 + timedelta(days=days), source="scan",
        activation_ev=E_GA, ln_prefactor=10.0 + ln_shift, r2=0.9999, rmse_ln=0.01, n_points=6,
        t_min_c=955.0, t_max_c=1030.0,
    )  # fmt: skip


def series(rate_per_day: float, days: list[float], **kwargs: Any) -> list[CellCalibration]:
    return [ga(d, rate_per_day * d, **kwargs) for d in days]


def test_next_calibration_lands_where_the_projected_drift_reaches_the_tolerance() -> None:
    rate = math.log(0.995)  # -0.5 %/day
    found = next_calibration(series(rate, [0, 2, 4]), 1000.0, now=T0 + timedelta(days=5))
    assert found is not None and found.basis == DRIFT and found.points == 3
    assert found.rate_per_day == pytest.approx(rate, rel=1e-9)
    crossing = math.log(1 - TOLERANCE) / rate  # 6.08 days after the last calibration
    assert found.due_at == pytest.approx(T0 + timedelta(days=4 + crossing), abs=timedelta(seconds=1))
    assert found.last_at == T0 + timedelta(days=4)
    assert "3.0 % tolerance is reached 6.1 days after" in found.reason
    assert found.overdue(T0 + timedelta(days=11)) and not found.overdue(T0 + timedelta(days=10))
    # the projected drift at the due date is the tolerance
    bep = math.exp(rate * (4 + crossing)) / math.exp(rate * 4) - 1
    assert bep == pytest.approx(-TOLERANCE)


def test_a_rising_flux_and_a_noisy_series_use_the_fitted_slope() -> None:
    rate = math.log(1.006)
    found = next_calibration(series(rate, [0, 1, 3, 4]), 980.0, now=T0 + timedelta(days=4))
    assert found is not None and found.basis == DRIFT
    assert found.due_at == pytest.approx(
        T0 + timedelta(days=4 + math.log(1 + TOLERANCE) / rate), abs=timedelta(seconds=1)
    )
    noise = [0.01, -0.01, 0.01, -0.01]
    noisy = [ga(d, math.log(0.99) * d + n) for d, n in zip([0, 1, 2, 3], noise, strict=True)]
    found = next_calibration(noisy, 980.0, now=T0 + timedelta(days=3))
    assert found is not None
    assert found.rate_per_day == pytest.approx(math.log(0.99) - 0.004, abs=1e-9)  # least squares


def test_a_slow_drift_or_too_few_calibrations_wait_the_maximum_interval() -> None:
    slow = next_calibration(series(math.log(0.9995), [0, 3, 6]), 1000.0, now=T0 + timedelta(days=6))
    assert slow is not None and slow.basis == MAX_INTERVAL
    assert slow.due_at == T0 + timedelta(days=6 + MAX_INTERVAL_DAYS)
    assert "beyond the 7-day maximum interval" in slow.reason
    few = next_calibration(series(math.log(0.9), [0, 2]), 1000.0, now=T0 + timedelta(days=3))
    assert few is not None and few.basis == MAX_INTERVAL and few.rate_per_day is None
    assert few.due_at == T0 + timedelta(days=2 + MAX_INTERVAL_DAYS)
    assert "too few to fit a drift rate" in few.reason
    # calibrations after `now` are not known yet
    early = next_calibration(series(math.log(0.995), [0, 2, 4, 6]), 1000.0, now=T0 + timedelta(days=3))
    assert early is not None and early.last_at == T0 + timedelta(days=2) and early.basis == MAX_INTERVAL
    assert next_calibration([], 1000.0) is None


def test_refills_split_the_rate_and_make_the_cell_due() -> None:
    rate = math.log(0.995)
    before = series(math.log(0.98), [0, 1, 2])  # a depleted charge: -2 %/day
    refill = T0 + timedelta(days=3)
    after = [ga(d, 0.3 + rate * (d - 4)) for d in (4, 6, 8)]  # a new charge, +35 % flux
    found = next_calibration(before + after, 1000.0, refills=[refill], now=T0 + timedelta(days=9))
    assert found is not None and found.basis == DRIFT and found.points == 3
    assert found.rate_per_day == pytest.approx(rate)
    assert found.refilled_at == refill and "since the refill of 2026-01-08" in found.reason
    assert found.due_at == pytest.approx(
        T0 + timedelta(days=8 + math.log(1 - TOLERANCE) / rate), abs=timedelta(seconds=1)
    )
    # refilled after the last calibration: due at the refill
    late = T0 + timedelta(days=8, hours=5)
    found = next_calibration(before + after, 1000.0, refills=[refill, late], now=T0 + timedelta(days=9))
    assert found is not None and found.basis == REFILL and found.due_at == late
    # a refill not yet happened at `now` does not count
    found = next_calibration(before + after, 1000.0, refills=[late], now=T0 + timedelta(days=8, hours=1))
    assert found is not None and found.basis != REFILL


def test_next_calibrations_of_a_history_frame() -> None:
    rate = math.log(0.995)
    si = CellCalibration(tool="MBE1", cell="Si", taken_at=T0, source="fitting", activation_ev=4.6,
                         ln_prefactor=20.0)  # fmt: skip
    history = history_frame([*series(rate, [0, 2, 4]), *series(rate, [0, 1], cell="Al"), si])
    refills = pl.DataFrame({"tool": ["MBE1"], "source": ["Al"], "installed_at": [T0 + timedelta(days=3)]})
    found = {n.cell: n for n in next_calibrations(history, refills=refills, now=T0 + timedelta(days=5))}
    assert found["Ga"].basis == DRIFT and found["Ga"].at_c == pytest.approx((955 + 1030) / 2)
    assert found["Al"].basis == REFILL and found["Al"].due_at == T0 + timedelta(days=3)
    assert found["Si"].basis == NOT_SCHEDULED and found["Si"].due_at is None
    by_map = next_calibrations(history, operating_c={"Ga": 990.0}, now=T0 + timedelta(days=5))
    assert {n.cell: n.at_c for n in by_map}["Ga"] == 990.0


# ---------------------------------------------------------------------------------------------
# The calibration view on a pipeline home
def test_calibration_view_shows_what_the_store_holds(calibration_home: Path) -> None:
    ctx = open_context()
    history = calibration_history(ctx)
    view = calibration_view(read_context(get_settings()), "MBE7")  # unknown: the first tool
    assert view.tools == ["MBE1"] and view.tool == "MBE1" and not view.empty
    assert view.history.equals(history.filter(pl.col("tool") == "MBE1"))
    assert view.cells[:3] == ["Ga", "Al", "In"] and set(view.cells) == set(history["cell"])

    # scan points: the rows of each scan's lake table with a positive net BEP
    scans = history.filter(pl.col("source") == "scan")
    assert scans.height >= 3
    for row in scans.iter_rows(named=True):
        with read_session(ctx.engine) as session:
            event = session.query(IngestEvent).filter_by(sha256=row["sha256"]).one()
            table = pl.read_parquet(event.lake_path)
        mine = view.points.filter((pl.col("cell") == row["cell"]) & (pl.col("taken_at") == row["taken_at"]))
        net = (table["bep"] - table["background"]).to_list()
        assert sorted(mine["net_bep"].to_list()) == pytest.approx(sorted(n for n in net if n > 0))
        assert mine.height == row["n_points"]
        line = view.lines.filter((pl.col("cell") == row["cell"]) & (pl.col("taken_at") == row["taken_at"]))
        assert line["T_C"].min() == row["t_min_c"] and line["T_C"].max() == row["t_max_c"]

    # working temperatures: the median of the grown layers with the cell's shutter open
    training = pl.read_parquet(ctx.lake.dataset_path(TRAINING_DATASET, TRAINING_NAME))
    ga_median = training.filter(pl.col("open_Ga_s") > 0)["Ga_T_mean"].median()
    assert view.working_c["Ga"] == pytest.approx(ga_median) and view.working_basis["Ga"] == "runs"
    assert view.working_basis["Si"] == "scan range"

    # the table: the calibration in force per cell, its BEP there, the next calibration
    in_force = latest_calibrations(history, "MBE1")
    latest = {r["cell"]: r for r in view.latest.iter_rows(named=True)}
    assert set(latest) == set(in_force)
    for cell, c in in_force.items():
        assert latest[cell]["taken_at"] == c.taken_at and latest[cell]["source"] == c.source
        assert latest[cell]["bep_at"] == pytest.approx(c.bep(view.working_c[cell]))
    ga_row = latest["Ga"]
    assert ga_row["basis"] == MAX_INTERVAL  # one scan: too few for a rate
    assert ga_row["next_at"] == in_force["Ga"].taken_at + timedelta(days=MAX_INTERVAL_DAYS)
    assert ga_row["overdue"] is True  # the campaign is from January 2026
    assert latest["Si"]["basis"] == NOT_SCHEDULED
    flux = view.flux.filter(pl.col("cell") == "Ga")
    assert flux.height == history.filter(pl.col("cell") == "Ga").height
    assert flux.filter(pl.col("compared"))["source"].to_list() == ["scan"]
    assert view.alarms.is_empty() and view.refills.is_empty()


def test_alarms_and_refills_of_the_tool(calibration_home: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    _copy_home(calibration_home, tmp_path, monkeypatch)
    ctx = open_context()
    last_ga = latest_calibrations(calibration_history(ctx), "MBE1")["Ga"].taken_at
    refill = last_ga + timedelta(hours=3)
    with write_session(ctx.engine) as session:
        session.add(Cell(tool_id="MBE1", source="Ga", kind="group_iii", charge_g=250.0, installed_at=refill))
        session.add(Alarm(tool_id="MBE1", channel="Ga.T", code="calibration_drift", severity="warning",
                          message="MBE1 Ga: BEP fell 4.0 %", started_at=last_ga))  # fmt: skip
        session.add(Alarm(tool_id="MBE1", channel="sub.T", code="spike", severity="error",
                          message="not a drift alarm", started_at=last_ga))  # fmt: skip
    view = calibration_view(read_context(get_settings()))
    assert view.alarms["message"].to_list() == ["MBE1 Ga: BEP fell 4.0 %"]
    assert view.refills.to_dicts() == [{"cell": "Ga", "installed_at": refill, "charge_g": 250.0}]
    assert view.schedule["Ga"].basis == REFILL and view.schedule["Ga"].due_at == refill
    assert view.schedule["Al"].basis == MAX_INTERVAL


def test_calibration_page_renders_the_view(calibration_home: Path, pages: dict[str, Any]) -> None:
    page = pages["calibration"]
    layout = page.layout()
    found = ids(layout)
    assert {"calibration-tool", "calibration-content", "calibration-latest-table", "calibration-alarms",
            "calibration-arrhenius-Ga", "calibration-drift-Ga", "calibration-arrhenius-Si"} <= found  # fmt: skip
    assert "calibration-drift-Si" not in found  # a dopant's flux is not followed
    assert find(layout, "calibration-tool").value == "MBE1"
    view = calibration_view(read_context(get_settings()))
    arrhenius = find(layout, "calibration-arrhenius-Ga").figure
    points = [t for t in arrhenius.data if t.mode == "markers"]
    expected = view.points.filter(pl.col("cell") == "Ga")["net_bep"].to_list()
    assert sorted(y for t in points for y in t.y) == pytest.approx(sorted(expected))
    assert arrhenius.layout.yaxis.type == "log"
    drift = find(layout, "calibration-drift-Ga").figure
    names = {t.name for t in drift.data}
    assert {"calibration", "next calibration", "±3 % tolerance"} <= names
    table = text(find(layout, "calibration-latest-table"))
    assert "overdue" in table and "not scheduled" in table
    content = page.show_tool("MBE1")
    assert "calibration-arrhenius-In" in ids(content)
    # the flux line breaks at a refill (a new charge is another flux)
    refill = pl.DataFrame({"installed_at": [T0 + timedelta(days=1)]})
    x, y = page._broken_at([T0, T0 + timedelta(days=2), T0 + timedelta(days=3)], [1.0, 2.0, 3.0], refill)
    assert x == [T0, None, T0 + timedelta(days=2), T0 + timedelta(days=3)] and y == [1.0, None, 2.0, 3.0]


# ---------------------------------------------------------------------------------------------
# The models view on a trained registry
def test_models_view_matches_the_registry(registry_home: Path) -> None:
    engine = open_context().engine
    view = models_view(engine)
    versions = registry.list_models(engine, "growth")
    assert view.table["version"].to_list() == [v.version for v in versions] == [2, 1]
    assert view.table["aliases"].to_list() == [["challenger"], ["champion"]]
    assert view.champion is not None and view.champion.version == 1
    assert view.version(None).version == 1 and view.version(2).version == 2
    rows = registry.ledger(engine, "growth")
    assert ledger_frame(rows).to_dicts() == [
        {k: r[k] for k in ("id", "decided_at", "action", "version", "previous_version", "alias",
                           "decided_by", "passed", "reasons")} for r in rows  # fmt: skip
    ]
    assert view.ledger.equals(ledger_frame(rows))
    assert [a for a in view.ledger["action"] if a == "promote"] == ["promote"]
    gate_1 = [r for r in rows if r["version"] == 1 and r["action"] in registry.GATE_ACTIONS][-1]
    assert view.table.filter(pl.col("version") == 1)["gate"].item() == ("passed" if gate_1["passed"] else "failed")
    assert view.table.filter(pl.col("version") == 2)["gate"].item() is None  # not judged
    v1 = versions[1]
    overall = v1.metrics["evaluation"]["overall"]["thickness"]
    row = view.table.filter(pl.col("version") == 1).row(0, named=True)
    assert row["thickness_mape_pct"] == pytest.approx(overall["mape_pct"])
    assert row["runs"] == len(v1.lineage["runs"]) and row["device"] == v1.device
    assert view.rollback_to is None  # one promotion: nothing to roll back to


def test_slice_metrics_and_lineage(registry_home: Path) -> None:
    view = models_view(open_context().engine)
    v2, champion = view.version(2), view.champion
    frame = slice_metrics(v2, champion, "material")
    assert set(frame["role"]) == {"chosen", "champion"}
    for row in frame.iter_rows(named=True):
        model = v2 if row["role"] == "chosen" else champion
        block = model.metrics["evaluation"]["slices"]["material"][row["key"]]
        assert row["version"] == model.version
        assert row["thickness_n"] == block["thickness"]["n"]
        assert row["thickness_mape_pct"] == pytest.approx(block["thickness"]["mape_pct"])
    assert set(frame["key"]) == {"AlGaAs", "GaAs", "InGaAs"}
    alone = slice_metrics(champion, champion, "epoch")
    assert set(alone["role"]) == {"chosen"} and alone.height == len(champion.metrics["evaluation"]["slices"]["epoch"])
    with pytest.raises(ValueError, match="unknown slice"):
        slice_metrics(v2, champion, "operator")
    lineage = lineage_of(v2)
    assert lineage.runs == sorted(v2.lineage["runs"]) and len(lineage.runs) == 48
    assert lineage.files == len(v2.lineage["files"])
    assert lineage.hyperparameters["hidden"] == QUICK.hidden and "search" not in lineage.hyperparameters
    assert lineage.code_version == v2.code_version and lineage.layers["total"] == v2.lineage["layers"]["total"]


def test_models_page_renders_registry_ledger_and_lineage(registry_home: Path, pages: dict[str, Any]) -> None:
    page = pages["models"]
    layout = page.layout(version="2")
    assert {"models-version", "models-registry-table", "models-slice", "models-slice-table",
            "models-slice-figure", "models-lineage-runs", "models-ledger-table", "models-promote",
            "models-rollback", "models-confirm", "models-confirm-ok", "models-result"} <= ids(layout)  # fmt: skip
    assert find(layout, "models-version").value == 2
    links = [c for c in walk(find(layout, "models-lineage-runs")) if getattr(c, "className", "") and
             "lineage-run-link" in c.className]  # fmt: skip
    runs = lineage_of(models_view(open_context().engine).version(2)).runs
    assert [link.href for link in links] == [run_href(r) for r in runs]
    ledger = text(find(layout, "models-ledger-table"))
    assert "promote" in ledger and "challenger" in ledger
    # no credentials configured: the writes are shown disabled, with what to do
    assert find(layout, "models-promote").disabled and find(layout, "models-rollback").disabled
    assert text(find(layout, "models-write-hint")) == WRITE_REFUSED
    outputs = page.refresh(1, "tool", 0)
    assert len(outputs) == 9 and outputs[5] == "Promote v1" and outputs[6] is True
    assert "champion v" not in text(outputs[1])  # v1 is the champion: no comparison


def test_promote_and_rollback_through_the_page_need_credentials(
    registry_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pages: dict[str, Any]
) -> None:
    _copy_home(registry_home, tmp_path, monkeypatch)
    page, server = pages["models"], pages["app"].server
    engine = open_context().engine
    pending = {"action": PROMOTE, "version": 2}

    # credentials not configured: refused, nothing changes
    with server.test_request_context(headers=AUTH):
        alert, refreshed, is_open = page.confirm(1, pending, 0)
    assert alert.color == "danger" and text(alert) == WRITE_REFUSED
    assert refreshed is page.no_update and is_open is False
    assert registry.model_for_alias(engine, "growth", registry.CHAMPION).version == 1

    monkeypatch.setenv("EPI_ML_DASH_USER", USER)
    monkeypatch.setenv("EPI_ML_DASH_PASSWORD", PASSWORD)
    reset_settings_cache()
    layout = page.layout(version="2")
    assert not find(layout, "models-promote").disabled and text(find(layout, "models-write-hint")) == ""
    # configured, but the request carries no (or wrong) credentials: refused
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"eng:wrong").decode()}):
        with server.test_request_context(headers=headers):
            alert, refreshed, _ = page.confirm(1, pending, 0)
        assert alert.color == "danger" and refreshed is page.no_update
    assert registry.model_for_alias(engine, "growth", registry.CHAMPION).version == 1

    # with them: promoted, decided by the signed-in user, the page told to refresh
    with server.test_request_context(headers=AUTH):
        alert, refreshed, is_open = page.confirm(1, pending, 0)
    assert alert.color == "success" and "growth v2 is the champion (was v1)" in text(alert)
    assert refreshed == 1 and is_open is False
    assert registry.model_for_alias(engine, "growth", registry.CHAMPION).version == 2
    last = registry.ledger(engine, "growth")[-1]
    assert (last["action"], last["version"], last["decided_by"]) == ("promote", 2, USER)
    view = models_view(engine)
    assert view.rollback_to == 1 and page._rollback_label(view) == "Roll back to v1"

    # rollback with explicit settings; a second one has nothing to roll back (a warning, no change)
    settings = Settings(dash_user=USER, dash_password=PASSWORD)
    with server.test_request_context(headers=AUTH):
        alert, done = page.write({"action": ROLLBACK, "version": None}, settings)
        assert done and "growth v1 is the champion again" in text(alert)
        alert, done = page.write({"action": ROLLBACK, "version": None}, settings)
        assert not done and alert.color == "warning" and "no earlier champion" in text(alert)
        alert, done = page.write({"action": PROMOTE, "version": 9}, settings)
        assert not done and "no version 9" in text(alert)
    actions = [(r["action"], r["version"], r["decided_by"]) for r in registry.ledger(engine, "growth")]
    assert actions[-2:] == [("promote", 2, USER), ("rollback", 1, USER)]
    assert apply_action(engine, "delete", 1, user=USER).ok is False


# ---------------------------------------------------------------------------------------------
# Empty and missing stores
def test_pages_on_an_empty_store_say_what_to_do(isolated_home: Path, pages: dict[str, Any]) -> None:
    calibration, models = pages["calibration"], pages["models"]
    # no store at all: where and what to do, never a blank page
    for layout in (calibration.layout(), models.layout()):
        assert any("store-not-ready" in (getattr(c, "className", "") or "") for c in walk(layout))
    open_context()  # an initialised, empty store
    layout = calibration.layout()
    empty = text(find(layout, "calibration-empty"))
    assert "epi-ml ingest PATH" in empty and "make demo" in empty and "epi-ml calibrate FILE" in empty
    assert find(layout, "calibration-tool").options == []
    layout = models.layout()
    empty = text(find(layout, "models-empty"))
    assert "No model yet" in empty and "epi-ml train" in empty and "make demo" in empty
    assert models_view(open_context().engine).empty
