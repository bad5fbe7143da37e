"""`epi-ml serve` runs the Dagster UI, the dashboard and the live tailer as child processes, each in
its own session; stopping it must stop them all, however it is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("started", ["in the foreground", "as a shell script's background job"])
def test_sigterm_stops_every_process_serve_started(isolated_home: Path, started: str) -> None:
    """`kill`, `systemctl stop` and `docker stop` send SIGTERM, not Ctrl-C. A shell script's
    `epi-ml serve &` starts it with SIGINT ignored, which its children would inherit: they must
    still stop on the SIGINT serve sends them, not be killed after a time-out (serve exits 1)."""
    dashboard = _free_port()
    epi_ml = str(Path(sys.executable).with_name("epi-ml"))
    serve = subprocess.Popen(
        [epi_ml, "serve", "--dagster-port", str(_free_port()), "--dashboard-port", str(dashboard)],
        env=os.environ | {"EPI_ML_HOME": str(isolated_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_ignore_sigint if "background" in started else None,  # noqa: PLW1509 - no threads here
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while True:  # the dashboard answering: every child has been started
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/", timeout=2).read()
                break
            except OSError:
                assert serve.poll() is None, f"epi-ml serve exited early with {serve.returncode}"
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.5)
        children = psutil.Process(serve.pid).children(recursive=True)
        assert len(children) >= 3  # dagster dev (and its own), the dashboard, the tailer
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0  # every child stopped by itself
        _, alive = psutil.wait_procs(children, timeout=30)
        assert [p.pid for p in alive] == []
    finally:  # nothing left behind, whatever failed
        for process in [psutil.Process(serve.pid), *children] if serve.poll() is None else children:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
