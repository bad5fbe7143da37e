"""The live view's reads (epi_ml.views.live) and the Live page's callback, on a real store."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from epi_ml.live.buffer import append_samples
from epi_ml.settings import get_settings
from epi_ml.store import engine_for, upgrade, write_session
from epi_ml.store.models import GrowthRun, Layer, Tool
from epi_ml.views import live as view

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RUN = "MBE7-20260302-01"


def _store(store_url: str):  # type: ignore[no-untyped-def]
    upgrade(store_url)
    engine = engine_for(store_url)
    with write_session(engine) as s:
        s.add(Tool(id="MBE7"))
        s.flush()
        s.add(GrowthRun(id=RUN, tool_id="MBE7", status="live", started_at=T0, recipe_name="hemt"))
    return engine


def _samples(engine, seconds: range, channels=("Ga.T", "RHEED.I"), run_id: str | None = RUN) -> int:  # type: ignore[no-untyped-def]
    rows = [
        {"tool_id": "MBE7", "run_id": run_id, "channel": c, "time": T0 + timedelta(seconds=t), "value": 900.0 + t}
        for t in seconds
        for c in channels
    ]
    return append_samples(engine, rows)


def test_channels_are_grouped_by_source_with_units() -> None:
    assert view.group_of("Ga.T") == "cells" and view.group_of("Ga.T_set") == "cells"
    assert view.group_of("Ga.power") == "power"
    assert view.group_of("sub.T") == "substrate" and view.group_of("sub.rpm") == "substrate"
    assert view.group_of("As.valve") == "arsenic"
    assert view.group_of("P.chamber") == "pressure" and view.group_of("BEP") == "pressure"
    assert view.group_of("RHEED.I") == "rheed"
    assert view.group_of("Ga.shutter") == "shutters" and view.group_of("sub.shutter") == "shutters"
    assert view.group_of("raw:Mystery.PV") == "other"
    assert view.label_of("Ga.T") == "Ga.T [°C]" and view.label_of("P.chamber") == "P.chamber [Torr]"


def test_snapshot_reads_the_trailing_window_then_updates_only_what_is_new(store_url: str) -> None:
    engine = _store(store_url)
    _samples(engine, range(0, 1200))  # 20 minutes
    snap = view.snapshot(engine, RUN, tool_id="MBE7", history_s=600)
    ga = snap.channels["Ga.T"]
    assert len(ga.t_ms) == 601  # the last 10 min, both ends
    assert ga.t_ms[0] == (T0 + timedelta(seconds=599)).timestamp() * 1000
    assert snap.newest == T0 + timedelta(seconds=1199)
    assert view.updates(engine, RUN, snap.cursor, snap.cursor).points == 0  # nothing new yet

    _samples(engine, range(1200, 1203))
    _samples(engine, range(1203, 1204), run_id=None)  # another run's (or no run's) sample
    # without a slow cursor: the full-rate channels (RHEED) only; the cursor moves past all read
    fast = view.updates(engine, RUN, snap.cursor)
    assert list(fast.channels) == ["RHEED.I"] and fast.channels["RHEED.I"].values == [2100.0, 2101.0, 2102.0]
    assert fast.cursor > snap.cursor
    # with it: the slow channels stored after the slow cursor too, RHEED only after the cursor
    new = view.updates(engine, RUN, fast.cursor, slow_cursor=snap.cursor)
    assert new.channels["Ga.T"].values == [2100.0, 2101.0, 2102.0]
    assert "RHEED.I" not in new.channels and new.points == 3 and new.cursor == fast.cursor
    assert view.updates(engine, RUN, new.cursor, new.cursor).points == 0

    capped = view.snapshot(engine, RUN, history_s=3600, points=100)
    assert len(capped.channels["Ga.T"].t_ms) == 100  # the newest 100 per channel


def test_a_shutter_starts_the_window_in_the_state_the_tool_left_it(store_url: str) -> None:
    engine = _store(store_url)
    # the Ga shutter opened before the run (no run label) and never moved since
    append_samples(engine, [{"tool_id": "MBE7", "run_id": None, "channel": "Ga.shutter",
                             "time": T0 - timedelta(minutes=30), "value": 1.0}])  # fmt: skip
    _samples(engine, range(0, 900), channels=("Ga.T",))
    snap = view.snapshot(engine, RUN, tool_id="MBE7", history_s=600)
    shutter = snap.channels["Ga.shutter"]
    assert shutter.values == [1.0]
    assert shutter.t_ms == [(T0 + timedelta(seconds=299)).timestamp() * 1000]


def test_layer_progress_grows_with_the_predicted_rate(store_url: str) -> None:
    engine = _store(store_url)
    with write_session(engine) as s:
        s.add(Layer(run_id=RUN, index=1, kind="layer", material="GaAs", target_thickness_nm=100.0,
                    started_at=T0, ended_at=T0 + timedelta(seconds=100)))  # fmt: skip
        s.add(Layer(run_id=RUN, index=2, kind="interrupt", material="interrupt", started_at=T0 + timedelta(seconds=100),
                    ended_at=T0 + timedelta(seconds=110)))  # fmt: skip
        s.add(Layer(run_id=RUN, index=3, kind="layer", material="AlGaAs", target_thickness_nm=50.0,
                    started_at=T0 + timedelta(seconds=110)))  # fmt: skip
    plan = view.LayerPlan("test", {1: {"rate_nm_s": 0.95, "thickness_nm": 95.0},
                                   3: {"rate_nm_s": 0.5, "thickness_nm": 52.0, "lower_nm": 50.0, "upper_nm": 54.0}})  # fmt: skip
    now = T0 + timedelta(seconds=150)
    layers = view.layer_progress(view.run_layers(engine, RUN), plan, now)
    assert [layer.index for layer in layers] == [1, 3]  # interrupts grow nothing
    done, growing = layers
    assert not done.growing and done.grown_nm == pytest.approx(95.0) and done.predicted_nm == pytest.approx(95.0)
    assert growing.growing and growing.grown_nm == pytest.approx(20.0)  # 40 s at 0.5 nm/s
    assert (growing.predicted_nm, growing.lower_nm, growing.upper_nm) == (52.0, 50.0, 54.0)


@pytest.fixture
def no_checks_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live checks' cache is per process, keyed by run id: start each test without it."""
    monkeypatch.setattr(view, "_checked", {})
    monkeypatch.setattr(view, "_refreshing", set())


def _over_range(engine, seconds: range) -> None:  # type: ignore[no-untyped-def]
    rows = [{"tool_id": "MBE7", "run_id": RUN, "channel": "P.chamber", "time": T0 + timedelta(seconds=t),
             "value": 1000.0 if 100 <= t < 130 else 2e-8} for t in seconds]  # fmt: skip
    append_samples(engine, rows)


def _codes(findings) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    return [(f.code, f.channel) for f in findings]


def test_live_findings_flag_a_gauge_over_range_once_and_keep_it(store_url: str, no_checks_yet: None) -> None:
    engine = _store(store_url)
    _over_range(engine, range(0, 300))
    codes = _codes(view.live_findings(engine, RUN, ttl_s=0))
    assert ("gauge_over_range", "P.chamber") in codes
    assert len(codes) == len(set(codes))
    _samples(engine, range(300, 1200), channels=("Ga.T",))  # the excursion leaves the window
    later = view.live_findings(engine, RUN, ttl_s=0, background=False)
    assert ("gauge_over_range", "P.chamber") in _codes(later)
    assert view._checked[RUN].window.get_column("time").min() >= T0 + timedelta(seconds=1199 - 600)


def _wait_until(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with view._checked_lock:
            if condition():
                return
        time.sleep(0.02)
    raise TimeoutError("the background check did not finish")


def _checked_again(before: float) -> None:
    """Wait for the background check started by the last call to finish."""
    _wait_until(lambda: RUN not in view._refreshing and view._checked[RUN].at > before)


def test_live_findings_are_checked_again_in_the_background_never_in_the_callers_time(
    store_url: str, no_checks_yet: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _store(store_url)
    _over_range(engine, range(0, 100))  # (2e-8 Torr: nothing to find yet)
    first = view.live_findings(engine, RUN, ttl_s=0)  # a run's first check: the caller waits for it
    assert ("gauge_over_range", "P.chamber") not in _codes(first)
    _over_range(engine, range(100, 300))  # 1000 Torr for 30 s

    # a stale check: the caller gets the findings of the last one at once, a new one starts
    before, cursor = view._checked[RUN].at, view._checked[RUN].cursor
    assert view.live_findings(engine, RUN, ttl_s=0) is first
    _checked_again(before)
    assert view._checked[RUN].cursor > cursor  # it read what came since
    assert ("gauge_over_range", "P.chamber") in _codes(view._checked[RUN].findings)
    assert view.live_findings(engine, RUN, ttl_s=60) is view._checked[RUN].findings  # fresh: as is

    # a failing check keeps the findings shown, says why in the log, and is tried again
    import epi_ml.validation

    def broken(frame):  # type: ignore[no-untyped-def]
        raise RuntimeError("validation broke")

    kept, before = view._checked[RUN].findings, view._checked[RUN].at
    _samples(engine, range(300, 310), channels=("As.valve",))
    with monkeypatch.context() as patched, caplog.at_level("ERROR", logger="epi_ml.views.live"):
        patched.setattr(epi_ml.validation, "validate_run", broken)
        assert view.live_findings(engine, RUN, ttl_s=0) is kept
        _wait_until(lambda: RUN not in view._refreshing)
    assert view._checked[RUN].findings is kept and view._checked[RUN].at == before
    assert f"live checks of {RUN} failed" in caplog.text and "validation broke" in caplog.text
    view.live_findings(engine, RUN, ttl_s=0)
    _checked_again(before)
    # the samples read by the failed check were kept: checked now, with what was found before
    assert set(_codes(kept)) < set(_codes(view._checked[RUN].findings))
    assert ("impossible_value", "As.valve") in _codes(view._checked[RUN].findings)


def test_the_live_page_draws_once_then_sends_only_extend_data(isolated_home) -> None:  # type: ignore[no-untyped-def]
    from dashboard.app import create_app

    settings = get_settings()
    settings.ensure_home()
    engine = _store(settings.database_url)
    _samples(engine, range(0, 60), channels=("Ga.T", "RHEED.I", "P.chamber"))
    app = create_app(settings)
    page = sys.modules["pages.live"]  # as the app imported it (Dash imports pages/ as pages.<name>)
    n_groups = len(view.GROUPS)
    with app.server.test_request_context():
        first = page.tick(0, "MBE7", {})
        figures, extends = first[:n_groups], first[n_groups : 2 * n_groups]
        state, layout = first[2 * n_groups], first[2 * n_groups + 1]
        cells = figures[[g.key for g in view.GROUPS].index("cells")]
        assert [t.name for t in cells.data] == ["Ga.T [°C]"] and len(cells.data[0].x) == 60
        assert all(e is page.no_update for e in extends)
        assert state["run_id"] == RUN and layout["signature"]["rheed"] == ["RHEED.I"]

        _samples(engine, range(60, 62), channels=("Ga.T", "RHEED.I", "P.chamber"))
        second = page.tick(1, "MBE7", state, layout)
        assert all(f is page.no_update for f in second[:n_groups])
        assert second[2 * n_groups + 1] is page.no_update  # the same traces: the layout is not sent again
        rheed = second[n_groups + [g.key for g in view.GROUPS].index("rheed")]
        update, traces, max_points = rheed
        # every trace keeps 10 min at its rate (1 Hz here: 601 points), RHEED too
        assert traces == [0] and len(update["y"][0]) == 2 and max_points == 601
        # the slow channels wait for their SCREEN_HZ period (two 250 ms ticks), then come all at once
        keys = [g.key for g in view.GROUPS]
        assert second[n_groups + keys.index("cells")] is page.no_update
        _samples(engine, range(62, 63), channels=("Ga.T", "RHEED.I", "P.chamber"))
        third = page.tick(2, "MBE7", second[2 * n_groups], layout)
        cells_update, _, cells_max = third[n_groups + keys.index("cells")]
        assert cells_update["y"] == [[960.0, 961.0, 962.0]] and cells_max == 601
        assert third[n_groups + keys.index("rheed")][0]["y"] == [[962.0]]  # RHEED: only the newest
        assert third[2 * n_groups]["slow_tick"] == 2

        empty = page.tick(2, "NO-TOOL", {})  # no run on that tool: the empty state says what to do
        assert empty[2 * n_groups + 4] == {"display": "none"}
        assert "epi-ml live" in str(empty[2 * n_groups + 3])


def test_the_screen_gets_slow_channels_at_two_hertz_and_rheed_at_full_rate(store_url: str) -> None:
    engine = _store(store_url)
    rows = [
        {"tool_id": "MBE7", "run_id": RUN, "channel": c, "time": T0 + timedelta(milliseconds=100 * k), "value": float(k)}
        for k in range(100)  # 10 s at 10 Hz
        for c in ("Ga.T", "RHEED.I", "Ga.shutter")
    ]
    append_samples(engine, rows)
    snap = view.snapshot(engine, RUN, tool_id="MBE7")
    assert len(snap.channels["RHEED.I"].values) == 100
    assert len(snap.channels["Ga.shutter"].values) == 100
    ga = snap.channels["Ga.T"]
    assert len(ga.values) == 20 and ga.values[:2] == [4.0, 9.0]  # the last value of each 0.5 s

    def more(ks: range) -> None:
        append_samples(engine, [
            {"tool_id": "MBE7", "run_id": RUN, "channel": c, "time": T0 + timedelta(milliseconds=100 * k),
             "value": float(k)} for k in ks for c in ("Ga.T", "RHEED.I")
        ])  # fmt: skip

    # the page asks every 0.5 s: one point per slow channel, the newest; RHEED every sample
    more(range(100, 105))
    new = view.updates(engine, RUN, snap.cursor, slow_cursor=snap.cursor)
    assert new.channels["Ga.T"].values == [104.0] and len(new.channels["RHEED.I"].values) == 5
    # 0.6 s later: not the sample right after the one drawn (10.5 s) too, only the newest
    more(range(105, 111))
    drawn = new.newest.timestamp() * 1000
    assert view.updates(engine, RUN, new.cursor, new.cursor).channels["Ga.T"].values == [105.0, 110.0]
    later = view.updates(engine, RUN, new.cursor, slow_cursor=new.cursor, drawn_until_ms=drawn)
    assert later.channels["Ga.T"].values == [110.0]
    # a backlog (the tailer behind by 5 s) still draws 2 Hz, not one point for the 5 s
    more(range(111, 161))
    backlog = view.updates(engine, RUN, later.cursor, slow_cursor=later.cursor,
                           drawn_until_ms=later.newest.timestamp() * 1000)  # fmt: skip
    assert backlog.channels["Ga.T"].values == [float(k) for k in range(115, 161, 5)]
    assert view.max_points("rheed") > view.max_points("cells")


def test_every_trace_keeps_the_same_trailing_window_whatever_its_channel_rate(store_url: str) -> None:
    engine = _store(store_url)
    rates_hz = {"Ga.T": 1, "P.chamber": 2, "Al.T": 4, "RHEED.I": 10, "Ga.shutter": 10}
    append_samples(engine, [
        {"tool_id": "MBE7", "run_id": RUN, "channel": c, "time": T0 + timedelta(seconds=k / hz), "value": 1.0}
        for c, hz in rates_hz.items() for k in range(int(900 * hz))  # 15 min
    ])  # fmt: skip
    snap = view.snapshot(engine, RUN, tool_id="MBE7", history_s=600)
    # points per trace = rate on screen (slow channels at most SCREEN_HZ) x 600 s
    assert snap.caps == {"Ga.T": 601, "P.chamber": 1200, "Al.T": 1200, "RHEED.I": 6000}
    for channel in ("Ga.T", "P.chamber", "Al.T", "RHEED.I"):  # each spans the 10 min
        t_ms = snap.channels[channel].t_ms
        assert len(t_ms) <= snap.caps[channel]
        assert 599_000 <= t_ms[-1] - t_ms[0] <= 600_000, channel
    # a channel seen for less than RATE_SPAN_S: its rate is not known yet, so no cap from it
    window = view._read_window(engine, RUN, T0 + timedelta(seconds=900 - 10))
    assert view.trace_caps(window) == {}
    assert view.recent_caps(engine, RUN, snap.newest) == snap.caps


def test_the_live_page_learns_the_caps_of_a_run_that_just_started(isolated_home) -> None:  # type: ignore[no-untyped-def]
    from dashboard.app import create_app

    settings = get_settings()
    settings.ensure_home()
    engine = _store(settings.database_url)
    _samples(engine, range(0, 10), channels=("Ga.T", "P.chamber"))
    app = create_app(settings)
    page = sys.modules["pages.live"]
    n = len(view.GROUPS)
    keys = [g.key for g in view.GROUPS]
    with app.server.test_request_context():
        first = page.tick(0, "MBE7", {})
        state, layout = first[2 * n], first[2 * n + 1]
        assert layout["caps"] == {}  # 10 s of samples: their rate is not known yet
        _samples(engine, range(10, 50), channels=("Ga.T", "P.chamber"))
        second = page.tick(2, "MBE7", state, layout)
        assert second[2 * n + 1]["caps"] == {"Ga.T": 601, "P.chamber": 601}
        _, _, kept = second[n + keys.index("cells")]
        assert kept == 601
        # looked up once per RATE_SPAN_S of the run, not on every tick
        _samples(engine, range(50, 52), channels=("Ga.T", "P.chamber", "Al.T"))
        third_layout = second[2 * n + 1]
        assert page._learn_caps(engine, RUN, third_layout["signature"] | {"cells": ["Ga.T", "Al.T"]},
                                third_layout["caps"], third_layout["caps_checked_ms"],
                                T0 + timedelta(seconds=51)) == (third_layout["caps"], third_layout["caps_checked_ms"])  # fmt: skip


def test_extend_data_says_how_many_points_each_trace_keeps(isolated_home) -> None:  # type: ignore[no-untyped-def]
    from dashboard.app import create_app

    create_app(get_settings())
    page = sys.modules["pages.live"]
    samples = view.Samples(cursor=1, channels={"Ga.T": view.Series([1.0], [2.0]), "In.T": view.Series([1.0], [3.0])},
                           newest=T0)  # fmt: skip
    update, traces, kept = page._extend(["Ga.T", "In.T"], samples, caps={"Ga.T": 601})
    assert traces == [0, 1] and kept == {"x": [601, view.SCREEN_POINTS], "y": [601, view.SCREEN_POINTS]}
    assert page._extend(["Ga.T", "In.T"], samples, caps={"Ga.T": 601, "In.T": 601})[2] == 601


def test_the_shutter_timeline_draws_each_state_on_to_the_newest_sample(isolated_home) -> None:  # type: ignore[no-untyped-def]
    from dashboard.app import create_app

    settings = get_settings()
    settings.ensure_home()
    engine = _store(settings.database_url)
    _samples(engine, range(0, 60), channels=("Ga.T",))
    append_samples(engine, [{"tool_id": "MBE7", "run_id": RUN, "channel": "Ga.shutter",
                             "time": T0 + timedelta(seconds=10), "value": 1.0}])  # fmt: skip
    app = create_app(settings)
    page = sys.modules["pages.live"]
    keys = [g.key for g in view.GROUPS]
    with app.server.test_request_context():
        shutters = page.tick(0, "MBE7", {})[keys.index("shutters")]
    newest_ms = (T0 + timedelta(seconds=59)).timestamp() * 1000
    assert list(shutters.data[0].x) == [(T0 + timedelta(seconds=10)).timestamp() * 1000, newest_ms]
    assert list(shutters.data[0].y) == [0.8, 0.8]  # open (raised) from its change until now
