"""Features assets: per-run layer features, the tools' cell calibration history, the training set.

Thin: epi_ml.features and epi_ml.calibration do the work; here are partitions and UI metadata.
"""

import hashlib

import dagster as dg
import polars as pl

from assets.growth_runs import GROUP as RUN_GROUP
from assets.growth_runs import run_summary
from assets.ingest import landed_files, measurements
from assets.metadata import findings_markdown, number, table_markdown
from assets.partitions import growth_runs
from assets.resources import EpiMlResource
from epi_ml.features.core import FEATURES_VERSION

GROUP = "features"


@dg.asset(
    group_name="calibration",
    kinds={"python", "parquet"},
    deps=[landed_files],
    description=(
        "Arrhenius fits of every cell from its calibration scans and the tools' Fitting.txt, as a "
        "history per tool and cell, with the flux drift between calibrations; drift beyond the "
        "tolerance raises an alarm."
    ),
)
def cell_calibrations(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    from epi_ml.calibration import calibration_history, record_drift_alarms

    ctx = epi_ml.ingest_context()
    history = calibration_history(ctx)
    path = ctx.lake.write_dataset("calibration", "history", history)
    alerts = record_drift_alarms(ctx, history)
    latest = (
        history.sort("taken_at").group_by("tool", "cell", "source").last().sort("tool", "cell", "source")
        if not history.is_empty()
        else history
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(hashlib.sha256(path.read_bytes()).hexdigest()),
        metadata={
            "dagster/row_count": history.height,
            "path": dg.MetadataValue.path(str(path)),
            "drift_alerts": len(alerts),
            "latest": table_markdown(
                ["tool", "cell", "source", "taken", "Ea (eV)", "r²"],
                [(r["tool"], r["cell"], r["source"], r["taken_at"], number(r["activation_ev"], 3), number(r["r2"], 5))
                 for r in latest.iter_rows(named=True)],  # fmt: skip
            ),
            "alerts": findings_markdown(alerts),
        }
    )


@dg.asset(
    partitions_def=growth_runs,
    group_name=RUN_GROUP,
    kinds={"polars", "parquet"},
    deps=[run_summary, cell_calibrations],
    description=(
        f"The run's per-layer features (version {FEATURES_VERSION}): shutter times, cell and "
        "substrate statistics, flux transients, BEP, V/III, RHEED growth rate, the physics "
        "baseline's rate, thickness and composition."
    ),
)
def layer_features(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    from epi_ml.features.build import build_run_features

    table = build_run_features(epi_ml.ingest_context(), context.partition_key)
    growth = table.filter(pl.col("kind") == "layer")
    return dg.MaterializeResult(
        metadata={
            "features_version": FEATURES_VERSION,
            "layers": table.height,
            "columns": table.width,
            "layer_table": table_markdown(
                ["layer", "material", "growth s", "target nm", "baseline nm", "RHEED ML/s", "V/III"],
                [(r["layer"], r["material"], number(r["growth_s"], 1), number(r["target_thickness_nm"], 1),
                  number(r["pred_thickness_nm"], 1), number(r["rheed_rate_ml_s"], 3), number(r["v_iii"], 1))
                 for r in growth.iter_rows(named=True)],  # fmt: skip
            ),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"polars", "parquet"},
    deps=[layer_features, measurements],
    description=(
        "Every validated run's layer features with the sequence features (charge used since "
        "refill, previous run's residual) joined to its XRD / PL measurements: what models train on."
    ),
)
def training_set(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    from epi_ml.features.build import build_training_set

    dataset = build_training_set(epi_ml.ingest_context())
    frame = dataset.frame
    measured = frame.filter(pl.col("xrd_thickness_nm").is_not_null() & pl.col("pred_thickness_nm").is_not_null())
    error = (measured["pred_thickness_nm"] / measured["xrd_thickness_nm"] - 1).abs() * 100
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "runs": dataset.runs,
            "measured_layers": dataset.measured_layers,
            "features_version": FEATURES_VERSION,
            "sha256": dataset.sha256,
            "path": dg.MetadataValue.path(str(dataset.path)),
            "baseline_thickness_mape_pct": float(error.mean()) if len(error) else float("nan"),
        },
        data_version=dg.DataVersion(dataset.sha256),
    )


FEATURE_ASSETS = [cell_calibrations, layer_features, training_set]
