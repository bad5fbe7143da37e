"""What the browser tests share (fixtures in conftest.py): the real dashboard served from a real home, driven by headless Chromium.

Once per session: a home with the demo's pipeline run (the twin's campaign ingested, validated,
features, a candidate model judged at the gate), `epi-ml tail` following its landing folder,
`epi-ml live` growing a run into it, and `python -m dashboard` serving it. Playwright drives
Debian's /usr/bin/chromium (no browser download; EPI_ML_CHROMIUM overrides the path).
Screenshots go to artifacts/browser/ (EPI_ML_TEST_ARTIFACTS overrides), to be looked at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("EPI_ML_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("EPI_ML_TEST_ARTIFACTS", REPO / "artifacts" / "browser"))
LIVE_TOOL = "MBE1"
LIVE_SPEED = "20"  # the twin's 105-min run in about 5 min: growing while the live tests run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing served at {url} within {timeout:.0f} s")


@dataclass
class Served:
    url: str
    home: Path
    env: dict[str, str]
    live_run_id: str | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs: Path | None = None


def epi_ml_command(*args: str) -> list[str]:
    """The `epi-ml` command of this environment (as the README's user runs it)."""
    return [str(Path(sys.executable).with_name("epi-ml")), *args]


def start_process(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
    )


class Page:
    """A browser tab that records console errors and uncaught exceptions, and saves screenshots."""

    def __init__(self, browser: object, base_url: str) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)  # type: ignore[attr-defined]
        self.tab = self.context.new_page()
        self.errors: list[str] = []
        self.tab.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.tab.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def open(self, path: str, ready: str) -> None:
        """Go to `path` and wait until the CSS selector `ready` is visible."""
        self.tab.goto(self.base_url + path)
        self.tab.wait_for_selector(ready, timeout=30_000)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.tab.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_errors(self) -> None:
        assert self.errors == [], "browser console errors:\n" + "\n".join(self.errors)
