"""Features that depend on a tool's earlier runs, added over the run sequence.

    table = with_history(features, refills, measurements)

- `<cell>_used_before_ml`: the material the cell deposited in the tool's earlier runs since its
  last refill (ML: calibration flux × shutter-open time, summed), a proxy of the charge used —
  what depletes the cell and lowers its flux at a given temperature.
- `prev_run_residual`: of the tool's latest run whose XRD thicknesses were measured before this run
  began, the mean of measured / baseline-predicted thickness − 1 over its measured layers: how
  far the physics baseline was off last time (drift the calibration has not caught yet). Only
  what was known at the start counts, so training sees what serving will see.

These are computed over the whole sequence at once (the training set, the dashboard's history, a
prediction for a new run), never from whichever partitions happened to be built first, so the
values do not depend on the order runs were ingested in.
"""

from __future__ import annotations

import polars as pl

from epi_ml.channels import GROUP_III

HISTORY_COLUMNS = [*(f"{c}_used_before_ml" for c in GROUP_III), "prev_run_residual"]
REFILL_SCHEMA = {"tool": pl.String, "source": pl.String, "installed_at": pl.Datetime("us", "UTC")}
MEASUREMENT_SCHEMA = {
    "run_id": pl.String,
    "layer_index": pl.Int64,
    "kind": pl.String,
    "value": pl.Float64,
    "uncertainty": pl.Float64,
    "measured_at": pl.Datetime("us", "UTC"),
}


def with_history(
    features: pl.DataFrame, refills: pl.DataFrame, measurements: pl.DataFrame
) -> pl.DataFrame:
    """`features` (many runs, any order) with HISTORY_COLUMNS added; `refills`: tool, source,
    installed_at; `measurements`: run_id, layer_index, kind, value, ... (XRD thickness used)."""
    if features.is_empty():
        return features.with_columns(pl.lit(None, pl.Float64).alias(c) for c in HISTORY_COLUMNS)
    runs = _run_sequence(features, refills).sort("run_start")
    # the latest residual known when the run began: measured (XRD) before its start
    known = _residuals(features, measurements).sort("measured_at")
    runs = runs.join_asof(
        known.select("tool", "measured_at", pl.col("residual").alias("prev_run_residual")),
        left_on="run_start", right_on="measured_at", by="tool", strategy="backward",
        check_sortedness=False,  # both sorted just above
    ).drop("measured_at")  # fmt: skip
    keep = ["run_id", *HISTORY_COLUMNS]
    return features.drop([c for c in HISTORY_COLUMNS if c in features.columns]).join(
        runs.select(keep), on="run_id", how="left"
    )


def _run_sequence(features: pl.DataFrame, refills: pl.DataFrame) -> pl.DataFrame:
    """One row per run: tool, start, and per cell the material deposited before it since refill."""
    deposited = [pl.col(f"{c}_deposited_ml").fill_null(0.0).sum().alias(f"{c}_run_ml") for c in GROUP_III]
    runs = features.group_by("run_id", "tool").agg(pl.col("start").min().alias("run_start"), *deposited)
    runs = runs.sort("tool", "run_start")
    refills = refills.select(list(REFILL_SCHEMA)).cast(REFILL_SCHEMA)  # type: ignore[arg-type]
    for c in GROUP_III:
        epochs = (
            refills.filter(pl.col("source") == c)
            .select("tool", pl.col("installed_at").alias(f"{c}_epoch"))
            .sort(f"{c}_epoch")
        )
        runs = (
            runs.sort("run_start")
            .join_asof(
                epochs, left_on="run_start", right_on=f"{c}_epoch", by="tool",
                strategy="backward", check_sortedness=False,  # both sorted just above
            )  # fmt: skip
            .sort("tool", "run_start")
        )
        before = pl.col(f"{c}_run_ml").cum_sum().over("tool", f"{c}_epoch") - pl.col(f"{c}_run_ml")
        runs = runs.with_columns(before.alias(f"{c}_used_before_ml")).drop(f"{c}_epoch", f"{c}_run_ml")
    return runs


def _residuals(features: pl.DataFrame, measurements: pl.DataFrame) -> pl.DataFrame:
    """Per measured run: tool, when its XRD results were in (measured_at), and the mean of
    measured / predicted thickness - 1 over its XRD-measured layers."""
    xrd = measurements.filter(pl.col("kind") == "xrd_thickness_nm").select(
        "run_id",
        pl.col("layer_index").alias("layer"),
        pl.col("value").alias("measured_nm"),
        pl.col("measured_at").cast(pl.Datetime("us", "UTC")),
    )
    return (
        features.select("run_id", "tool", "layer", "pred_thickness_nm")
        .join(xrd, on=["run_id", "layer"], how="inner")
        .filter(pl.col("pred_thickness_nm") > 0)
        .group_by("run_id", "tool")
        .agg(
            (pl.col("measured_nm") / pl.col("pred_thickness_nm") - 1).mean().alias("residual"),
            pl.col("measured_at").max(),
        )
    )
