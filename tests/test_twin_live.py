"""`epi-ml live` appends a growing run to the log files; `epi-ml simulate` from the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from epi_ml.cli import app
from epi_ml.twin.live import RUN_GAP, LiveProgress, live_run, next_run_id, tool_clock
from epi_ml.twin.single import grow_one_run
from epi_ml.twin.writers import EpicWriter, write_run

START = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
runner = CliRunner()


def _logs(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_live_appends_as_the_run_grows_and_ends_with_the_same_bytes_as_a_batch(
    tmp_path: Path,
) -> None:
    sizes: list[int] = []
    watched = tmp_path / "live" / "MBE2" / "logs" / "2026_02_02" / "Ga.PID.MV.txt"

    def watch(progress: LiveProgress) -> None:
        sizes.append(watched.stat().st_size if watched.exists() else 0)

    result = live_run(
        tmp_path / "live",
        tool="MBE2",
        recipe="rheed_calibration",
        speed=2_000,
        seed=5,
        start=START,
        fault_rate=0.0,
        on_progress=watch,
        tick_s=0.05,
        progress_every_s=0.0,
    )
    assert result.done and not result.aborted and result.run_id == "MBE2-20260202-01"
    assert len(set(sizes)) > 5 and sizes == sorted(sizes)  # the file grew tick by tick

    batch = grow_one_run("rheed_calibration", "MBE2", 5, START, "MBE2-20260202-01", fault_rate=0.0)
    write_run(EpicWriter(tmp_path / "batch" / "MBE2"), batch.trace, batch.state)
    assert _logs(tmp_path / "live" / "MBE2" / "logs") == _logs(tmp_path / "batch" / "MBE2" / "logs")
    truth = json.loads((tmp_path / "live" / "MBE2" / "truth" / "MBE2-20260202-01.json").read_text())
    assert truth["run_id"] == "MBE2-20260202-01" and truth["layers"]
    assert next_run_id(tmp_path / "live", "MBE2", START) == "MBE2-20260202-02"


def test_a_run_sped_up_into_the_future_is_followed_not_overlapped(tmp_path: Path) -> None:
    """One tool grows one run at a time: the next live run starts after the last one ended, even
    when that one, sped up, ended hours from now (its samples would be inside it)."""
    before = datetime.now(UTC)
    first = live_run(tmp_path, tool="MBE2", recipe="rheed_calibration", speed=5_000, seed=1,
                     fault_rate=0.0, tick_s=0.02)  # fmt: skip
    first_end = tool_clock(tmp_path / "MBE2")
    assert first.done and first_end is not None and first_end > before + timedelta(seconds=first.duration_s - 5)
    second = live_run(tmp_path, tool="MBE2", recipe="rheed_calibration", speed=5_000, seed=2,
                      fault_rate=0.0, tick_s=0.02)  # fmt: skip
    assert second.done and second.run_id != first.run_id
    messages = "".join(p.read_text() for p in (tmp_path / "MBE2" / "logs").rglob("Messages.txt"))
    starts = [line.split(",")[0] for line in messages.splitlines() if f"Run {second.run_id} start" in line]
    started = datetime.strptime(starts[0], "%d/%m/%Y %H:%M:%S.%f").replace(tzinfo=UTC)
    assert first_end + RUN_GAP <= started < first_end + RUN_GAP + timedelta(minutes=1)


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    epi_ml = Path(sys.executable).parent / "epi-ml"
    process = subprocess.Popen(
        [
            str(epi_ml),
            "live",
            "--out",
            str(tmp_path),
            "--recipe",
            "gaas_buffer",
            "--speed",
            "200",
            "--start",
            "2026-02-02T09:30:00+00:00",
            "--faults",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
        # a test run launched in the background inherits SIGINT ignored: give the child Ctrl-C back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    messages = tmp_path / "MBE1" / "logs" / "2026_02_02" / "Messages.txt"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        messages.exists() and b"Flux check start" in messages.read_bytes()
    ):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 130, output.decode()
    assert b"aborted" in output
    lines = messages.read_bytes().split(b"\r\n")
    assert lines[-1] == b"" and lines[-2].endswith(
        b",Recipe,Run MBE1-20260202-01 aborted,-16777216"
    )
    for path in messages.parent.glob("*.txt"):
        assert path.read_bytes().endswith(b"\r\n"), path.name  # every row written whole
    # the tool's clock stands where the run stopped, not at its planned end
    assert tool_clock(tmp_path / "MBE1") < datetime(2026, 2, 2, 10, 30, tzinfo=UTC)


def test_simulate_from_the_command_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--out",
            str(tmp_path),
            "--runs",
            "2",
            "--tools",
            "1",
            "--seed",
            "4",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 runs on MBE1" in result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 4 and len(manifest["truth"]["runs"]) == 2
    again = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--runs", "2"])
    assert again.exit_code == 2 and "not empty" in again.output


def test_simulate_defaults_to_the_landing_folder(isolated_home: Path) -> None:
    result = runner.invoke(app, ["simulate", "--runs", "1", "--tools", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert (isolated_home / "landing" / "twin" / "manifest.json").exists()
