"""Did each group-III shutter physically open? The cell's heat load says, whatever the log says.

    evidence = shutter_evidence(sensors, [(start, end), ...])   # one (start, end) per layer
    evidence.estimates      # per layer and cell commanded open: the share physically open
    evidence.late_closes    # commanded closes after which the cell kept drawing open power
    evidence.open_seconds(i, "Ga")   # seconds the Ga shutter was physically open in window i

The shutter log records what was *commanded*: a shutter that sticks still logs "open". The cell
does not lie. A closed shutter sits just in front of the crucible's mouth and reflects part of
its radiation back into it (the heat balance behind the flux overshoot and thermocouple dip of an
opening shutter, docs/twin.md); while the shutter is really open that heat escapes and the
temperature controller needs more heater power to hold the set point: a known signature of an
effusion cell's shutter state, tool-specific in size. The twin models it as +0.8 % of the
controller output (`epi_ml.twin.run.OPEN_SHUTTER_POWER`, an assumed value).

Per group-III cell that logs `<cell>.power`, `<cell>.T_set` and `<cell>.shutter`:

- **Steady samples**: at least GUARD_S after the cell's last logged shutter edge (the opening
  dip and the controller's answer to it, a few % of power for seconds, have settled: 12 s time
  constant in the twin), SETTLE_S after its set point last moved (a ramp's heating power), the
  cell hot (`active_cell_min_T`: an idle cell's heat load is nil). They form *segments*: runs of
  steady closed samples, and each window's steady open samples.
- **Step**: the cell's open-shutter power step in this run, measured where a closed segment and
  an open window are neighbours (minutes apart: no drift in it); else the windows' steps above
  the closed level; else NOMINAL_STEP_PCT.
- **Tracking** (`_track`): along the segments in time order, each neighbour's power step over the
  step is a change of physical state; chained forward from closed segments and backward to them.
  A window's *local* share open comes from it. A segment logged closed that the chain finds open
  is a shutter open while the log says closed (a close far too late): its samples are no closed
  level, and it is reported as a late close.
- A window's **share open** against the **closed level** at its set point (the nearest steady
  closed samples before and after, interpolated in time) and its **local** share; a verdict
  (stuck: under STUCK_FRACTION; partly open: under PARTLY_FRACTION; both by SIGMAS standard
  errors) needs both where both exist, and none is given where the references contradict each
  other. A window too short for steady samples that stands alone (closed around it) is judged by
  its **heat**: ∫(power − closed level) from its opening to HEAT_TAIL_S after its close, where
  the opening's dip and the closing's bump cancel.
- A **late close**: after a close that ends a steady opening, the excess power in the next
  LATE_WINDOW_S, with the mirror transient of the opening added so that both cancel; after a
  lone short opening, its heat beyond the logged seconds; a segment logged closed that the
  tracking finds open (a floor: open at least through it).

A cell none of whose windows shows the heat load (a tool whose power does not show it, or a
shutter stuck every time: nothing tells the two apart) gets no verdict. Windows that cannot be
judged get None and nothing is concluded about them. Measured on the twin: docs/features.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from epi_ml.channels import GROUP_III

GUARD_S = 60.0  # the shutter transient (dip, controller answer) has settled this long after an edge
SETTLE_S = 90.0  # and a set-point ramp's heating power this long after the set point last moved
SETPOINT_TOLERANCE_C = 0.05  # set points this close are the same set point
# Neighbours and closed levels may be at a set point this close (0.1 °C apart is common between
# layers of one rate): ~0.1 %/°C of power, so at most ~0.05 % off, 6 % of the open-shutter step.
REFERENCE_TOLERANCE_C = 0.5
MIN_STEADY_SAMPLES = 10  # a segment needs this many steady samples
REFERENCE_SAMPLES = 120  # closed samples on each side that set a window's closed level
LOCAL_SAMPLES = 120  # a segment's head and tail: its first and last this many samples
SEGMENT_GAP_S = 10.0  # steady closed samples further apart are separate segments
CHAIN_GAP_S = 900.0  # neighbours further apart than this are not compared
NOMINAL_STEP_PCT = 0.8  # open-shutter power step where the run cannot measure its own (the twin's)
STEP_RANGE = (0.5, 2.0)  # the run's own step is trusted within this factor of the nominal
LOOKS_OPEN = 0.4  # a step above this x nominal looks open (it measures the run's step)
CONSISTENT = 0.5  # references disagreeing by more than this x the step give no verdict
HEAT_TAIL_S = 90.0  # a lone opening's heat is integrated to this long after its close
LATE_WINDOW_S = 60.0  # seconds after a close in which a late close is measured
EDGE_S = 2.0  # logged edges this close to a window's bounds belong to it
# Verdicts: a shortfall must also be SIGMAS standard errors, so noise never makes a finding.
STUCK_FRACTION = 0.5  # open less than half the window: the layer did not grow as logged
PARTLY_FRACTION = 0.7  # open less than this: part of the layer did not grow
SIGMAS = 5.0
ZERO_SIGMAS = 3.0  # a stuck shutter's estimate this close to 0 counts as not open at all
LATE_MIN_S = 10.0  # a close this late or later is reported
LATE_SIGMAS = 5.0
ACTIVE_CELL_MIN_T = 400.0  # as Limits.active_cell_min_T: a colder cell is idle


@dataclass(frozen=True)
class OpenEstimate:
    """One window and one cell whose shutter was logged open in it: the share of that time it
    was physically open, against the closed level (`open_fraction`) and from its neighbours'
    power steps (`local_fraction`). None: not judged."""

    window: int  # position in the windows given
    cell: str
    commanded_open_s: float  # seconds the log has the shutter open inside the window
    open_fraction: float | None
    sigma: float | None  # its standard error
    steady_samples: int
    power_step_pct: float | None  # mean steady power above the closed level
    reference_s: float | None  # how far (s) the closed level's samples are from the window
    local_fraction: float | None = None
    local_sigma: float | None = None
    signature: bool = True  # the cell showed its open-shutter heat load somewhere in the run
    inconsistent: bool = False  # the references contradict each other: no verdict

    @property
    def stuck(self) -> bool:
        """Open for less than STUCK_FRACTION of the window, beyond noise, by every estimate."""
        return self._short_of(STUCK_FRACTION)

    @property
    def partly_open(self) -> bool:
        return not self.stuck and self._short_of(PARTLY_FRACTION)

    @property
    def fraction(self) -> float | None:
        """The best estimate: the mean of the two where both exist."""
        if self.open_fraction is None:
            return None
        found = [f for f in (self.open_fraction, self.local_fraction) if f is not None]
        return float(np.mean(found))

    @property
    def physical_fraction(self) -> float:
        """The share of the logged time the features count: 1 unless a stuck or partly open
        shutter was found; a stuck one within ZERO_SIGMAS of nothing did not open at all."""
        fraction = self.fraction
        if fraction is None or not (self.stuck or self.partly_open):
            return 1.0
        if self.stuck and fraction <= ZERO_SIGMAS * (self.sigma or 0.0):
            return 0.0
        return min(1.0, max(0.0, fraction))

    def _short_of(self, fraction: float) -> bool:
        if self.open_fraction is None or self.sigma is None:
            return False
        if not self.signature or self.inconsistent:
            return False
        pairs = [(self.open_fraction, self.sigma), (self.local_fraction, self.local_sigma)]
        return all(
            f < fraction and 1.0 - f >= SIGMAS * s
            for f, s in pairs
            if f is not None and s is not None
        )


@dataclass(frozen=True)
class LateClose:
    """A commanded close after which the cell kept drawing open-shutter power."""

    cell: str
    closed_at: datetime  # the commanded close
    seconds: float  # estimated time the shutter stayed open after it
    sigma: float
    window: int | None  # the window the close ended (None: outside every window)
    at_least: bool = False  # open through a whole segment logged closed: `seconds` is a floor

    @property
    def reported(self) -> bool:
        return self.seconds >= LATE_MIN_S and self.seconds >= LATE_SIGMAS * self.sigma


@dataclass
class ShutterEvidence:
    windows: list[tuple[datetime, datetime]]
    estimates: list[OpenEstimate] = field(default_factory=list)
    late_closes: list[LateClose] = field(default_factory=list)  # only the reported ones
    power_step_pct: dict[str, float] = field(default_factory=dict)  # the step used, per cell

    def estimate(self, window: int, cell: str) -> OpenEstimate | None:
        return next((e for e in self.estimates if e.window == window and e.cell == cell), None)

    def open_seconds(self, window: int, cell: str) -> float:
        """Seconds the cell's shutter was physically open in the window: the logged time, scaled
        by the share found open where a stuck or partly open shutter was found, plus a late
        close's seconds where they fall in the window (or, where they fall in no window, in the
        window whose close it was: what grew then belongs to that layer)."""
        start, end = self.windows[window]
        found = self.estimate(window, cell)
        seconds = 0.0 if found is None else found.commanded_open_s * found.physical_fraction
        for late in self.late_closes:
            if late.cell != cell:
                continue
            a, b = late.closed_at, late.closed_at + timedelta(seconds=late.seconds)
            seconds += _overlap_s(a, b, start, end)
            if late.window == window:
                seconds += late.seconds - sum(_overlap_s(a, b, s, e) for s, e in self.windows)
        return seconds

    def changed(self, window: int, cell: str) -> bool:
        """Whether anything found changes the cell's open time in the window."""
        found = self.estimate(window, cell)
        if found is not None and found.physical_fraction != 1.0:
            return True
        return any(late.cell == cell for late in self.late_closes)


def shutter_evidence(
    sensors: pl.DataFrame,
    windows: Sequence[tuple[datetime, datetime]],
    *,
    active_cell_min_t: float = ACTIVE_CELL_MIN_T,
) -> ShutterEvidence:
    """The share physically open of every (window, group-III cell logged open in it) and the late
    closes of the run, from a canonical sensor table (time, channel, value)."""
    evidence = ShutterEvidence(windows=list(windows))
    if sensors.is_empty() or not windows:
        return evidence
    finite = sensors.filter(pl.col("value").is_finite() & pl.col("time").is_not_null())
    if finite.is_empty():
        return evidence
    origin = finite.get_column("time").min()
    assert isinstance(origin, datetime)
    spans = np.array([[_s(a, origin), _s(b, origin)] for a, b in windows], dtype=float)
    channels = set(finite.get_column("channel").unique().to_list())
    for cell in GROUP_III:
        names = (f"{cell}.power", f"{cell}.T_set", f"{cell}.shutter")
        if set(names) <= channels:
            series = {n: _series(finite, n, origin) for n in names}
            _cell_evidence(evidence, cell, series, spans, origin, active_cell_min_t)
    return evidence


# ---------------------------------------------------------------------------------------------
@dataclass
class _Cell:
    t: np.ndarray  # power sample times, s from the origin
    power: np.ndarray
    setpoint: np.ndarray  # set point in force at each power sample (nan: not yet known)
    commanded: np.ndarray  # logged shutter state at each power sample (nan: not yet known)
    steady: np.ndarray  # bool
    opens: np.ndarray  # logged open intervals [opens, closes)
    closes: np.ndarray
    setpoint_changes: np.ndarray  # times the set point moved
    noise: float  # power noise, rms per sample
    closed_ok: np.ndarray  # steady closed samples that may set a closed level (bool)


@dataclass(frozen=True)
class _Segment:
    """A run of steady samples in one logged state: closed, or open in one window."""

    window: int | None  # None: logged closed
    rows: np.ndarray  # indices into the cell's samples
    setpoint: float
    head_t: float
    head: float  # mean power of its first LOCAL_SAMPLES samples
    head_n: int
    tail_t: float
    tail: float  # and of its last
    tail_n: int


@dataclass(frozen=True)
class _Window:
    index: int
    commanded_s: float
    samples: int  # steady open samples
    level: float | None = None  # their set point
    step: float | None = None  # their mean power above the closed level
    sigma: float | None = None  # of `step`
    distance: float | None = None  # of the closed reference
    spread: float = 0.0  # closed level after − before, where both exist


def _cell_evidence(
    evidence: ShutterEvidence,
    cell: str,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    spans: np.ndarray,
    origin: datetime,
    active_cell_min_t: float,
) -> None:
    data = _prepare(cell, series, active_cell_min_t)
    if data is None:
        return
    logged = {i: _commanded_seconds(data, a, b) for i, (a, b) in enumerate(spans)}
    logged = {i: s for i, s in logged.items() if s > 0}
    segments = _segments(data, spans, logged)
    looks = LOOKS_OPEN * NOMINAL_STEP_PCT
    step = _step([d for d in _edge_steps(segments, set()) if d > looks], [])
    # track twice: the second time with the step measured without the segments found open
    ahead, behind, found_open = _track_both(segments, step, data.noise)
    local_steps = [d for d in _edge_steps(segments, found_open) if d > looks]
    data.closed_ok = data.steady & (data.commanded == 0.0)
    for k in found_open:
        data.closed_ok[segments[k].rows] = False
    windows = [_window_step(data, i, s, *spans[i]) for i, s in logged.items()]
    absolute = [w.step for w in windows if w.step is not None and w.step > looks]
    step = _step(local_steps, absolute)
    ahead, behind, found_open = _track_both(segments, step, data.noise)
    isolated = _isolated_openings(data)
    # A cell none of whose windows looks open: stuck every time, or a tool whose power does not
    # show the heat load at all. Nothing tells the two apart, so nothing is concluded.
    signature = bool(local_steps or absolute) or any(e > looks * (c - o) for o, c, e, _ in isolated)
    evidence.power_step_pct[cell] = step
    by_window = {seg.window: k for k, seg in enumerate(segments) if seg.window is not None}
    for w in windows:
        fraction = None if w.step is None else w.step / step
        sigma = None if w.sigma is None else w.sigma / step
        if fraction is None:  # no steady samples: its heat, when it stands alone
            a, b = spans[w.index]
            alone = [x for x in isolated if x[0] >= a - EDGE_S and x[1] <= b + EDGE_S]
            if len(alone) == 1:
                o, c, heat, heat_sigma = alone[0]
                fraction, sigma = heat / step / (c - o), heat_sigma / step / (c - o)
        local, local_sigma, disagree = _combine(ahead, behind, by_window.get(w.index))
        evidence.estimates.append(
            OpenEstimate(
                window=w.index,
                cell=cell,
                commanded_open_s=w.commanded_s,
                open_fraction=fraction,
                sigma=sigma,
                steady_samples=w.samples,
                power_step_pct=w.step,
                reference_s=w.distance,
                local_fraction=local,
                local_sigma=local_sigma,
                signature=signature,
                inconsistent=disagree or abs(w.spread) > CONSISTENT * step,
            )
        )
    if not signature:
        return
    lates = [(c, s, sigma, s >= LATE_WINDOW_S) for c, s, sigma in _late_closes(data, step)]
    # a lone opening whose heat holds more seconds than were logged: it closed that much later
    measured = {c for c, *_ in lates}
    for o, c, heat, heat_sigma in isolated:
        if c not in measured:
            extra = min(heat / step - (c - o), HEAT_TAIL_S)
            at_least = bool(extra >= HEAT_TAIL_S)
            lates.append((c, float(max(0.0, extra)), float(heat_sigma / step), at_least))
    lates += _open_while_closed(data, segments, found_open)
    for closed_at, seconds, sigma, at_least in sorted(lates):
        late = LateClose(
            cell=cell,
            closed_at=origin + timedelta(seconds=closed_at),
            seconds=seconds,
            sigma=sigma,
            window=_window_ending_at(spans, closed_at),
            at_least=at_least,
        )
        if late.reported:
            evidence.late_closes.append(late)


def _prepare(
    cell: str, series: dict[str, tuple[np.ndarray, np.ndarray]], active_cell_min_t: float
) -> _Cell | None:
    t, power = series[f"{cell}.power"]
    ts, setpoints = series[f"{cell}.T_set"]
    tsh, shutter = series[f"{cell}.shutter"]
    if len(t) < MIN_STEADY_SAMPLES or not len(ts) or not len(tsh):
        return None
    # the set point in force at each power sample, and when it last moved
    k = np.searchsorted(ts, t, side="right") - 1
    setpoint = np.where(k >= 0, setpoints[np.clip(k, 0, None)], np.nan)
    moved = np.abs(np.diff(setpoints)) > SETPOINT_TOLERANCE_C
    changes = np.concatenate([ts[:1], ts[1:][moved]])
    last_move = changes[np.clip(np.searchsorted(changes, t, side="right") - 1, 0, None)]
    # the logged shutter: its state at each power sample, its open intervals, its edges
    state = shutter >= 0.5
    change = np.concatenate([[True], state[1:] != state[:-1]])
    edges_t, edges_state = tsh[change], state[change]
    starts = edges_t[edges_state]
    ends = np.array([_next_after(edges_t[~edges_state], s, np.inf) for s in starts])
    j = np.searchsorted(edges_t, t, side="right") - 1
    commanded = np.where(j >= 0, edges_state[np.clip(j, 0, None)].astype(float), np.nan)
    real_edges = edges_t[1:]  # the first logged state is the state at the start, not an edge
    since_edge = np.full(len(t), np.inf)
    if len(real_edges):
        e = np.searchsorted(real_edges, t, side="right") - 1
        since_edge = np.where(e >= 0, t - real_edges[np.clip(e, 0, None)], np.inf)
    steady = (
        np.isfinite(setpoint)
        & np.isfinite(commanded)
        & (since_edge >= GUARD_S)
        & (t - last_move >= SETTLE_S)
        & (setpoint >= active_cell_min_t)
    )
    if steady.sum() < MIN_STEADY_SAMPLES:
        return None
    closed_ok = steady & (commanded == 0.0)
    return _Cell(t, power, setpoint, commanded, steady, starts, ends, changes[1:],
                 _noise(power, steady), closed_ok)  # fmt: skip


def _segments(data: _Cell, spans: np.ndarray, logged: dict[int, float]) -> list[_Segment]:
    """Steady closed runs (split at gaps and set-point changes) and each window's steady open
    samples at its set point, in time order."""
    out = []
    closed = np.flatnonzero(data.steady & (data.commanded == 0.0))
    if len(closed):
        breaks = (np.diff(data.t[closed]) > SEGMENT_GAP_S) | (
            np.abs(np.diff(data.setpoint[closed])) > SETPOINT_TOLERANCE_C
        )
        out += [_segment(data, run, None) for run in np.split(closed, np.flatnonzero(breaks) + 1)
                if len(run) >= MIN_STEADY_SAMPLES]  # fmt: skip
    for i in logged:
        rows = _open_rows(data, *spans[i])
        if rows is not None:
            out.append(_segment(data, rows, i))
    return sorted(out, key=lambda seg: seg.head_t)


def _open_rows(data: _Cell, a: float, b: float) -> np.ndarray | None:
    """The window's steady samples logged open, at its (median) set point."""
    inside = (data.t >= a) & (data.t < b) & data.steady & (data.commanded == 1.0)
    if inside.sum() < MIN_STEADY_SAMPLES:
        return None
    level = float(np.median(data.setpoint[inside]))
    rows = np.flatnonzero(inside & (np.abs(data.setpoint - level) <= SETPOINT_TOLERANCE_C))
    return rows if len(rows) >= MIN_STEADY_SAMPLES else None


def _segment(data: _Cell, rows: np.ndarray, window: int | None) -> _Segment:
    head, tail = rows[:LOCAL_SAMPLES], rows[-LOCAL_SAMPLES:]
    return _Segment(
        window, rows, float(np.median(data.setpoint[rows])),
        float(data.t[head].mean()), float(data.power[head].mean()), len(head),
        float(data.t[tail].mean()), float(data.power[tail].mean()), len(tail),
    )  # fmt: skip


def _neighbours(earlier: _Segment, later: _Segment) -> bool:
    return (
        later.head_t - earlier.tail_t <= CHAIN_GAP_S
        and abs(later.setpoint - earlier.setpoint) <= REFERENCE_TOLERANCE_C
    )


def _edge_steps(segments: list[_Segment], skip: set[int]) -> list[float]:
    """Power steps from a closed segment to the open window next to it (either side)."""
    steps = []
    for k in range(len(segments) - 1):
        a, b = segments[k], segments[k + 1]
        if (a.window is None) == (b.window is None) or k in skip or k + 1 in skip:
            continue
        if _neighbours(a, b):
            steps.append(b.head - a.tail if a.window is None else a.tail - b.head)
    return steps


def _step(local: list[float], absolute: list[float]) -> float:
    """The run's open-shutter step: from neighbours, else from the closed level (two windows or
    more), else the nominal; within STEP_RANGE of the nominal."""
    measured = local or (absolute if len(absolute) >= 2 else [])
    if not measured:
        return NOMINAL_STEP_PCT
    low, high = STEP_RANGE
    return float(np.clip(np.median(measured), low * NOMINAL_STEP_PCT, high * NOMINAL_STEP_PCT))


Tracked = dict[int, tuple[float, float]]  # segment -> (physical state 0..1, its variance)


def _track(
    segments: list[_Segment], step: float, noise: float, forward: bool
) -> tuple[Tracked, set[int]]:
    """The physical state of each segment from its neighbour's power step, chained from closed
    segments (taken as closed unless the chain says otherwise). Returns the open windows'
    states and the closed segments found open."""
    found: Tracked = {}
    open_while_closed: set[int] = set()
    order = range(len(segments)) if forward else range(len(segments) - 1, -1, -1)
    known: tuple[int, float, float] | None = None  # segment, its state, variance
    for k in order:
        seg = segments[k]
        linked = None
        if known is not None:
            prev = segments[known[0]]
            pair = (prev, seg) if forward else (seg, prev)
            if _neighbours(*pair):
                mine, theirs = (seg.head, prev.tail) if forward else (seg.tail, prev.head)
                n_mine, n_theirs = (
                    (seg.head_n, prev.tail_n) if forward else (seg.tail_n, prev.head_n)
                )
                linked = (
                    known[1] + (mine - theirs) / step,
                    known[2] + (noise / step) ** 2 * (1.0 / n_mine + 1.0 / n_theirs),
                )
        if seg.window is None:
            if linked is not None and linked[0] > CONSISTENT:
                open_while_closed.add(k)  # logged closed, physically open
                known = (k, *linked)
            else:
                known = (k, 0.0, 0.0)
        elif linked is not None:
            found[k] = linked
            known = (k, *linked)
        else:
            known = None  # the chain breaks: nothing after it is anchored until a closed segment
    return found, open_while_closed


def _track_both(
    segments: list[_Segment], step: float, noise: float
) -> tuple[Tracked, Tracked, set[int]]:
    ahead, open_a = _track(segments, step, noise, forward=True)
    behind, open_b = _track(segments, step, noise, forward=False)
    return ahead, behind, open_a | open_b


def _combine(
    ahead: Tracked, behind: Tracked, k: int | None
) -> tuple[float | None, float | None, bool]:
    """A window's local share open (inverse-variance mean of the two chains), its standard error,
    and whether the chains contradict each other."""
    if k is None:
        return None, None, False
    both = [x for x in (ahead.get(k), behind.get(k)) if x is not None]
    if not both:
        return None, None, False
    if len(both) == 2 and abs(both[0][0] - both[1][0]) > CONSISTENT:
        return None, None, True
    weights = [1.0 / max(var, 1e-12) for _, var in both]
    u = sum(w * f for w, (f, _) in zip(weights, both, strict=True)) / sum(weights)
    return float(u), float(np.sqrt(1.0 / sum(weights))), False


def _window_step(data: _Cell, index: int, commanded_s: float, a: float, b: float) -> _Window:
    """The window's steady open samples: how far above the closed level at their set point."""
    rows = _open_rows(data, a, b)
    if rows is None:
        return _Window(index, commanded_s, 0)
    level = float(np.median(data.setpoint[rows]))
    t_mid = float(data.t[rows].mean())
    closed = _closed_level(data, level, a, b, t_mid)
    if closed is None:
        return _Window(index, commanded_s, len(rows), level)
    reference, n_ref, distance, spread = closed
    sigma = data.noise * np.sqrt(1.0 / len(rows) + 1.0 / n_ref)
    step = float(data.power[rows].mean()) - reference
    return _Window(index, commanded_s, len(rows), level, step, float(sigma), distance, spread)


def _closed_level(
    data: _Cell, level: float, a: float, b: float, at: float
) -> tuple[float, int, float, float] | None:
    """(closed level at set point `level` at time `at`, samples, distance, after − before): from
    the nearest steady closed samples before `a` and after `b` at (nearly) that set point,
    linear in time between the two when both exist."""
    closed = data.closed_ok & (np.abs(data.setpoint - level) <= REFERENCE_TOLERANCE_C)
    before = np.flatnonzero(closed & (data.t < a))[-REFERENCE_SAMPLES:]
    after = np.flatnonzero(closed & (data.t >= b))[:REFERENCE_SAMPLES]
    sides = [s for s in (before, after) if len(s) >= MIN_STEADY_SAMPLES]
    if not sides:
        return None
    points = [(float(data.t[s].mean()), float(data.power[s].mean())) for s in sides]
    n_ref = sum(len(s) for s in sides)
    distance = min(abs(t - at) for t, _ in points)
    if len(points) == 1:
        return points[0][1], n_ref, distance, 0.0
    (t0, p0), (t1, p1) = points
    return p0 + (p1 - p0) * (at - t0) / (t1 - t0), n_ref, distance, p1 - p0


def _isolated_openings(data: _Cell) -> list[tuple[float, float, float, float]]:
    """(open, close, heat %·s, its standard error) of each logged opening that stands alone: the
    cell steady and closed up to it, closed at the same set point for HEAT_TAIL_S after it. The
    heat, ∫ (power − closed level) from the opening to HEAT_TAIL_S after the close, is the step
    × the seconds the shutter was physically open: the opening's dip and the closing's bump
    (the thermocouple at its set point at both ends) cancel in it."""
    out = []
    for o, c in zip(data.opens, data.closes, strict=True):
        end = c + HEAT_TAIL_S
        if not np.isfinite(c) or c <= o:
            continue
        reopen = _next_after(data.opens, c, np.inf)
        if reopen < end or _next_after(data.setpoint_changes, o - SETTLE_S, np.inf) <= end:
            continue
        before = np.flatnonzero((data.t < o) & data.closed_ok)
        if len(before) < MIN_STEADY_SAMPLES or o - data.t[before[-1]] > EDGE_S:
            continue  # the cell was not steady and closed right up to the opening
        closed = _closed_level(data, float(data.setpoint[before[-1]]), o, end, (o + end) / 2)
        n = int(((data.t > o) & (data.t < end)).sum())
        if closed is None or n < MIN_STEADY_SAMPLES:
            continue
        reference, n_ref, _, _ = closed
        span = end - o
        heat = _integral(data, o, end) - reference * span
        sigma = data.noise * span * np.sqrt(1.0 / n + 1.0 / n_ref)
        out.append((float(o), float(c), float(heat), float(sigma)))
    return out


def _late_closes(data: _Cell, step: float) -> list[tuple[float, float, float]]:
    """(logged close, seconds the cell stayed open after it, standard error) for every close that
    can be judged: an opening at least LATE_WINDOW_S + GUARD_S before it, LATE_WINDOW_S closed
    at the same set point after it.

    The excess power over the closed level in the LATE_WINDOW_S after the close holds, besides a
    late close, the closing transient (the thermocouple bump: the controller's heating power and
    the losses of a hotter cell). The opening's transient is its mirror image (a dip), so the
    shortfall below the open level in the LATE_WINDOW_S after the opening is added: the two
    transients cancel and what stays is the late close."""
    out = []
    for o, c in zip(data.opens, data.closes, strict=True):
        if not np.isfinite(c) or c - o < LATE_WINDOW_S + GUARD_S:
            continue
        reopen = _next_after(data.opens, c, np.inf)
        moves = _next_after(data.setpoint_changes, o - SETTLE_S, np.inf)
        if reopen - c < LATE_WINDOW_S or moves <= c + LATE_WINDOW_S:
            continue
        opening = (data.t > o) & (data.t <= o + LATE_WINDOW_S)
        closing = (data.t > c) & (data.t <= c + LATE_WINDOW_S)
        open_steady = (data.t >= o) & (data.t < c) & data.steady & (data.commanded == 1.0)
        counts = [int(m.sum()) for m in (opening, closing, open_steady)]
        if min(counts) < MIN_STEADY_SAMPLES:
            continue
        level = float(np.median(data.setpoint[open_steady]))
        closed = _closed_level(data, level, o, c + LATE_WINDOW_S, c)
        if closed is None:
            continue
        reference, n_ref, _, _ = closed
        open_level = float(data.power[open_steady].mean())
        excess = _integral(data, c, c + LATE_WINDOW_S) - reference * LATE_WINDOW_S
        excess += _integral(data, o, o + LATE_WINDOW_S) - open_level * LATE_WINDOW_S
        n_open, n_close, n_level = counts
        variance = 1.0 / n_open + 1.0 / n_close + 1.0 / n_level + 1.0 / n_ref
        sigma = data.noise * np.sqrt(variance) * LATE_WINDOW_S / step
        out.append((float(c), float(max(0.0, min(LATE_WINDOW_S, excess / step))), float(sigma)))
    return out


def _open_while_closed(
    data: _Cell, segments: list[_Segment], found_open: set[int]
) -> list[tuple[float, float, float, bool]]:
    """A closed segment the tracking found open: the shutter stayed open from the close before it
    at least to the segment's last sample (a floor of the late close)."""
    out = []
    for k in sorted(found_open):
        seg = segments[k]
        first = float(data.t[seg.rows[0]])
        k_close = np.searchsorted(data.closes, first, side="right") - 1
        if k_close < 0:
            continue
        closed_at = float(data.closes[k_close])
        seconds = float(data.t[seg.rows[-1]]) - closed_at
        if 0 < seconds and first - closed_at <= GUARD_S + SEGMENT_GAP_S:
            out.append((closed_at, seconds, 0.0, True))
    return out


def _integral(data: _Cell, a: float, b: float) -> float:
    """∫ power dt over [a, b] (%·s), trapezoidal through the samples: a skipped logger pass in a
    transient then costs the interpolation error, not a sample's whole weight."""
    inside = (data.t > a) & (data.t < b)
    t = np.concatenate([[a], data.t[inside], [b]])
    ends = np.interp([a, b], data.t, data.power)
    p = np.concatenate([ends[:1], data.power[inside], ends[1:]])
    return float(np.sum((p[1:] + p[:-1]) * np.diff(t)) / 2.0)


def _commanded_seconds(data: _Cell, a: float, b: float) -> float:
    pairs = zip(data.opens, data.closes, strict=True)
    return float(sum(max(0.0, min(b, c) - max(a, o)) for o, c in pairs))


def _noise(power: np.ndarray, steady: np.ndarray) -> float:
    """Rms noise of one power sample, from successive steady samples (robust: the median
    absolute difference, so level steps and spikes do not inflate it)."""
    both = steady[1:] & steady[:-1]
    diffs = np.diff(power)[both]
    if len(diffs) < MIN_STEADY_SAMPLES:
        return float(np.std(power[steady])) or 1e-6
    return float(1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2.0)) or 1e-6


def _next_after(times: np.ndarray, after: float, default: float) -> float:
    k = np.searchsorted(times, after, side="right")
    return float(times[k]) if k < len(times) else default


def _window_ending_at(spans: np.ndarray, at: float) -> int | None:
    """The window whose end is `at` (the logged close ended it), else the last one before."""
    ends = spans[:, 1]
    near = np.flatnonzero(np.abs(ends - at) <= EDGE_S)
    if len(near):
        return int(near[-1])
    earlier = np.flatnonzero(ends <= at)
    return int(earlier[np.argmax(ends[earlier])]) if len(earlier) else None


def _series(frame: pl.DataFrame, channel: str, origin: datetime) -> tuple[np.ndarray, np.ndarray]:
    """(seconds from origin, values) of one channel, time-sorted; at one instant the last row."""
    rows = (
        frame.filter(pl.col("channel") == channel)
        .with_row_index("_row")
        .sort("time", "_row")
        .unique("time", keep="last", maintain_order=True)
    )
    seconds = (rows.get_column("time") - origin).dt.total_microseconds().to_numpy() / 1e6
    return seconds.astype(float), rows.get_column("value").to_numpy().astype(float)


def _s(moment: datetime, origin: datetime) -> float:
    return (moment - origin).total_seconds()


def _overlap_s(a: datetime, b: datetime, start: datetime, end: datetime) -> float:
    return max(0.0, (min(b, end) - max(a, start)).total_seconds())
