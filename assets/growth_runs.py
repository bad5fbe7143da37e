"""One growth run's partition: raw run -> canonical sensor table -> validated run -> summary.

Each asset calls one stage of epi_ml.ingest.run_stages; the validated run carries two checks: no
errors (blocking: a quarantined run gets no summary, so nothing downstream trains on it) and no
warnings (recorded, not blocking).
"""

import dagster as dg

from assets.ingest import IO_RETRY, landed_files
from assets.metadata import findings_markdown, table_markdown
from assets.partitions import growth_runs
from assets.resources import EpiMlResource
from epi_ml.findings import Severity
from epi_ml.ingest import run_stages

GROUP = "growth_runs"
CHECK_ERRORS, CHECK_WARNINGS = "no_errors", "no_warnings"


@dg.asset(
    partitions_def=growth_runs,
    group_name=GROUP,
    kinds={"python", "file"},
    deps=[landed_files],
    retry_policy=IO_RETRY,
    description="The run's window, layers and the archived files it is read from (with hashes).",
)
def raw_run(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    manifest = run_stages.collect_inputs(epi_ml.ingest_context(), context.partition_key)
    segment = manifest.segment
    return dg.MaterializeResult(
        metadata={
            "tool": manifest.tool,
            "window": f"{manifest.start.isoformat()} .. {manifest.end.isoformat()}",
            "segmented_by": segment["segmented_by"],
            "recipe": segment.get("recipe") or "",
            "layers": len(segment["layers"]),
            "input_files": len(manifest.inputs),
            "fingerprint": manifest.fingerprint,
            "inputs": table_markdown(
                ["kind", "file", "sha256"],
                [(i.kind, i.path, i.sha256[:16]) for i in manifest.inputs],
            ),
        },
        data_version=dg.DataVersion(manifest.fingerprint),
    )


@dg.asset(
    partitions_def=growth_runs,
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[raw_run],
    retry_policy=IO_RETRY,
    description="The run's canonical sensor table (time, channel, value; UTC, canonical units).",
)
def sensor_table(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    ctx = epi_ml.ingest_context()
    table = run_stages.build_sensor_table(ctx, context.partition_key)
    channels = table.sensors.get_column("channel").unique().sort().to_list()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.sensors.height,
            "channels": len(channels),
            "channel_names": ", ".join(channels),
            "messages": table.messages.height,
            "path": dg.MetadataValue.path(str(ctx.lake.run_table_path(context.partition_key, "sensors"))),
        }
    )


@dg.asset(
    partitions_def=growth_runs,
    group_name=GROUP,
    kinds={"python"},
    deps=[sensor_table],
    check_specs=[
        dg.AssetCheckSpec(CHECK_ERRORS, asset="validated_run", blocking=True,
                          description="No ERROR finding: the run is not quarantined."),
        dg.AssetCheckSpec(CHECK_WARNINGS, asset="validated_run",
                          description="No WARNING finding (recorded, not blocking)."),
    ],  # fmt: skip
    description="Validation of the run: typed findings (errors quarantine it) and per-channel statistics.",
)
def validated_run(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    result = run_stages.validate_growth_run(epi_ml.ingest_context(), context.partition_key)
    counts = result.counts
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    warnings = [f for f in result.findings if f.severity is Severity.WARNING]
    if errors:
        context.log.warning(f"run {context.partition_key} quarantined: {errors[0]}")
    return dg.MaterializeResult(
        metadata={
            "status": result.status,
            "errors": counts["error"],
            "warnings": counts["warning"],
            "notes": counts["info"],
            "samples": dg.MetadataValue.int(result.report.rows),
            "channels": result.report.stats.height,
            "findings": findings_markdown(result.findings),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_ERRORS,
                passed=not errors,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"errors": len(errors), "codes": ", ".join(sorted({f.code for f in errors}))},
                description=str(errors[0]) if errors else "no errors",
            ),
            dg.AssetCheckResult(
                check_name=CHECK_WARNINGS,
                passed=not warnings,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"warnings": len(warnings), "codes": ", ".join(sorted({f.code for f in warnings}))},
            ),
        ],
    )


@dg.asset(
    partitions_def=growth_runs,
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[validated_run],
    description="Per layer: window, sources and statistics of cell/substrate temperatures, set "
    "points, As valve, gauges and RHEED; the run is then done (validated).",
)
def run_summary(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    summary = run_stages.summarize_run(epi_ml.ingest_context(), context.partition_key)
    layers = summary.unique("layer", keep="first", maintain_order=True).sort("layer")
    return dg.MaterializeResult(
        metadata={
            "layers": layers.height,
            "layer_table": table_markdown(
                ["layer", "material", "start", "duration s"],
                [(r["layer"], r["material"], r["start"], round(r["duration_s"], 1))
                 for r in layers.iter_rows(named=True)],  # fmt: skip
            ),
        }
    )


RUN_ASSETS = [raw_run, sensor_table, validated_run, run_summary]
