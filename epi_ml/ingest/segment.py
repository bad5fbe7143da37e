"""Segmentation of a tool's logs into growth runs and layers.

Two kinds of marks, as real tools write them (docs/twin.md "Messages"):
- recipe messages: `Run <id> start recipe=... operator=... wafer=...`, `Layer <k> start <material>
  target=..nm x=.. dopants=Si label=..`, `Layer <k> end`, `Run <id> end|aborted`;
- wafer transfers (every EPIC tool logs them, recipe or not): `<wafer> moved from <A> to GC` and
  `<wafer> moved from GC to <B>`. A visit of the growth chamber without recipe messages is a run
  too (id `<tool>-<YYYYMMDD>-<seq>`), its layers cut from the shutter log: each stretch with the
  same set of source shutters open, the substrate shutter open where it is logged.

A run's window runs from the wafer entering the growth chamber to it leaving (the recipe's start
and end where there is no transfer around them). Pure functions of the message and shutter tables:
the live tailer and ingest cut the same runs from the same logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from zoneinfo import ZoneInfo

from epi_ml.findings import Finding, Severity

RUN_MESSAGE = re.compile(r"^Run (?P<run>\S+) (?P<what>start|end|aborted)\b\s*(?P<rest>.*)$")
LAYER_MESSAGE = re.compile(r"^Layer (?P<index>\d+) (?P<what>start|end)\b\s*(?P<rest>.*)$")
TRANSFER_MESSAGE = re.compile(r"^(?P<wafer>\S+) moved from (?P<source>\S+) to (?P<target>\S+)$")
KEY_VALUE = re.compile(r"(?P<key>\w+)=(?P<value>\S+)")
GROWTH_CHAMBER = "GC"
# A wafer-in transfer at most this long before `Run ... start` opens that run's window.
TRANSFER_LEAD = timedelta(hours=2)
# Shutters in EPIC logs that are not sources: substrate, mass spectrometer, load lock, cryo panel.
NOT_SOURCES = frozenset({"sub", "QMS", "LL", "LN2"})
GROUP_V = ("As", "Sb", "P", "N")
# Sources of each recipe material: group III, then the group-V element (always open in growth).
MATERIAL_SOURCES: dict[str, tuple[str, ...]] = {
    "GaAs": ("Ga", "As"),
    "AlAs": ("Al", "As"),
    "InAs": ("In", "As"),
    "AlGaAs": ("Al", "Ga", "As"),
    "InGaAs": ("In", "Ga", "As"),
    "interrupt": ("As",),
}
SHUTTER_ORDER = ("Al", "In", "Ga")  # how growers write alloys: Al, In before Ga; As last


@dataclass(frozen=True)
class LayerSegment:
    index: int  # 1-based, as the recipe numbers it (interrupts are layers too)
    kind: str  # layer | interrupt
    material: str  # GaAs, AlGaAs, ... ; interrupt; for shutter-cut layers the open sources
    start: datetime
    end: datetime | None
    open_sources: frozenset[str]
    label: str | None = None
    target_thickness_nm: float | None = None
    target_composition: float | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "material": self.material,
            "label": self.label,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "open_sources": sorted(self.open_sources),
            "target_thickness_nm": self.target_thickness_nm,
            "target_composition": self.target_composition,
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class RunSegment:
    run_id: str
    tool: str
    start: datetime
    end: datetime | None  # None: the logs hold no end yet (growing, or its next day not in)
    status: str  # complete | open | aborted
    segmented_by: str  # recipe | transfer
    recipe: str | None = None
    operator: str | None = None
    wafer: str | None = None
    layers: tuple[LayerSegment, ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return self.end is not None

    def to_dict(self) -> dict[str, Any]:
        """What identifies the segmentation (part of the run's input fingerprint)."""
        return {
            "run_id": self.run_id,
            "tool": self.tool,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "status": self.status,
            "segmented_by": self.segmented_by,
            "recipe": self.recipe,
            "operator": self.operator,
            "wafer": self.wafer,
            "layers": [layer.to_dict() for layer in self.layers],
        }


def run_id_for(tool: str, start: datetime, seq: int, tz: str = "UTC") -> str:
    """`MBE1-20260105-02`; the date is the tool's own (local) date, the one its operators use."""
    return f"{tool}-{start.astimezone(ZoneInfo(tz)):%Y%m%d}-{seq:02d}"


def material_name(sources: frozenset[str]) -> str:
    """Open sources -> what growers call the layer: {Al, Ga, As} -> AlGaAs, {GeO} -> GeO."""
    group_iii = [s for s in SHUTTER_ORDER if s in sources]
    others = sorted(s for s in sources if s not in SHUTTER_ORDER and s not in GROUP_V)
    group_v = [s for s in GROUP_V if s in sources]
    return "".join(group_iii + others + group_v) or "none"


def layer_sources(material: str, dopants: str | None) -> frozenset[str]:
    """Shutters a recipe layer opens: its material's sources and the listed dopants."""
    named = MATERIAL_SOURCES.get(material, ())
    extra = [d for d in (dopants or "").split("+") if d]
    return frozenset((*named, *extra))


def segment_tool_logs(
    tool: str,
    messages: pl.DataFrame,
    shutters: pl.DataFrame | None = None,
    *,
    tz: str = "UTC",
) -> list[RunSegment]:
    """The runs in a tool's logs. `messages`: time, caller, message (any order, duplicates
    allowed: copies of a log); `shutters`: the canonical long rows of its shutter channels
    (`<source>.shutter`, 0/1), needed only to cut layers of runs without recipe messages; `tz`:
    the tool's time zone, for the date in the ids of runs without a recipe id."""
    rows = _message_rows(messages)
    recipe_runs = _recipe_runs(tool, rows)
    visits = _visits(rows)
    runs = _widen_to_visits(recipe_runs, visits)
    taken = [(r.start, r.end or r.start) for r in runs]
    for wafer, start, end in visits:
        if not any(_overlaps(start, end, s, e) for s, e in taken):
            runs.append(_transfer_run(tool, wafer, start, end, shutters))
    runs.sort(key=lambda r: r.start)
    return _number_transfer_runs(tool, runs, tz)


# ---------------------------------------------------------------------------------------------
def _message_rows(messages: pl.DataFrame) -> list[tuple[datetime, str]]:
    if messages.is_empty():
        return []
    table = (
        messages.select("time", pl.col("message").cast(pl.String).str.strip_chars())
        .drop_nulls()
        .unique(maintain_order=True)
        .sort("time", maintain_order=True)
    )
    return list(zip(table.get_column("time").to_list(), table.get_column("message").to_list()))


def _pairs(text: str) -> dict[str, str]:
    return {m["key"]: m["value"] for m in KEY_VALUE.finditer(text)}


def _number(text: str | None, suffix: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text.removesuffix(suffix))
    except ValueError:
        return None


def _layer_from(index: int, rest: str, at: datetime) -> LayerSegment:
    words = rest.split()
    material = words[0] if words and "=" not in words[0] else "unknown"
    pairs = _pairs(rest)
    kind = "interrupt" if material == "interrupt" else "layer"
    return LayerSegment(
        index=index,
        kind=kind,
        material=material,
        start=at,
        end=None,
        open_sources=layer_sources(material, pairs.get("dopants")),
        label=pairs.get("label"),
        target_thickness_nm=_number(pairs.get("target"), "nm"),
        target_composition=_number(pairs.get("x"), ""),
        duration_s=_number(pairs.get("duration"), "s"),
    )


class _OpenRun:
    def __init__(self, run_id: str, at: datetime, pairs: dict[str, str]) -> None:
        self.run_id, self.start, self.pairs = run_id, at, pairs
        self.layers: list[LayerSegment] = []
        self.findings: list[Finding] = []

    def close_layers(self, at: datetime) -> None:
        for i, layer in enumerate(self.layers):
            if layer.end is None:
                self.layers[i] = replace(layer, end=at)
                self.findings.append(
                    _finding(
                        "layer_without_end",
                        f"layer {layer.index} ({layer.material}) has no 'Layer {layer.index} end' "
                        "message; it is taken to end at the next mark",
                        layer.start,
                        at,
                    )
                )

    def finish(self, tool: str, end: datetime | None, status: str) -> RunSegment:
        return RunSegment(
            run_id=self.run_id,
            tool=tool,
            start=self.start,
            end=end,
            status=status,
            segmented_by="recipe",
            recipe=self.pairs.get("recipe"),
            operator=self.pairs.get("operator"),
            wafer=self.pairs.get("wafer"),
            layers=tuple(self.layers),
            findings=tuple(self.findings),
        )


def _recipe_runs(tool: str, rows: list[tuple[datetime, str]]) -> list[RunSegment]:
    runs: list[RunSegment] = []
    current: _OpenRun | None = None
    for at, text in rows:
        if run := RUN_MESSAGE.match(text):
            if run["what"] == "start":
                if current is not None:
                    current.close_layers(at)
                    current.findings.append(
                        _finding(
                            "run_without_end",
                            f"run {current.run_id} has no 'Run {current.run_id} end' message "
                            f"before run {run['run']} starts; it is taken to end there",
                            current.start,
                            at,
                        )
                    )
                    runs.append(current.finish(tool, at, "complete"))
                current = _OpenRun(run["run"], at, _pairs(run["rest"]))
            elif current is not None and run["run"] == current.run_id:
                current.close_layers(at)
                if run["what"] == "aborted":
                    current.findings.append(
                        _finding(
                            "run_aborted",
                            f"run {current.run_id} was aborted; its layers may not be complete",
                            current.start,
                            at,
                        )
                    )
                status = "aborted" if run["what"] == "aborted" else "complete"
                runs.append(current.finish(tool, at, status))
                current = None
        elif current is not None and (layer := LAYER_MESSAGE.match(text)):
            index = int(layer["index"])
            if layer["what"] == "start":
                current.close_layers(at)
                current.layers.append(_layer_from(index, layer["rest"], at))
            else:
                current.layers = [
                    replace(seg, end=at) if seg.index == index and seg.end is None else seg
                    for seg in current.layers
                ]
    if current is not None:
        runs.append(current.finish(tool, None, "open"))
    return runs


def _visits(rows: list[tuple[datetime, str]]) -> list[tuple[str, datetime, datetime | None]]:
    """(wafer, in, out) for each stay of a wafer in the growth chamber; out None if still in."""
    visits: list[tuple[str, datetime, datetime | None]] = []
    inside: dict[str, datetime] = {}
    for at, text in rows:
        move = TRANSFER_MESSAGE.match(text)
        if not move:
            continue
        if move["target"] == GROWTH_CHAMBER:
            inside[move["wafer"]] = at
        elif move["source"] == GROWTH_CHAMBER and move["wafer"] in inside:
            visits.append((move["wafer"], inside.pop(move["wafer"]), at))
    visits += [(wafer, start, None) for wafer, start in inside.items()]
    return sorted(visits, key=lambda v: v[1])


def _overlaps(a0: datetime, a1: datetime | None, b0: datetime, b1: datetime) -> bool:
    return a0 <= b1 and (a1 is None or b0 <= a1)


def _widen_to_visits(
    runs: list[RunSegment], visits: list[tuple[str, datetime, datetime | None]]
) -> list[RunSegment]:
    """A recipe run's window opens when its wafer entered the growth chamber and closes when it
    left, so that the log before the recipe starts (pump-down, heating) belongs to the run."""
    widened = []
    for run in runs:
        around = [
            v
            for v in visits
            if v[1] <= run.start
            and run.start - v[1] <= TRANSFER_LEAD
            and (run.wafer is None or v[0] == run.wafer)
            and (v[2] is None or run.end is None or v[2] >= run.end)
        ]
        if around:
            _, start, end = around[-1]
            if end is not None and run.end is not None:
                run = replace(run, start=start, end=end)
            else:
                run = replace(run, start=start)
        widened.append(run)
    return widened


def _transfer_run(
    tool: str,
    wafer: str,
    start: datetime,
    end: datetime | None,
    shutters: pl.DataFrame | None,
) -> RunSegment:
    layers = _shutter_layers(shutters, start, end) if shutters is not None else ()
    return RunSegment(
        run_id="",  # numbered below, once all runs of the day are known
        tool=tool,
        start=start,
        end=end,
        status="complete" if end is not None else "open",
        segmented_by="transfer",
        wafer=wafer,
        layers=layers,
    )


def _number_transfer_runs(tool: str, runs: list[RunSegment], tz: str) -> list[RunSegment]:
    """Ids for runs without a recipe id: `<tool>-<day>-<seq>`, seq = the run's place among all
    runs that start that (local) day, skipping ids the recipe runs already use."""
    used = {r.run_id for r in runs if r.run_id}
    numbered: list[RunSegment] = []
    per_day: dict[str, int] = {}
    for run in runs:
        day = run_id_for(tool, run.start, 0, tz)
        per_day[day] = per_day.get(day, 0) + 1
        if run.run_id:
            numbered.append(run)
            continue
        seq = per_day[day]
        while run_id_for(tool, run.start, seq, tz) in used:
            seq += 1
        run_id = run_id_for(tool, run.start, seq, tz)
        used.add(run_id)
        numbered.append(replace(run, run_id=run_id))
    return numbered


def _shutter_layers(
    shutters: pl.DataFrame, start: datetime, end: datetime | None
) -> tuple[LayerSegment, ...]:
    """Layers of a run without recipe messages: each stretch in which the same set of source
    shutters is open (group V alone is no layer), while the substrate shutter is open."""
    events = (
        shutters.filter(pl.col("channel").str.ends_with(".shutter") & pl.col("value").is_not_null())
        .select("time", pl.col("channel").str.replace(r"\.shutter$", "").alias("source"), "value")
        .sort("time", maintain_order=True)
    )
    state: dict[str, bool] = {}
    layers: list[LayerSegment] = []
    open_since: tuple[datetime, frozenset[str]] | None = None

    def growing() -> frozenset[str]:
        if state.get("sub") is False:
            return frozenset()
        sources = frozenset(s for s, is_open in state.items() if is_open and s not in NOT_SOURCES)
        return sources if sources - set(GROUP_V) else frozenset()

    def close(at: datetime) -> None:
        nonlocal open_since
        if open_since is not None:
            since, sources = open_since
            layers.append(
                LayerSegment(
                    index=len(layers) + 1,
                    kind="layer",
                    material=material_name(sources),
                    start=max(since, start),
                    end=at,
                    open_sources=sources,
                    label="shutters",
                    target_composition=None,
                )
            )
        open_since = None

    for at, group in events.group_by("time", maintain_order=True):
        moment = at[0]
        if end is not None and moment > end:
            break
        for source, value in zip(group.get_column("source"), group.get_column("value")):
            state[source] = value >= 0.5
        now = growing()
        current = open_since[1] if open_since else frozenset()
        if now != current:
            if moment > start:
                close(moment)
            else:
                open_since = None
            if now:
                open_since = (moment, now)
    if open_since is not None and end is not None:
        close(end)
    return tuple(layer for layer in layers if layer.end is None or layer.end > layer.start)


def _finding(code: str, message: str, start: datetime, end: datetime | None) -> Finding:
    return Finding(
        code,
        Severity.WARNING,
        message,
        hint="Check the tool's message log; the recipe engine may have been stopped or restarted.",
        start=start,
        end=end,
    )


__all__ = [
    "LayerSegment",
    "RunSegment",
    "layer_sources",
    "material_name",
    "run_id_for",
    "segment_tool_logs",
]
