"""Live mode: grow one run in real time (or `speed` times faster), appending to the tool's log
files as its logger does, so that a live ingester and the dashboard see a run in progress.

The run is simulated up front (the physics is vectorised); what is live is the writing: every tick
the samples whose time has come are appended to the day files and the files are closed (flushed).
Timestamps are the run's own clock: it starts now (or at `start`) and advances `speed` times faster
than the wall clock. A run sped up ends in the future; the next one on that tool starts after it
(the tool's clock is kept in <out>/<tool>/live-clock.json), since one tool grows one run at a time
and overlapping runs in its logs would make no sense to a reader. Stopping (Ctrl-C, or `stop` set) writes `Run <id> aborted` and leaves every
file complete up to that moment.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from epi_ml.twin.campaign import FAULT_RATE, clean_json, run_truth
from epi_ml.twin.measurements import measure_run
from epi_ml.twin.recipe import Recipe, load_recipe
from epi_ml.twin.run import RunTrace
from epi_ml.twin.single import as_utc, grow_one_run, tool_index
from epi_ml.twin.state import ToolState
from epi_ml.twin.writers import RunWriter, append_measurements, make_writer, write_calibration


CLOCK_FILE = "live-clock.json"
RUN_GAP = timedelta(minutes=2)  # between a run sped up into the future and the next one


@dataclass(frozen=True)
class LiveProgress:
    run_id: str
    sim_s: float  # run time written so far
    duration_s: float
    step: str  # what the tool is doing
    readings: dict[str, float]  # latest values of a few channels
    done: bool = False
    aborted: bool = False


def tool_clock(out_tool: Path) -> datetime | None:
    """Where the twin's clock of a tool stands: the end of its last live run (None: never ran)."""
    try:
        return as_utc(datetime.fromisoformat(json.loads((out_tool / CLOCK_FILE).read_text())["until"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _set_tool_clock(out_tool: Path, run_id: str, until: datetime) -> None:
    out_tool.mkdir(parents=True, exist_ok=True)
    (out_tool / CLOCK_FILE).write_text(json.dumps({"run_id": run_id, "until": until.isoformat()}) + "\n")


def run_start(out_tool: Path, start: datetime | None) -> datetime:
    """`start`, else now, or RUN_GAP after the tool's last live run if that one, sped up, ended
    later than now."""
    if start is not None:
        return as_utc(start)
    now, clock = datetime.now(UTC), tool_clock(out_tool)
    return max(now, clock + RUN_GAP) if clock is not None else now


def next_run_id(out: Path, tool: str, day: datetime) -> str:
    """`<tool>-<YYYYMMDD>-<seq>`, after the runs already logged that day."""
    seq = 0
    pattern = re.compile(rf"Run {re.escape(tool)}-{day:%Y%m%d}-(\d+) start")
    messages = out / tool / "logs" / f"{day:%Y_%m_%d}" / "Messages.txt"
    if messages.exists():
        seq = max(
            (int(m.group(1)) for m in pattern.finditer(messages.read_text(errors="replace"))),
            default=0,
        )
    for path in (out / tool / "recipes").glob(f"{tool}-{day:%Y%m%d}-*.yaml"):
        seq = max(seq, int(path.stem.rsplit("-", 1)[1]))
    return f"{tool}-{day:%Y%m%d}-{seq + 1:02d}"


def _step_at(trace: RunTrace, t: float) -> str:
    for name, (t0, t1) in trace.plan.phases.items():
        if name in ("flux_check", "deox") and t0 <= t < t1:
            return name.replace("_", " ")
    for step in trace.plan.steps:
        if step.start_s <= t < step.end_s:
            what = "interrupt" if step.kind == "interrupt" else f"{step.material}"
            return f"layer {step.index}/{len(trace.plan.steps)} {what}"
    growth = trace.plan.phases["growth"]
    return "ramp up" if t < growth[0] else ("cool down" if t > growth[1] else "between layers")


def _readings(trace: RunTrace, t: float) -> dict[str, float]:
    i = max(0, int(np.searchsorted(trace.log_t, t)) - 1)
    out = {}
    for name in ("Ga.T", "sub.T", "As.valve", "P.chamber"):
        out[name] = float(trace.values[name][i])
    j = max(0, int(np.searchsorted(trace.rheed_t, t)) - 1)
    out["RHEED.I"] = float(trace.rheed[j])
    return out


def live_run(
    out: Path | str,
    tool: str = "MBE1",
    recipe: str | Path | Recipe = "hemt_algaas_gaas",
    speed: float = 1.0,
    seed: int = 0,
    fmt: str = "epic",
    start: datetime | None = None,
    fault_rate: float = FAULT_RATE,
    stop: threading.Event | None = None,
    on_progress: Callable[[LiveProgress], None] | None = None,
    tick_s: float = 0.25,
    progress_every_s: float = 2.0,
) -> LiveProgress:
    """Grow one run live. Returns the last progress (done, or aborted by Ctrl-C / `stop`)."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    if fmt not in ("epic", "csv"):
        raise ValueError("live mode appends to epic or csv files (Parquet cannot be appended)")
    out = Path(out)
    the_recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    begin = run_start(out / tool, start)
    begin = begin.replace(microsecond=begin.microsecond // 1000 * 1000)
    grown = grow_one_run(
        the_recipe, tool, seed, begin, next_run_id(out, tool, begin), fault_rate=fault_rate
    )
    state, trace = grown.state, grown.trace
    for scan in grown.scans:
        write_calibration(out / tool, scan)
    writer = make_writer(fmt, out / tool)
    writer.begin_run(trace, state)
    # the whole run's time is taken now: a run killed midway leaves no gap the next one could fill
    _set_tool_clock(out / tool, trace.run_id, begin + timedelta(seconds=trace.plan.duration_s))
    recipe_path = out / tool / "recipes" / f"{trace.run_id}.yaml"
    recipe_path.parent.mkdir(parents=True, exist_ok=True)
    recipe_path.write_text(the_recipe.to_yaml())

    duration = trace.plan.duration_s
    end = duration + 1.0
    written = -np.inf  # run time up to which everything is on disk
    wall0 = time.monotonic()
    last_report = -np.inf
    aborted = False
    try:
        while written < end:
            if stop is not None and stop.is_set():
                aborted = True
                break
            now = min((time.monotonic() - wall0) * speed, end)
            if now > written:
                writer.write_window(trace, written, now)
                written = now
            if on_progress and (time.monotonic() - last_report >= progress_every_s):
                last_report = time.monotonic()
                at = max(written, 0.0)
                on_progress(
                    LiveProgress(
                        trace.run_id,
                        min(at, duration),
                        duration,
                        _step_at(trace, at),
                        _readings(trace, at),
                    )
                )
            if written < end:
                time.sleep(tick_s)
    except KeyboardInterrupt:
        aborted = True
    if aborted:
        at = max(written, 0.0)
        _write_abort(writer, trace, at)
        _set_tool_clock(out / tool, trace.run_id, begin + timedelta(seconds=at))
        progress = LiveProgress(
            trace.run_id, at, duration, _step_at(trace, at), _readings(trace, at), aborted=True
        )
    else:
        writer.end_run(trace)
        _finish(out, tool, trace, state, the_recipe, seed)
        progress = LiveProgress(
            trace.run_id, duration, duration, "done", _readings(trace, duration), done=True
        )
    if on_progress:
        on_progress(progress)
    return progress


def _write_abort(writer: RunWriter, trace: RunTrace, at: float) -> None:
    writer.write_message(trace, at, "Recipe", f"Run {trace.run_id} aborted")


def _finish(
    out: Path, tool: str, trace: RunTrace, state: ToolState, recipe: Recipe, seed: int
) -> None:
    """After the run: the lab's measurements and the run's ground truth."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 17, tool_index(tool)]))
    measurements = measure_run(trace.run_id, trace.layers, trace.end, rng)
    iso = trace.start.isocalendar()
    append_measurements(
        out / "measurements" / f"{tool}_{iso.year}-W{iso.week:02d}.csv", measurements
    )
    truth = run_truth(trace, state, recipe, trace.plan.operator.name)
    truth["fault_details"] = [f.truth(trace.run_id, tool, trace.start) for f in trace.faults]
    path = out / tool / "truth" / f"{trace.run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean_json(truth), indent=1) + "\n")
