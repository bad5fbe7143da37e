"""The live dashboard in a real browser: how long from a sample written to a tool log to it being
drawn, what each update costs, and whether ten sessions for ten minutes stay flat.

Run by `make bench`, or alone: `python bench/bench_dashboard.py --out DIR [--window-s 60]
[--soak-s 600] [--sessions 10]`.

Everything runs as in production, each in its own process: a logger writes 64 EPIC channel logs
(open, append, close per row, stamped with the wall clock) into a landing folder; `epi-ml tail`
(polling every 0.1 s, as `epi-ml serve` starts it) stores them in the live buffer (SQLite); `python -m dashboard` serves the Live page; headless
Chromium (Playwright, /usr/bin/chromium) shows it. In the page, a requestAnimationFrame probe reads
the newest points of a trace after every frame: latency = the frame's time - the sample's time
stamp, for every sample drawn (same clock, same machine).
- Latency p50/p95 at 64 channels x 1 Hz and x 10 Hz (one session). Target (issue): p95 <= 1 s.
  Baseline in the same run: the store latency alone (a sample in the buffer, polled every 5 ms),
  the floor the file path costs before the dashboard. Where the time goes: for the newest RHEED
  sample of each update, time stamp -> request (store + tick wait), request -> response (server),
  response -> drawn (browser).
- Bytes per update (the JSON of each live-page callback response) at the start of a run and at
  the end of a 6-hour run (the buffer pre-filled with 6 h x 64 channels at 1 Hz): must not grow.
- Server CPU per update: the dashboard process's CPU seconds / updates served.
- Soak: `--sessions` browser sessions watch the same run for `--soak-s`; the server's RSS every
  10 s (first vs last minute), and the response time of a page request made every 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assets.cli import LIVE_POLL_S  # noqa: E402
from epi_ml.live.buffer import append_samples, read_samples  # noqa: E402
from epi_ml.store import engine_for, upgrade  # noqa: E402

CHROMIUM = os.environ.get("EPI_ML_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
TOOL = "BENCH"  # each measurement on a tool of its own (BENCH1, BENCH2, ...): runs never overlap
CHANNELS = 64
TARGET_P95_S = 1.0
# The twin's EPIC tags (canonical channels via the default tag map), then auxiliary tags up to 64.
KNOWN_TAGS = [
    "Ga.PID.MV", "Ga.PID.SP", "Ga.PID.wOP", "GaHL.PID.MV", "GaHL.PID.SP", "GaHL.PID.wOP",
    "Al.PID.MV", "Al.PID.SP", "Al.PID.wOP", "In.PID.MV", "In.PID.SP", "In.PID.wOP",
    "InHL.PID.MV", "InHL.PID.SP", "InHL.PID.wOP", "Si.PID.MV", "Si.PID.SP", "Si.PID.wOP",
    "Be.PID.MV", "Be.PID.SP", "Be.PID.wOP", "As.PID.MV", "AsCr.PID.MV", "As.Valve.MV",
    "As.Valve.SP", "Sub.PID.MV", "Sub.PID.SP", "Sub.PID.wOP", "Sub.Rot.MV", "Pyro.PID.MV",
    "FLUX IG.PG.MV", "GC IG.PG.MV", "MC IG.PG.MV", "RHEED.Spec.MV",
]  # fmt: skip
TAGS = KNOWN_TAGS + [f"Aux{k:02d}.MV" for k in range(CHANNELS - len(KNOWN_TAGS))]
PROBE_GRAPH = "live-rheed"  # RHEED.Spec.MV -> RHEED.I: one trace, every sample
SLOW_PROBE_GRAPH = "live-cells"  # its first trace: a cell temperature, drawn at SCREEN_HZ (2 Hz)

# In the page: after every animation frame, every point of the probed graph's first trace newer
# than the last one seen is drawn now; its latency is now - its time stamp (ms since the epoch).
PROBE_JS = """
(graphId) => {
  window.__lat = window.__lat || {}; window.__lat[graphId] = []; let last = 0;
  window.__drawnAt = window.__drawnAt || {}; window.__drawnAt[graphId] = {};
  const g0 = document.querySelector('#' + graphId + ' .js-plotly-plot');
  if (g0 && g0.data && g0.data.length) { const x0 = g0.data[0].x || []; if (x0.length) last = +x0[x0.length - 1]; }
  const step = () => {
    const g = document.querySelector('#' + graphId + ' .js-plotly-plot');
    if (g && g.data && g.data.length) {
      const x = g.data[0].x || []; const now = Date.now();
      for (let i = x.length - 1; i >= 0 && +x[i] > last; i--) {
        window.__lat[graphId].push(now - x[i]); window.__drawnAt[graphId][+x[i]] = now;
      }
      if (x.length) last = Math.max(last, +x[x.length - 1]);
    }
    requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def epic_time(moment: datetime) -> str:
    return f"{moment:%d/%m/%Y %H:%M:%S}.{moment.microsecond // 1000:03d}"


class Logger(threading.Thread):
    """A tool's logger: every 1/rate s one row per channel, each file opened, appended, closed."""

    def __init__(self, landing: Path, rate_hz: float, tool: str) -> None:
        super().__init__(daemon=True)
        self.landing, self.rate_hz, self.tool = landing, rate_hz, tool
        self.stop = threading.Event()
        self.rows = 0

    def day(self, moment: datetime) -> Path:
        folder = self.landing / self.tool / "logs" / f"{moment:%Y_%m_%d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def message(self, moment: datetime, text: str) -> None:
        path = self.day(datetime.now(UTC)) / "Messages.txt"
        if not path.exists():
            path.write_text("'EPIC Message Log File\r\n\r\n'Date&Time,CallerID,Message,Color\r\n")
        with path.open("a") as f:
            f.write(f"{epic_time(moment)},Recipe,{text},-16777216\r\n")

    def run(self) -> None:
        period, k = 1.0 / self.rate_hz, 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            now = datetime.now(UTC)
            folder = self.day(now)
            stamp = epic_time(now)
            for j, tag in enumerate(TAGS):
                path = folder / f"{tag}.txt"
                new = not path.exists()
                with path.open("a") as f:
                    if new:
                        f.write(f"'EPIC {tag} Log File\r\n\r\n'Date,{tag}\r\n")
                    f.write(f"{stamp},{500 + 100 * np.sin(k * 0.05 + j):.3f}\r\n")
            self.rows += len(TAGS)
            k += 1
            next_at += period
            self.stop.wait(max(0.0, next_at - time.monotonic()))


class Stack:
    """Tailer and dashboard processes over one home, stopped on exit."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("EPI_ML_", "DAGSTER_"))}
        self.env |= {"EPI_ML_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        epi_ml = str(Path(sys.executable).with_name("epi-ml"))
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # the tailer as `epi-ml serve` starts it
        self.tail = self._spawn([epi_ml, "tail", "--poll", str(LIVE_POLL_S)], logs / "tail.log")
        self.dash = self._spawn([sys.executable, "-m", "dashboard", "--port", str(self.port)], logs / "dash.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("the dashboard did not start")

    def _spawn(self, cmd: list[str], log: Path) -> subprocess.Popen:
        p = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.processes.append(p)
        return p

    def close(self) -> None:
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_for_live_run(engine, run_id: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(text("select 1 from growth_runs where id = :r and status = 'live'"), {"r": run_id}).first():
                return
        time.sleep(0.3)
    raise TimeoutError(f"run {run_id} never became live")


def store_latency(engine, tool: str, seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    """Baseline: a sample's time stamp to its being readable from the buffer (5 ms polls)."""
    out, last = [], None
    with engine.connect():
        pass
    from sqlalchemy import func, select

    from epi_ml.store import read_session
    from epi_ml.store.models import LiveSample

    with read_session(engine) as s:
        last = s.scalar(select(func.max(LiveSample.id))) or 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        new = read_samples(engine, tool_id=tool, after_id=last, channels=["RHEED.I"])
        now = datetime.now(UTC)
        if not new.is_empty():
            last = int(new.get_column("id").max())  # type: ignore[arg-type]
            out += [(now - t).total_seconds() for t in new.get_column("time").to_list()]
        time.sleep(0.005)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# Before the page's scripts: the size of every live-page update as the browser receives it, and
# when it was asked for and answered, with the newest RHEED point it carries (where the time goes).
SIZES_JS = """
window.__sizes = []; window.__updates = [];
const fetch0 = window.fetch;
window.fetch = async (...args) => {
  const sent = Date.now();
  const response = await fetch0(...args);
  const answered = Date.now();
  if (String(args[0]).includes('_dash-update-component')) {
    response.clone().text().then(t => {
      if (!t.includes('live-state')) return;
      window.__sizes.push(t.length);
      let newest = null;
      try {
        const e = (JSON.parse(t).response['%(graph)s'] || {}).extendData;
        if (e) { const x = e[0].x[0]; newest = x[x.length - 1]; }
      } catch (err) {}
      window.__updates.push([sent, answered, newest]);
    });
  }
  return response;
};
""" % {"graph": PROBE_GRAPH}


def measure_page(browser, url: str, tool: str, seconds: float, server, stack: Stack,
                 interval_ms: int | None = None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """One session on the Live page: latencies of drawn samples, the sizes of its updates, and
    the server's CPU per update (from the first draw on: the page's opening is not an update)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(SIZES_JS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/live?tool={tool}" + (f"&interval_ms={interval_ms}" if interval_ms else ""))
    page.wait_for_function(
        f"() => {{ const g = document.querySelector('#{PROBE_GRAPH} .js-plotly-plot');"
        " return g && g.data && g.data.length && g.data[0].x.length > 0; }",
        timeout=60_000,
    )
    page.wait_for_timeout(2000)  # past the first draw (the snapshot)
    page.evaluate(PROBE_JS, PROBE_GRAPH)
    page.evaluate(PROBE_JS, SLOW_PROBE_GRAPH)
    first = page.evaluate("() => window.__sizes.length")
    cpu0, served0 = server.cpu_times(), _served(stack)
    page.wait_for_timeout(seconds * 1000)  # (Playwright delivers events while it waits)
    cpu1, served1 = server.cpu_times(), _served(stack)
    drawn = page.evaluate("() => window.__lat")
    latencies = [v / 1000 for v in drawn[PROBE_GRAPH]]
    slow_latencies = [v / 1000 for v in drawn.get(SLOW_PROBE_GRAPH, [])]
    sizes = page.evaluate("() => window.__sizes")[first:]
    parts = time_parts(page.evaluate("() => window.__updates")[first:],
                       page.evaluate(f"() => window.__drawnAt['{PROBE_GRAPH}']"))  # fmt: skip
    context.close()
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {"latencies": latencies, "slow_latencies": slow_latencies, "sizes": sizes, "errors": errors,
            "cpu_ms_per_update": 1000 * cpu_s / max(1, served1 - served0), "parts": parts}  # fmt: skip


def time_parts(updates: list[list[float | None]], drawn_at: dict[str, float]) -> dict[str, list[float]]:
    """Where the newest RHEED sample of each update spent its time (s): from its time stamp to the
    request that fetched it (the store's part and the wait for the next tick), the request to the
    response (the server), the response to the frame that has it drawn (the browser)."""
    drawn = {float(x): t for x, t in drawn_at.items()}
    parts: dict[str, list[float]] = {"to request": [], "server": [], "browser": []}
    for sent, answered, newest in updates:
        if newest is None or float(newest) not in drawn:
            continue
        parts["to request"].append((sent - newest) / 1000)  # type: ignore[operator]
        parts["server"].append((answered - sent) / 1000)  # type: ignore[operator]
        parts["browser"].append((drawn[float(newest)] - answered) / 1000)  # type: ignore[operator]
    return parts


def prefill(engine, tool: str, run_id: str, hours: float, start: datetime) -> int:  # type: ignore[no-untyped-def]
    """The buffer of a run that has grown `hours` already: 64 channels at 1 Hz."""
    from epi_ml.readers.naming import map_tags
    from epi_ml.ingest.tools import ToolConfig

    names = map_tags(TAGS, ToolConfig().tag_mapping(), file=None, map_name="bench").channels
    seconds = int(hours * 3600)
    total = 0
    for chunk in range(0, seconds, 600):
        times = [start + timedelta(seconds=s) for s in range(chunk, min(seconds, chunk + 600))]
        rows = [
            {"tool_id": tool, "run_id": run_id, "channel": names[tag], "time": t, "value": 500.0 + j}
            for t in times
            for j, tag in enumerate(TAGS)
        ]
        total += append_samples(engine, rows)
    return total


def run(args: argparse.Namespace) -> str:
    from playwright.sync_api import sync_playwright

    import psutil

    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    home = work / "home"
    home.mkdir()
    url_db = f"sqlite:///{home / 'epi-ml.db'}"
    upgrade(url_db)
    engine = engine_for(url_db)
    landing = home / "landing"
    stack = Stack(home)
    results: dict[str, dict[str, object]] = {}
    soak: dict[str, object] = {}
    try:
        stack.start()
        server = psutil.Process(stack.dash.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            phases = [("1 Hz, new run", 1.0, 0.0), ("10 Hz, new run", 10.0, 0.0), ("1 Hz, after 6 h", 1.0, 6.0)]
            for label, rate, history_h in phases[: 2 if args.quick else 3]:
                tool = f"{TOOL}{len(results) + 1}"
                run_id = f"{tool}-{datetime.now(UTC):%Y%m%d}-01"
                logger = Logger(landing, rate, tool)
                start = datetime.now(UTC) - timedelta(hours=history_h, seconds=2)
                logger.message(start, f"Run {run_id} start recipe=bench operator=bench wafer=W{len(results)}")
                if history_h:
                    prefill(engine, tool, run_id, history_h, start)
                logger.start()
                wait_for_live_run(engine, run_id)
                baseline = store_latency(engine, tool, 10.0)
                page = measure_page(browser, stack.url, tool, args.window_s, server, stack, args.interval_ms)
                logger.stop.set()
                logger.join()
                logger.message(datetime.now(UTC), f"Run {run_id} end")
                results[label] = page | {"baseline": baseline, "rate": rate}
                time.sleep(2)
            if args.soak_s > 0:
                soak = run_soak(browser, stack, server, engine, landing, args)
            browser.close()
    finally:
        stack.close()
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return report(results, soak, args)


def _served(stack: Stack) -> int:
    """Live-page updates the dashboard has answered (its request log)."""
    log = stack.home / "logs" / "dash.log"
    return sum(1 for line in log.read_text(errors="replace").splitlines() if "_dash-update-component" in line)


def run_soak(browser, stack: Stack, server, engine, landing: Path, args: argparse.Namespace) -> dict[str, object]:  # type: ignore[no-untyped-def]
    tool = f"{TOOL}9"
    run_id = f"{tool}-{datetime.now(UTC):%Y%m%d}-01"
    logger = Logger(landing, 1.0, tool)
    logger.message(datetime.now(UTC), f"Run {run_id} start recipe=bench operator=bench wafer=SOAK")
    logger.start()
    wait_for_live_run(engine, run_id)
    contexts, errors = [], []
    for _ in range(args.sessions):
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{stack.url}/live?tool={tool}")
        contexts.append((context, page))
    rss, response_s, advancing = [], [], []
    began = time.monotonic()
    while time.monotonic() - began < args.soak_s:
        rss.append((time.monotonic() - began, server.memory_info().rss / 2**20))
        t0 = time.perf_counter()
        urllib.request.urlopen(stack.url + "/live", timeout=30).read()
        response_s.append(time.perf_counter() - t0)
        contexts[0][1].wait_for_timeout(10_000)  # (Playwright delivers console events meanwhile)
    for _, page in contexts:
        text = page.inner_text("#live-points") if page.query_selector("#live-points") else ""
        advancing.append(int("".join(c for c in text if c.isdigit()) or 0))
    for context, _ in contexts:
        context.close()
    logger.stop.set()
    logger.join()
    logger.message(datetime.now(UTC), f"Run {run_id} end")
    minute = [m for t, m in rss if t <= 60] or [rss[0][1]]
    last = [m for t, m in rss if t >= args.soak_s - 60] or [rss[-1][1]]
    return {
        "sessions": args.sessions,
        "seconds": args.soak_s,
        "rss_first_min_mb": statistics.mean(minute),
        "rss_last_min_mb": statistics.mean(last),
        "rss_max_mb": max(m for _, m in rss),
        "response_p50_s": pct(response_s, 50),
        "response_p95_s": pct(response_s, 95),
        "points_per_session_min": min(advancing) if advancing else 0,
        "errors": errors,
    }


def report(results: dict[str, dict[str, object]], soak: dict[str, object], args: argparse.Namespace) -> str:
    lines = [
        "## Live dashboard in a browser (bench_dashboard)",
        "",
        f"{CHANNELS} channels written as EPIC logs (open/append/close per row, wall-clock stamps) -> "
        f"`epi-ml tail --poll {LIVE_POLL_S}` (SQLite, as `epi-ml serve` runs it) -> `python -m dashboard` (Live page, {args.interval_ms or 'default 250'} ms tick) -> headless "
        f"Chromium. {args.window_s:.0f} s measured per row, one session. Latency: sample time stamp "
        "to the animation frame that has it in the RHEED trace (every sample) and in the first cell-temperature trace (a slow channel, at most 2 Hz on screen); baseline: the same samples readable "
        "in the store (5 ms polls). Target: p95 <= 1 s.",
        "",
        "| run | samples drawn | latency p50 | p95 | slow channel (a cell T, 2 Hz on screen) p50 / p95 | "
        "store-only p50 / p95 (baseline) | bytes/update median (max) | server CPU per update | console errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        lat, base, sizes = r["latencies"], r["baseline"], r["sizes"]  # type: ignore[assignment]
        slow = r["slow_latencies"]
        lines.append(
            f"| {label} | {len(lat)} | {pct(lat, 50):.2f} s | {pct(lat, 95):.2f} s | "  # type: ignore[arg-type]
            f"{pct(slow, 50):.2f} / {pct(slow, 95):.2f} s ({len(slow)}) | "  # type: ignore[arg-type]
            f"{pct(base, 50):.2f} / {pct(base, 95):.2f} s | "  # type: ignore[arg-type]
            f"{statistics.median(sizes) if sizes else 0:,.0f} ({max(sizes) if sizes else 0:,}) | "  # type: ignore[arg-type]
            f"{r['cpu_ms_per_update']:.1f} ms | {len(r['errors'])} |"  # type: ignore[arg-type]
        )
    lines += [
        "",
        "Where the time goes: the newest RHEED sample of each update, from its time stamp to the "
        "request that fetched it (the store's part, then the wait for the next tick), the request to "
        "the response (the server), the response to the frame that has it drawn (the browser: Dash "
        "and Plotly redrawing every figure the update extends).",
        "",
        "| run | updates | to request p50 / p95 | server p50 / p95 | browser p50 / p95 |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in results.items():
        parts = r["parts"]  # type: ignore[assignment]
        cells = " | ".join(f"{pct(parts[k], 50):.2f} / {pct(parts[k], 95):.2f} s"  # type: ignore[index]
                           for k in ("to request", "server", "browser"))  # fmt: skip
        lines.append(f"| {label} | {len(parts['server'])} | {cells} |")  # type: ignore[index]
    new, old = results.get("1 Hz, new run"), results.get("1 Hz, after 6 h")
    if new and old and new["sizes"] and old["sizes"]:
        ratio = statistics.median(old["sizes"]) / statistics.median(new["sizes"])  # type: ignore[arg-type]
        lines += ["", f"Bytes per update after 6 h / at the start (1 Hz): {ratio:.2f}x (must stay ~1)."]
    if soak:
        lines += [
            "",
            f"Soak: {soak['sessions']} sessions on one live run (64 ch, 1 Hz) for {soak['seconds']:.0f} s. "
            f"Server RSS first minute {soak['rss_first_min_mb']:.0f} MB, last minute "
            f"{soak['rss_last_min_mb']:.0f} MB (max {soak['rss_max_mb']:.0f} MB); a page request "
            f"every 10 s answered in p50 {soak['response_p50_s']:.2f} s, p95 {soak['response_p95_s']:.2f} s; "
            f"every session still advancing at the end (fewest points drawn: {soak['points_per_session_min']:,}); "
            f"console errors: {len(soak['errors'])}.",  # type: ignore[arg-type]
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--window-s", type=float, default=60.0, help="seconds measured per rate")
    parser.add_argument("--soak-s", type=float, default=600.0, help="soak duration (0: no soak)")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="skip the 6-hour run (a quick comparison)")
    parser.add_argument("--interval-ms", type=int, default=None, help="the Live page's tick (default: its own)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"error: no Chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2
    text = run(args)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_dashboard.md").write_text(text + "\n")
    print(json.dumps({"done": True}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
