"""The live tailer: log lines into the live buffer while a run grows, with the run's id.

The twin's live mode appends to the day files while the tailer polls them in another thread; the
buffer must hold the run's samples before it ends and, once it has ended, exactly the rows of the
files. Smaller cases write the files by hand: partial and bad lines, rewritten files, restarts,
run marks that arrive after the samples they enclose.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import update

from epi_ml.ingest.batch import open_context
from epi_ml.ingest.files import IngestContext
from epi_ml.live.buffer import (
    append_samples,
    count_samples,
    drop_run,
    latest_values,
    read_samples,
    trim,
)
from epi_ml.live.runs import RunEvent
from epi_ml.live.tailer import Tailer
from epi_ml.readers import read_epic_day
from epi_ml.settings import reset_settings_cache
from epi_ml.store import read_session, write_session
from epi_ml.store.models import GrowthRun
from epi_ml.store.repo import ensure_tool
from epi_ml.twin.live import live_run

START = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
RUN_ID = "MBE1-20260202-01"
CRLF = "\r\n"


def _context(monkeypatch: pytest.MonkeyPatch, url: str) -> IngestContext:
    monkeypatch.setenv("EPI_ML_DATABASE_URL", url)
    reset_settings_cache()
    return open_context()


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def _tailing(ctx: IngestContext, events: list[RunEvent]) -> Iterator[Tailer]:
    tailer = Tailer(
        ctx.settings.landing_dir, ctx.engine, ctx.configs, poll_s=0.05, on_run=events.append
    )
    stop = threading.Event()
    thread = threading.Thread(target=tailer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield tailer
    finally:
        stop.set()
        thread.join(timeout=30)


def _run_row(ctx: IngestContext, run_id: str) -> GrowthRun | None:
    with read_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        if run is not None:
            session.expunge(run)  # keep its loaded values once the session is closed
        return run


def _status(ctx: IngestContext, run_id: str) -> str | None:
    run = _run_row(ctx, run_id)
    return run.status if run is not None else None


def _epic_channel(tag: str, rows: list[str]) -> str:
    return f"'EPIC {tag} Log File{CRLF}{CRLF}'Date,{tag}{CRLF}" + "".join(r + CRLF for r in rows)


def _row(at: datetime, value: float | str) -> str:
    return f"{at:%d/%m/%Y %H:%M:%S}.{at.microsecond // 1000:03d},{value}"


def _messages(rows: list[tuple[datetime, str, str]]) -> str:
    return "".join(
        f"{at:%d/%m/%Y %H:%M:%S}.000,{caller},{text},-16777216{CRLF}" for at, caller, text in rows
    )


MESSAGES_HEADER = f"'EPIC Message Log File{CRLF}{CRLF}'Date&Time,CallerID,Message,Color{CRLF}"


def test_a_growing_run_is_in_the_store_while_it_grows_and_exactly_its_rows_after(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context(monkeypatch, store_url)
    landing = ctx.settings.landing_dir
    day = landing / "twin" / "MBE1" / "logs" / "2026_02_02"
    events: list[RunEvent] = []
    twin = threading.Thread(
        target=live_run,
        kwargs={
            "out": landing / "twin",
            "tool": "MBE1",
            "recipe": "rheed_calibration",
            "speed": 900,
            "seed": 3,
            "start": START,
            "fault_rate": 0.0,
            "tick_s": 0.05,
        },
        daemon=True,
    )
    with _tailing(ctx, events) as tailer:
        twin.start()

        def growing() -> bool:  # samples with the run's id, and the recipe's start message read
            run = _run_row(ctx, RUN_ID)
            recipe_known = run is not None and run.recipe_name is not None
            return recipe_known and count_samples(ctx.engine, run_id=RUN_ID) > 500

        _wait_for(growing, "samples of the run")
        ended = f"Run {RUN_ID} end".encode() in (day / "Messages.txt").read_bytes()
        run = _run_row(ctx, RUN_ID)
        assert not ended and twin.is_alive(), "the run ended before the tailer saw it grow"
        assert run is not None and run.status == "live"
        assert run.started_at == START and run.ended_at is None
        assert (run.recipe_name, run.segmented_by) == ("rheed_calibration", "recipe")

        twin.join(timeout=120)
        files = read_epic_day(day)
        expected = pl.concat([files.sensors, files.shutters])
        _wait_for(lambda: count_samples(ctx.engine) >= expected.height, "every row of the files")
        _wait_for(lambda: _status(ctx, RUN_ID) == "open", "the run's end")
        time.sleep(0.15)  # two more passes: nothing more may arrive
    assert tailer.stats.bad_lines == 0 and tailer.stats.store_errors == 0

    buffer = read_samples(ctx.engine)
    key = ["channel", "time", "value"]
    assert_frame_equal(buffer.select(key).sort(key), expected.select(key).sort(key))
    run = _run_row(ctx, RUN_ID)
    assert run is not None and run.ended_at is not None and run.segmented_by == "recipe"
    in_run = pl.col("time").is_between(pl.lit(run.started_at), pl.lit(run.ended_at))
    assert buffer.filter(in_run).get_column("run_id").unique().to_list() == [RUN_ID]
    assert buffer.filter(~in_run).get_column("run_id").null_count() == buffer.filter(~in_run).height
    assert [e.kind for e in events if e.run_id == RUN_ID][0] == "started"
    assert [e.kind for e in events if e.run_id == RUN_ID][-1] == "ended"


def test_partial_and_bad_lines_time_zones_and_unknown_tags(isolated_home: Path) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "tools.yaml").write_text("MBE9:\n  timezone: Europe/Berlin\n")
    ctx = open_context()
    day = ctx.settings.landing_dir / "MBE9" / "2026_02_02"
    day.mkdir(parents=True)
    local = datetime(2026, 2, 2, 10, 0, 0)  # Berlin wall clock: 09:00 UTC in winter
    ga = day / "Ga.PID.MV.txt"
    ga.write_text(
        _epic_channel("Ga.PID.MV", [_row(local, 985.1), _row(local.replace(second=1), 985.2)])
        + _row(local.replace(second=2), "98"),
        newline="",
    )
    odd = day / "Mystery.PV.txt"
    odd.write_text("'EPIC Mystery.PV Log File\r\n", newline="")  # the header is still being written
    tailer = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs)

    assert tailer.poll_once() == 2
    with ga.open("a", newline="") as f:  # the partial line completed, then bad lines
        f.write("5.5" + CRLF + "garbage" + CRLF + _row(local.replace(second=3), "abc") + CRLF)
        f.write(
            _row(local.replace(second=4), "nan") + CRLF + _row(local.replace(second=5), 990) + CRLF
        )
    odd.write_text(_epic_channel("Mystery.PV", [_row(local, 1.5)]), newline="")
    assert tailer.poll_once() == 3
    assert tailer.stats.bad_lines == 3

    rows = read_samples(ctx.engine).sort("channel", "time")
    utc = datetime(2026, 2, 2, 9, 0, 0, tzinfo=UTC)
    assert rows.select("channel", "value").rows() == [
        ("Ga.T", 985.1),
        ("Ga.T", 985.2),
        ("Ga.T", 985.5),
        ("Ga.T", 990.0),
        ("raw:Mystery.PV", 1.5),
    ]
    assert rows.get_column("time").to_list() == [
        utc,
        utc + timedelta(seconds=1),
        utc + timedelta(seconds=2),
        utc + timedelta(seconds=5),
        utc,
    ]
    assert rows.get_column("run_id").null_count() == 5  # no run marks: no run
    assert tailer.poll_once() == 0  # nothing new: nothing read twice


def test_a_rewritten_or_replaced_file_is_read_again_without_doubling_rows(
    isolated_home: Path,
) -> None:
    ctx = open_context()
    day = ctx.settings.landing_dir / "MBE3" / "logs" / "2026_02_02"
    day.mkdir(parents=True)
    at = [START + timedelta(seconds=i) for i in range(8)]
    path = day / "Sub.PID.MV.txt"
    path.write_text(
        _epic_channel("Sub.PID.MV", [_row(t, 600 + i) for i, t in enumerate(at[:3])]), newline=""
    )
    tailer = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs)
    assert tailer.poll_once() == 3

    # Truncated and written again (shorter than what was read): the first rows are in already.
    path.write_text(
        _epic_channel("Sub.PID.MV", [_row(t, 600 + i) for i, t in enumerate(at[:2])]), newline=""
    )
    assert tailer.poll_once() == 0 and tailer.stats.skipped == 2
    with path.open("a", newline="") as f:
        f.write("".join(_row(t, 600 + i) + CRLF for i, t in enumerate(at[:5]) if i >= 2))
    assert tailer.poll_once() == 2  # row 2 again is skipped, rows 3 and 4 are new

    # Replaced (a sync writes a new file and renames it over the old one), with one more row.
    fresh = day / ".Sub.PID.MV.txt.tmp"
    fresh.write_text(
        _epic_channel("Sub.PID.MV", [_row(t, 600 + i) for i, t in enumerate(at[:6])]), newline=""
    )
    os.replace(fresh, path)
    assert tailer.poll_once() == 1
    values = read_samples(ctx.engine).sort("time").get_column("value").to_list()
    assert values == [600.0, 601.0, 602.0, 603.0, 604.0, 605.0]


def test_a_restart_resumes_after_the_buffer_and_old_files_are_tailed_from_their_end(
    isolated_home: Path,
) -> None:
    ctx = open_context()
    day = ctx.settings.landing_dir / "MBE4" / "logs" / "2026_02_02"
    day.mkdir(parents=True)
    at = [START + timedelta(seconds=i) for i in range(6)]
    ga = day / "Ga.PID.MV.txt"
    ga.write_text(
        _epic_channel("Ga.PID.MV", [_row(t, 900 + i) for i, t in enumerate(at[:3])]), newline=""
    )
    old = day / "Al.PID.MV.txt"
    old.write_text(_epic_channel("Al.PID.MV", [_row(t, 1100) for t in at[:3]]), newline="")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    first = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs)
    assert first.poll_once() == 3  # the old file's past is batch ingest's

    with ga.open("a", newline="") as f:  # written while no tailer runs
        f.write(_row(at[3], 903) + CRLF)
    second = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs)
    assert second.poll_once() == 1 and second.stats.skipped == 3
    with old.open("a", newline="") as f:
        f.write(_row(at[4], 1104) + CRLF)
    assert second.poll_once() == 1
    rows = read_samples(ctx.engine).sort("channel", "time")
    assert rows.select("channel", "value").rows() == [
        ("Al.T", 1104.0),
        ("Ga.T", 900.0),
        ("Ga.T", 901.0),
        ("Ga.T", 902.0),
        ("Ga.T", 903.0),
    ]


def test_runs_from_transfers_and_recipes_label_samples_that_came_first(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context(monkeypatch, store_url)
    day = ctx.settings.landing_dir / "MBE7" / "logs" / "2026_02_02"
    day.mkdir(parents=True)
    t0 = datetime(2026, 2, 2, 10, 0, 0, tzinfo=UTC)
    s = [t0 + timedelta(seconds=i) for i in range(80)]
    (day / "GC IG.PG.MV.txt").write_text(
        _epic_channel(
            "GC IG.PG.MV", [_row(t, f"{1e-9 * (i + 1):.2E}") for i, t in enumerate(s[:10])]
        ),
        newline="",
    )
    events: list[RunEvent] = []
    tailer = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs, on_run=events.append)
    assert tailer.poll_once() == 10

    def labels() -> list[str | None]:
        return read_samples(ctx.engine, tool_id="MBE7").sort("time").get_column("run_id").to_list()

    assert labels() == [None] * 10
    messages = day / "Messages.txt"
    # The wafer-in is logged after the samples it encloses were read: they are labelled again.
    messages.write_text(
        MESSAGES_HEADER + _messages([(s[3], "Location Tab", "W7 moved from LL to GC")]), newline=""
    )
    tailer.poll_once()
    transfer_run = "MBE7-20260202-01"  # no recipe: the id is <tool>-<day>-<seq>
    assert labels() == [None] * 3 + [transfer_run] * 7
    run = _run_row(ctx, transfer_run)
    assert run is not None and (run.status, run.segmented_by) == ("live", "transfer")
    with messages.open("a", newline="") as f:
        f.write(_messages([(s[6], "Location Tab", "W7 moved from GC to LL")]))
    tailer.poll_once()
    assert labels() == [None] * 3 + [transfer_run] * 4 + [None] * 3
    run = _run_row(ctx, transfer_run)
    assert (
        run is not None and run.status == "open" and (run.started_at, run.ended_at) == (s[3], s[6])
    )

    # A second wafer first looks like a run of its own, until the recipe names the run.
    with messages.open("a", newline="") as f:
        f.write(_messages([(s[20], "Location Tab", "W8 moved from LL to GC")]))
    tailer.poll_once()
    assert _run_row(ctx, "MBE7-20260202-02") is not None
    with messages.open("a", newline="") as f:
        f.write(
            _messages(
                [(s[22], "Recipe", "Run R-77 start recipe=gaas_buffer operator=ann wafer=W8")]
            )
        )
    with (day / "GC IG.PG.MV.txt").open("a", newline="") as f:
        f.write("".join(_row(t, "2.00E-09") + CRLF for t in s[20:30]))
    tailer.poll_once()
    assert _run_row(ctx, "MBE7-20260202-02") is None  # withdrawn
    recipe_run = _run_row(ctx, "R-77")
    assert recipe_run is not None and recipe_run.status == "live" and recipe_run.started_at == s[20]
    assert (recipe_run.recipe_name, recipe_run.operator, recipe_run.wafer) == (
        "gaas_buffer",
        "ann",
        "W8",
    )
    assert labels()[10:] == ["R-77"] * 10
    kinds = [(e.kind, e.run_id) for e in events]
    assert ("withdrawn", "MBE7-20260202-02") in kinds and ("started", "R-77") in kinds

    # Batch ingest took the first run further: a restarted tailer never sets it back.
    with write_session(ctx.engine) as session:
        session.execute(
            update(GrowthRun).where(GrowthRun.id == transfer_run).values(status="validated")
        )
    Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs).poll_once()
    assert _status(ctx, transfer_run) == "validated"
    assert _status(ctx, "R-77") == "live"


def test_buffer_reads_incrementally_keeps_latest_values_and_is_bounded(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context(monkeypatch, store_url)
    engine = ctx.engine
    t0 = datetime(2026, 2, 2, 10, tzinfo=UTC)
    with write_session(engine) as session:
        ensure_tool(session, "B")
        session.add(GrowthRun(id="B-1", tool_id="B", status="live"))
        session.add(GrowthRun(id="B-0", tool_id="B", status="validated"))
    rows = [
        {"tool_id": "B", "run_id": "B-0", "channel": "Ga.T", "time": t0, "value": 1.0},
        {
            "tool_id": "B",
            "run_id": "B-1",
            "channel": "Ga.T",
            "time": t0 + timedelta(seconds=2),
            "value": 3.0,
        },
        {
            "tool_id": "B",
            "run_id": None,
            "channel": "Ga.T",
            "time": t0 + timedelta(seconds=1),
            "value": 2.0,
        },
        {"tool_id": "B", "run_id": "B-1", "channel": "BEP", "time": t0, "value": 1e-7},
    ]
    old = datetime.now(UTC) - timedelta(hours=3)
    assert append_samples(engine, rows[:2], received_at=old) == 2
    assert append_samples(engine, pl.DataFrame(rows[2:]), received_at=old) == 2

    first = read_samples(engine, tool_id="B", limit=3)
    assert first.get_column("value").to_list() == [1.0, 3.0, 2.0]
    last_id = first.get_column("id").to_list()[-1]
    rest = read_samples(engine, tool_id="B", after_id=last_id)
    assert rest.get_column("channel").to_list() == ["BEP"]
    assert read_samples(engine, run_id="B-1", channels=["Ga.T"]).get_column("value").to_list() == [
        3.0
    ]
    latest = latest_values(engine, "B").sort("channel")
    assert latest.select("channel", "value", "run_id").rows() == [
        ("BEP", 1e-7, "B-1"),
        ("Ga.T", 3.0, "B-1"),
    ]

    # Trim: samples of no run and of runs that are no longer live go; the live run's stay.
    assert trim(engine, timedelta(hours=1)) == 2
    assert sorted(read_samples(engine).get_column("run_id").to_list()) == ["B-1", "B-1"]
    assert drop_run(engine, "B-1") == 2 and count_samples(engine) == 0


def test_a_failed_write_loses_nothing(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = open_context()
    day = ctx.settings.landing_dir / "MBE5" / "logs" / "2026_02_02"
    day.mkdir(parents=True)
    rows = [_row(START + timedelta(seconds=i), 500 + i) for i in range(4)]
    (day / "Ga.PID.MV.txt").write_text(_epic_channel("Ga.PID.MV", rows), newline="")
    tailer = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs)
    import epi_ml.live.tailer as tailer_module

    def store_down(*_args: object, **_kw: object) -> int:
        raise ConnectionError("store unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(tailer_module, "append_samples", store_down)
        assert tailer.poll_once() == 0 and tailer.stats.store_errors == 1
    assert tailer.poll_once() == 4  # the same lines, read again
    assert count_samples(ctx.engine) == 4


def test_python_m_epi_ml_live_tails_the_home_until_sigterm(isolated_home: Path) -> None:
    ctx = open_context()
    day = ctx.settings.landing_dir / "MBE6" / "logs" / "2026_02_02"
    day.mkdir(parents=True)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "epi_ml.live", "--poll", "0.05", "--report-every", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        at = START
        (day / "Messages.txt").write_text(
            MESSAGES_HEADER + _messages([(at, "Location Tab", "W6 moved from LL to GC")]),
            newline="",
        )
        (day / "Sub.PID.MV.txt").write_text(
            _epic_channel("Sub.PID.MV", [_row(at, 200)]), newline=""
        )
        _wait_for(lambda: count_samples(ctx.engine, run_id="MBE6-20260202-01") == 1, "the sample")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "run MBE6-20260202-01 started on MBE6" in output
    assert "1 samples" in output.splitlines()[-1]


def test_a_tailer_started_over_ingested_logs_buffers_none_of_their_history(
    isolated_home: Path, tmp_path: Path
) -> None:
    """The demo's case: a campaign already ingested by batch sits in landing/ when the tailer
    starts; its runs are complete and built, so their samples are not buffered again."""
    from ingest_helpers import land, make_campaign

    from epi_ml.ingest.batch import ingest_paths

    make_campaign(tmp_path / "twin", runs=2)
    landing = land(tmp_path / "twin", isolated_home)
    ctx = open_context()
    assert {r.status for r in ingest_paths(ctx, [landing]).built} <= {"accepted", "accepted_with_warnings"}
    # The twin dates its files as a logger would: weeks old, so they are tailed from their end.
    idle = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs, poll_s=0.05)
    idle.poll_once()
    assert idle.stats.lines == 0 and count_samples(ctx.engine) == 0
    # Copied without their times (they look written just now): read, and the runs recognised.
    for path in landing.rglob("*.txt"):
        os.utime(path)
    tailer = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs, poll_s=0.05)
    while tailer.poll_once():
        pass
    with read_session(ctx.engine) as session:
        run_ids = [r.id for r in session.query(GrowthRun)]
    assert all(count_samples(ctx.engine, run_id=run_id) == 0 for run_id in run_ids)
    # What is left are the few samples logged between the runs (no run): trim ages them out.
    left = read_samples(ctx.engine, tool_id="MBE1", limit=1000)
    assert left.height < 100 and left.get_column("run_id").null_count() == left.height
    assert tailer.stats.skipped + tailer.stats.samples > 100_000
    with read_session(ctx.engine) as session:
        assert {r.status for r in session.query(GrowthRun)} == {"validated"}  # never downgraded


def test_a_store_that_keeps_failing_is_logged_once_a_minute_not_on_every_try(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    import polars as pl
    from sqlalchemy import create_engine

    from epi_ml.live.runs import LiveTool

    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'epi-ml.db'}")
    tool = LiveTool(unreachable, "MBE7")
    tool.add_messages(pl.DataFrame({
        "time": [datetime(2026, 3, 2, 8, 0, tzinfo=UTC)],
        "message": ["Run MBE7-20260302-01 start recipe=gaas_buffer operator=ann wafer=W1"],
    }))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="epi_ml.live.runs"):
        for _ in range(5):
            assert tool.settle() == []
    warnings = [r for r in caplog.records if "runs not written" in r.getMessage()]
    assert len(warnings) == 1 and "1 tries so far" in warnings[0].getMessage()
    assert tool._dirty  # nothing marked done: the next settle tries again


def test_one_pass_over_many_channel_logs_reads_each_file_as_if_alone(
    isolated_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass parses the channel logs of a tool together (a tool writes one file per channel);
    each row keeps its own file's channel, a bad line its own file and line, and the hour a
    fall-back repeats is told apart within each file, as when each file is read alone."""
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "tools.yaml").write_text("MBE9:\n  timezone: Europe/Berlin\n")
    ctx = open_context()
    day = ctx.settings.landing_dir / "MBE9" / "2026_10_25"
    day.mkdir(parents=True)
    tags = [f"Probe{i}.PV" for i in range(8)]
    tailer = Tailer(ctx.settings.landing_dir, ctx.engine, ctx.configs)
    tailer.poll_once()
    first = datetime(2026, 10, 25, 1, 0, 0)  # CEST: 23:00 UTC the day before
    for i, tag in enumerate(tags):  # a blank line in one file must not shift the others
        rows = [_row(first, i), *([""] if i == 3 else []), _row(first.replace(second=1), i + 0.5)]
        (day / f"{tag}.txt").write_text(_epic_channel(tag, rows), newline="")
    assert tailer.poll_once() == 16
    got = read_samples(ctx.engine).sort("channel", "time")
    start = datetime(2026, 10, 24, 23, 0, 0, tzinfo=UTC)
    assert got.select("channel", "value", "time").rows() == [
        (f"raw:{tag}", value, start + timedelta(seconds=s))
        for i, tag in enumerate(tags)
        for s, value in ((0, float(i)), (1, i + 0.5))
    ]

    # 02:30 then 02:10 in every file: the clock went back in between (CEST, then CET)
    for i, tag in enumerate(tags):
        with (day / f"{tag}.txt").open("a", newline="") as f:
            f.write(_row(datetime(2026, 10, 25, 2, 30), 10 + i) + CRLF)
            f.write(_row(datetime(2026, 10, 25, 2, 10), 20 + i) + CRLF)
    assert tailer.poll_once() == 16
    repeated = read_samples(ctx.engine).filter(pl.col("value") >= 10).sort("channel", "value")
    summer, winter = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    assert repeated.get_column("time").to_list() == [
        summer if v < 20 else winter for v in repeated.get_column("value").to_list()
    ]

    # one bad line: counted and logged with its own file and line; every other row is stored
    for i, tag in enumerate(tags):
        with (day / f"{tag}.txt").open("a", newline="") as f:
            f.write(_row(datetime(2026, 10, 25, 4, 0), "oops" if i == 5 else 30 + i) + CRLF)
    with caplog.at_level("WARNING", logger="epi_ml.live.tailer"):
        assert tailer.poll_once() == 7
    assert tailer.stats.bad_lines == 1
    assert f"{day / 'Probe5.PV.txt'}:8" in caplog.text
