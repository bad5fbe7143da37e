"""Ingest assets: what landed becomes archived, read, indexed files and registered growth runs.

Thin: the work is epi_ml.ingest.batch.ingest_landing; here are the Dagster parts (partitions of
new runs, metadata the UI shows). Retries only for I/O (a share that was briefly away).
"""

import dagster as dg

from assets.metadata import findings_markdown, table_markdown
from assets.partitions import GROWTH_RUNS
from assets.resources import EpiMlResource
from assets.twin import twin_campaign
from epi_ml.ingest.batch import LandingBatch, ingest_landing
from epi_ml.store.models import IngestEvent, Measurement
from epi_ml.store.repo import table_version

IO_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


class LandingConfig(dg.Config):
    # Seconds a landed file must be unchanged before it is ingested; negative: the settings'
    # EPI_ML_LANDING_SETTLE_S (30 s). The main job sets 0: whoever launches it says "now".
    settle_s: float = -1.0


@dg.asset(
    group_name="ingest",
    kinds={"python", "parquet"},
    deps=[twin_campaign],
    retry_policy=IO_RETRY,
    description=(
        "Tool logs, calibrations, RHEED exports and recipes that landed: raw bytes archived by "
        "SHA-256, read into the lake, bad files quarantined with their reasons; the tools' logs "
        "segmented into growth runs (one partition of growth_runs each)."
    ),
)
def landed_files(
    context: dg.AssetExecutionContext, config: LandingConfig, epi_ml: EpiMlResource
) -> dg.MaterializeResult:
    ctx = epi_ml.ingest_context()
    batch = ingest_landing(ctx, settle_s=_settle(config))
    complete = [c.run_id for c in batch.report.runs if c.status not in ("live", "open")]
    _add_partitions(context.instance, complete)
    # Unchanged when the batch held nothing new: downstream assets stay up to date.
    version = dg.DataVersion(table_version(ctx.engine, IngestEvent))
    return dg.MaterializeResult(metadata=_batch_metadata(batch), data_version=version)


@dg.asset(
    group_name="ingest",
    kinds={"python", "sql"},
    deps=[landed_files],
    retry_policy=IO_RETRY,
    description=(
        "XRD / PL measurement tables into the store, matched to their growth runs by run id "
        "(rows of runs not known yet wait until their logs arrive)."
    ),
)
def measurements(
    context: dg.AssetExecutionContext, config: LandingConfig, epi_ml: EpiMlResource
) -> dg.MaterializeResult:
    ctx = epi_ml.ingest_context()
    batch = ingest_landing(ctx, measurements=True, settle_s=_settle(config))
    link = batch.report.measurements
    metadata = _batch_metadata(batch)
    metadata["rows_stored"] = link.stored
    metadata["rows_waiting_for_runs"] = sum(link.waiting.values())
    if link.waiting:
        metadata["waiting_for_runs"] = table_markdown(["run id", "rows"], sorted(link.waiting.items()))
    version = dg.DataVersion(table_version(ctx.engine, Measurement))
    return dg.MaterializeResult(metadata=metadata, data_version=version)


def _settle(config: LandingConfig) -> float | None:
    return config.settle_s if config.settle_s >= 0 else None


def _add_partitions(instance: dg.DagsterInstance, run_ids: list[str]) -> None:
    known = set(instance.get_dynamic_partitions(GROWTH_RUNS))
    new = [r for r in dict.fromkeys(run_ids) if r not in known]
    if new:
        instance.add_dynamic_partitions(GROWTH_RUNS, new)


def _batch_metadata(batch: LandingBatch) -> dict[str, object]:
    files = batch.report.files
    by_status: dict[str, int] = {}
    for outcome in files:
        key = "unchanged" if outcome.seen_before else outcome.status
        by_status[key] = by_status.get(key, 0) + 1
    quarantined = [f for f in files if f.status == "quarantined" and not f.seen_before]
    runs = batch.report.runs
    metadata: dict[str, object] = {
        "files": by_status,
        "new_bytes": dg.MetadataValue.int(sum(f.size_bytes for f in files if not f.seen_before)),
        "new_rows": dg.MetadataValue.int(sum(f.rows for f in files if not f.seen_before)),
        "waiting_to_settle": len(batch.waiting),
        "runs_found": len(runs),
        "runs_new": sum(r.new for r in runs),
        "runs_pending": sum(r.pending for r in runs),
        "quarantined_files": len(quarantined),
    }
    if quarantined:
        metadata["quarantine"] = findings_markdown([x for f in quarantined for x in f.findings])
    if runs:
        metadata["runs"] = table_markdown(
            ["run", "status", "new", "pending"], [(r.run_id, r.status, r.new, r.pending) for r in runs]
        )
    return metadata
