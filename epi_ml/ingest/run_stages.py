"""The stages of one growth run's partition, each a function of the store and the lake:

    collect_inputs(ctx, run_id)      -> RunManifest   lake/runs/<id>/inputs.json   (raw run)
    build_sensor_table(ctx, run_id)  -> SensorTable   lake/runs/<id>/sensors.parquet, messages...
    validate_growth_run(ctx, run_id) -> RunValidation lake/runs/<id>/validation.json, stats.parquet
    summarize_run(ctx, run_id)       -> pl.DataFrame  lake/runs/<id>/layers.parquet

Every lake file is written atomically, and a run counts as done only when the last stage records
the fingerprint of the inputs it was built from (one transaction): a crash anywhere leaves the run
pending, to be built again from the archive, never half-written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.features.windows import LayerWindow, in_windows, window_statistics, windows_frame
from epi_ml.findings import Finding, severity_counts, status_of
from epi_ml.ingest.files import IngestContext, write_quarantine_record
from epi_ml.ingest.runs import RunInput, fingerprint, load_segment, select_inputs
from epi_ml.live.buffer import drop_run
from epi_ml.readers.epic_events import MESSAGE_SCHEMA
from epi_ml.store import read_session, write_session
from epi_ml.store.lake import atomic_write
from epi_ml.store.models import GrowthRun, Layer
from epi_ml.validation import ScheduleStep, ValidationReport, validate_run
from epi_ml.validation.report import most_severe_first

STORED_FINDINGS = 500  # findings kept on the run row (validation.json has them all)
LAYER_STAT_CHANNELS = (".T", ".T_set", ".power", "As.valve", "sub.T", "sub.T_pyro", "sub.rpm", "BEP",
                       "P.chamber", "RHEED.I")  # fmt: skip


class RunNotReady(RuntimeError):
    """The run cannot be built (unknown, still growing, or an earlier stage has not run)."""


@dataclass(frozen=True)
class RunManifest:
    run_id: str
    tool: str
    start: datetime
    end: datetime
    fingerprint: str
    inputs: tuple[RunInput, ...]
    segment: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "tool": self.tool,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "fingerprint": self.fingerprint,
            "inputs": [i.to_dict() for i in self.inputs],
            "segment": self.segment,
        }


@dataclass(frozen=True)
class SensorTable:
    sensors: pl.DataFrame
    messages: pl.DataFrame
    rows_by_input: dict[str, int]  # sha256 -> rows it gave the run


@dataclass(frozen=True)
class RunValidation:
    report: ValidationReport
    findings: list[Finding]  # segmentation + input files + validation, most severe first
    status: str  # accepted | accepted_with_warnings | quarantined

    @property
    def counts(self) -> dict[str, int]:
        return severity_counts(self.findings)


# ---------------------------------------------------------------------------------------------
def collect_inputs(ctx: IngestContext, run_id: str) -> RunManifest:
    run = _run(ctx, run_id)
    if run.ended_at is None or run.started_at is None:
        raise RunNotReady(
            f"run {run_id} has no end in the logs yet (status {run.status}); it is built once the "
            "tool logs its end (Run ... end, or the wafer leaving the growth chamber)"
        )
    segment = load_segment(ctx.lake, run_id)
    inputs = select_inputs(ctx.engine, run.tool_id, run_id, run.started_at, run.ended_at)
    seg = {k: v for k, v in segment.items() if k != "findings"}
    manifest = RunManifest(
        run_id, run.tool_id, run.started_at, run.ended_at, fingerprint(seg, inputs), tuple(inputs), segment
    )
    _write_json(ctx, run_id, "inputs.json", manifest.to_dict())
    return manifest


def build_sensor_table(ctx: IngestContext, run_id: str) -> SensorTable:
    manifest = _manifest(ctx, run_id)
    start, end = manifest.start, manifest.end
    in_window = pl.col("time").is_between(pl.lit(start), pl.lit(end))
    sensors, shutters, messages, rows = [], [], [], {}
    for item in manifest.inputs:
        if item.lake_path is None:
            continue
        frame = pl.scan_parquet(item.lake_path)
        if item.kind == "sensors":
            part = frame.filter(in_window).select(list(SENSOR_SCHEMA)).collect()
            rows[item.sha256] = part.height
            sensors.append(part)
        elif item.kind == "shutters":
            shutters.append(frame.select(list(SENSOR_SCHEMA)))
        elif item.kind == "messages":
            messages.append(frame.filter(in_window).collect())
    if shutters:  # several days' shutter logs: the state at the start comes from all of them
        sensors.append(_shutters_in_window(pl.concat(shutters), start, end))
    table = (
        pl.concat(sensors).sort("channel", "time", maintain_order=True)
        if sensors
        else pl.DataFrame(schema=SENSOR_SCHEMA)
    )
    message_table = (
        pl.concat(messages, how="vertical_relaxed").unique(maintain_order=True).sort("time")
        if messages
        else pl.DataFrame(schema=MESSAGE_SCHEMA)
    )
    ctx.lake.write_run_table(run_id, "sensors", table)
    ctx.lake.write_run_table(run_id, "messages", message_table)
    with write_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        assert run is not None
        run.status = "ingested"
        run.lake_path = str(ctx.lake.run_dir(run_id))
    return SensorTable(table, message_table, rows)


def validate_growth_run(ctx: IngestContext, run_id: str) -> RunValidation:
    manifest = _manifest(ctx, run_id)
    if not ctx.lake.has_run_table(run_id, "sensors"):
        raise RunNotReady(f"run {run_id} has no sensor table yet; build it first")
    sensors = ctx.lake.read_run_table(run_id, "sensors")
    layers = _layers(ctx, run_id)
    schedule = [
        ScheduleStep(layer.started_at, layer.ended_at, frozenset(layer.open_sources),
                     name=f"layer {layer.index} ({layer.material})")  # fmt: skip
        for layer in layers
        if layer.started_at and layer.ended_at and layer.open_sources
    ]
    report = validate_run(
        sensors, expected_channels=_expected_channels(ctx, manifest), schedule=schedule
    )
    findings = most_severe_first(
        [Finding.from_dict(f) for f in manifest.segment.get("findings", [])]
        + _input_findings(manifest)
        + report.findings
    )
    status = status_of(findings)
    result = RunValidation(report, findings, status)
    _write_json(ctx, run_id, "validation.json", {
        **report.to_dict(), "status": status, "counts": result.counts,
        "findings": [f.to_dict() for f in findings], "fingerprint": manifest.fingerprint,
    })  # fmt: skip
    ctx.lake.write_run_table(run_id, "stats", report.stats)
    if status == "quarantined":
        write_quarantine_record(ctx.settings, "runs", run_id, _run_reason(ctx, manifest, findings))
    with write_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        assert run is not None
        run.n_errors, run.n_warnings = result.counts["error"], result.counts["warning"]
        run.findings = [f.to_dict() for f in findings[:STORED_FINDINGS]]
        if status == "quarantined":  # done: it waits for an engineer, not for the pipeline
            run.status = "quarantined"
            run.ingested_fingerprint = manifest.fingerprint
    return result


def summarize_run(ctx: IngestContext, run_id: str) -> pl.DataFrame:
    """Per layer: its window, sources and the statistics of the channels that set it (cell and
    substrate temperatures, set points, As valve, gauges, RHEED); the run is then done."""
    manifest = _manifest(ctx, run_id)
    sensors = ctx.lake.read_run_table(run_id, "sensors")
    layers = _layers(ctx, run_id)
    summary = layer_statistics(sensors, layers)
    ctx.lake.write_run_table(run_id, "layers", summary)
    means = {
        (row["layer"], row["channel"]): row["mean"]
        for row in summary.select("layer", "channel", "mean").iter_rows(named=True)
    }
    with write_session(ctx.engine) as session:
        for layer in session.scalars(select(Layer).where(Layer.run_id == run_id)):
            wanted = [f"{s}.T_set" for s in layer.open_sources] + ["sub.T_set", "As.valve"]
            layer.setpoints = {
                c: round(means[(layer.index, c)], 4) for c in wanted if means.get((layer.index, c)) is not None
            }
        run = session.get(GrowthRun, run_id)
        assert run is not None
        run.status = "validated"
        run.ingested_fingerprint = manifest.fingerprint
    drop_run(ctx.engine, run_id)  # the lake holds the run now: its live samples are not needed
    return summary


def layer_statistics(sensors: pl.DataFrame, layers: list[Layer]) -> pl.DataFrame:
    """Per layer and channel (the channels that set a layer): n, mean, std, min, max, slope."""
    windows = windows_frame([window_of(layer) for layer in layers if layer.started_at and layer.ended_at])
    wanted = pl.any_horizontal(
        [pl.col("channel").str.ends_with(s) if s.startswith(".") else pl.col("channel") == s
         for s in LAYER_STAT_CHANNELS]  # fmt: skip
    )
    joined = in_windows(sensors.filter(wanted & pl.col("value").is_finite()), windows)
    return (
        window_statistics(joined, by=("layer", "material", "start", "end", "channel"))
        .with_columns(duration_s=(pl.col("end") - pl.col("start")).dt.total_microseconds() / 1e6)
        .sort("layer", "channel")
    )


def window_of(layer: Layer) -> LayerWindow:
    assert layer.started_at is not None and layer.ended_at is not None
    return LayerWindow(
        index=layer.index,
        kind=layer.kind,
        material=layer.material,
        start=layer.started_at,
        end=layer.ended_at,
        open_sources=frozenset(layer.open_sources),
        label=layer.label,
        target_thickness_nm=layer.target_thickness_nm,
        target_composition=layer.target_composition,
    )


def pending_runs(ctx: IngestContext) -> list[tuple[str, str]]:
    """(run id, input fingerprint) of complete runs whose partition has not been built from their
    current inputs, oldest first."""
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(GrowthRun.id, GrowthRun.input_fingerprint)
            .where(
                GrowthRun.ended_at.is_not(None),
                GrowthRun.status.not_in(("live", "open")),
                (GrowthRun.ingested_fingerprint.is_(None))
                | (GrowthRun.ingested_fingerprint != GrowthRun.input_fingerprint),
            )
            .order_by(GrowthRun.started_at)
        ).all()
    return [(run_id, fp or "") for run_id, fp in rows]


def pending_run_ids(ctx: IngestContext) -> list[str]:
    return [run_id for run_id, _ in pending_runs(ctx)]


# ---------------------------------------------------------------------------------------------
def _run(ctx: IngestContext, run_id: str) -> GrowthRun:
    with read_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        if run is not None:
            session.expunge(run)
    if run is None:
        raise RunNotReady(f"no growth run {run_id!r} in the store; ingest its logs first")
    return run


def _manifest(ctx: IngestContext, run_id: str) -> RunManifest:
    path = ctx.lake.run_dir(run_id) / "inputs.json"
    if not path.exists():
        raise RunNotReady(f"run {run_id} has no inputs manifest yet; collect its inputs first")
    data = json.loads(path.read_text(encoding="utf-8"))
    return RunManifest(
        data["run_id"],
        data["tool"],
        datetime.fromisoformat(data["start"]),
        datetime.fromisoformat(data["end"]),
        data["fingerprint"],
        tuple(_input_from(d) for d in data["inputs"]),
        data["segment"],
    )


def _input_from(data: dict[str, Any]) -> RunInput:
    def when(key: str) -> datetime | None:
        return datetime.fromisoformat(data[key]) if data.get(key) else None

    return RunInput(
        event_id=0,
        sha256=data["sha256"],
        kind=data["kind"],
        path=data["path"],
        lake_path=data["lake_path"],
        archive_path=data["archive_path"],
        time_start=when("time_start"),
        time_end=when("time_end"),
        findings=tuple(data.get("findings", ())),
    )


def _shutters_in_window(frame: pl.LazyFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Shutter events in the window, and the state each shutter was in when the run began
    (its last event before, moved to the start) so that the run is readable on its own."""
    before = (
        frame.filter(pl.col("time") < start)
        .group_by("channel")
        .agg(pl.col("value").sort_by("time").last())
        .with_columns(time=pl.lit(start, dtype=SENSOR_SCHEMA["time"]))
    )
    inside = frame.filter(pl.col("time").is_between(pl.lit(start), pl.lit(end)))
    logged_at_start = inside.filter(pl.col("time") == start).select("channel")
    before = before.join(logged_at_start, on="channel", how="anti")
    return pl.concat([before.select(list(SENSOR_SCHEMA)), inside.select(list(SENSOR_SCHEMA))]).collect()


def _layers(ctx: IngestContext, run_id: str) -> list[Layer]:
    with Session(ctx.engine, expire_on_commit=False) as session:
        layers = list(session.scalars(select(Layer).where(Layer.run_id == run_id).order_by(Layer.index)))
        session.expunge_all()
    return layers


def _expected_channels(ctx: IngestContext, manifest: RunManifest) -> set[str]:
    """The channels of the tool's previous accepted run: a channel that stops being logged is
    a broken sensor or logger, not a new normal (TFX infers its schema from data the same way)."""
    with read_session(ctx.engine) as session:
        previous = session.scalars(
            select(GrowthRun.id)
            .where(
                GrowthRun.tool_id == manifest.tool,
                GrowthRun.started_at < manifest.start,
                GrowthRun.status == "validated",
            )
            .order_by(GrowthRun.started_at.desc())
            .limit(1)
        ).first()
    if previous is None or not ctx.lake.has_run_table(previous, "stats"):
        return set()
    stats = ctx.lake.read_run_table(previous, "stats")
    return {c for c in stats.get_column("channel").to_list() if not c.startswith("raw:")}


def _input_findings(manifest: RunManifest) -> list[Finding]:
    """What the readers found in the run's files, once per file (a day file serves several runs:
    each of them says what was wrong with it)."""
    findings = []
    for item in manifest.inputs:
        for data in item.findings:
            finding = Finding.from_dict(data)
            findings.append(finding)
    return findings


def _write_json(ctx: IngestContext, run_id: str, name: str, data: dict[str, Any]) -> None:
    body = json.dumps(data, indent=1, default=str)
    atomic_write(ctx.lake.run_dir(run_id) / name, lambda tmp: tmp.write_text(body, encoding="utf-8"))


def _run_reason(ctx: IngestContext, manifest: RunManifest, findings: list[Finding]) -> dict[str, Any]:
    return {
        "what": "growth run",
        "subject": manifest.run_id,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "where": {
            "tool": manifest.tool,
            "window": f"{manifest.start.isoformat()} .. {manifest.end.isoformat()}",
            "sensor table": str(ctx.lake.run_table_path(manifest.run_id, "sensors")),
            "raw files": ", ".join(i.archive_path for i in manifest.inputs),
        },
        "findings": [f.to_dict() for f in findings],
        "what_to_do": "Read the errors above. If the data is right after all (e.g. a recipe "
        "changed by hand), fix the recipe or the limits and rematerialize the run's partition; "
        "if a file was bad, land a corrected copy: the run becomes pending again.",
    }
