"""Fixtures of the browser tests (what they do: browser_support.py): one served home and one
headless Chromium per session, a fresh tab per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LIVE_SPEED,
    LIVE_TOOL,
    REPO,
    Page,
    Served,
    epi_ml_command,
    start_process,
    free_port,
    wait_for_http,
)
from prereqs import require


@pytest.fixture(scope="session")
def chromium_path() -> str:
    require(
        Path(CHROMIUM).exists(),
        f"Chromium not found at {CHROMIUM}",
        "apt-get install -y chromium chromium-driver (or set EPI_ML_CHROMIUM)",
    )
    return CHROMIUM


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("browser") / "home"
    logs = home.parent / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPI_ML_", "DAGSTER_"))}
    env |= {"EPI_ML_HOME": str(home), "EPI_ML_LANDING_SETTLE_S": "3600", "PYTHONUNBUFFERED": "1"}
    for step in (["init"], ["pipeline"]):
        done = subprocess.run(epi_ml_command(*step), env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"epi-ml {' '.join(step)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    port = free_port()
    served = Served(url=f"http://127.0.0.1:{port}", home=home, env=env, logs=logs)
    try:
        served.processes.append(start_process(epi_ml_command("tail", "--poll", "0.2"), env, logs / "tail.log"))
        time.sleep(2)  # the tailer's first pass over the campaign's logs
        twin = start_process(
            epi_ml_command("live", "--out", str(home / "landing" / "twin"), "--tool", LIVE_TOOL,
                    "--speed", LIVE_SPEED, "--seed", "3", "--faults", "0"),
            env, logs / "live.log",
        )  # fmt: skip
        served.processes.append(twin)
        dash = start_process([sys.executable, "-m", "dashboard", "--port", str(port)], env, logs / "dashboard.log")
        served.processes.append(dash)
        wait_for_http(served.url + "/", process=dash)
        served.live_run_id = _wait_for_live_run(home, env)
        yield served
    finally:
        for process in reversed(served.processes):
            if process.poll() is None:
                process.terminate()
        for process in served.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if os.environ.get("EPI_ML_KEEP_BROWSER_HOME"):
            print(f"browser test home kept at {home}")
        else:
            shutil.rmtree(home / "landing", ignore_errors=True)


def _wait_for_live_run(home: Path, env: dict[str, str], timeout: float = 90.0) -> str:
    """The run `epi-ml live` grows, once the tailer has stored it as live."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{home / 'epi-ml.db'}")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                run = conn.execute(
                    text("select id from growth_runs where status = 'live' and tool_id = :t"),
                    {"t": LIVE_TOOL},
                ).scalar()
            if run:
                return str(run)
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise TimeoutError("epi-ml live + epi-ml tail stored no live run within 90 s")


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object, served: Served) -> Iterator[Page]:
    tab = Page(browser, served.url)
    yield tab
    tab.context.close()
