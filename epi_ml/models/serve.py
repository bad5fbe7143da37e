"""Predictions of the champion (or any version) for a recipe before it is grown.

    table = predict_recipe_layers(ctx, recipe, tool="MBE1", model=champion)

The recipe's layers become feature rows the way a grown run's do, from what is known now: the
physics baseline from the calibration in force (epi_ml.baseline.predict_recipe), the time since
the last calibration scan and since each refill, and the sequence features computed by the same
`with_history` as the training set, over the tool's runs with the recipe appended as its next
run. No sensor has been read, so the model predicts in its recipe mode (context inputs only,
intervals calibrated for that mode).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from epi_ml.baseline import predict_recipe
from epi_ml.channels import GROUP_III
from epi_ml.features.build import TRAINING_DATASET, TRAINING_NAME, history_inputs, run_context
from epi_ml.features.core import FEATURES_VERSION, feature_schema
from epi_ml.features.history import HISTORY_COLUMNS, with_history
from epi_ml.ingest.files import IngestContext
from epi_ml.models.data import derived_columns
from epi_ml.models.predictor import GrowthModel
from epi_ml.twin.recipe import Recipe

RECIPE_RUN = "recipe:{name}"


def recipe_feature_rows(ctx: IngestContext, recipe: Recipe, tool: str, at: datetime | None = None) -> pl.DataFrame:
    """The recipe's growth layers as feature rows (feature_schema + history columns)."""
    at = at or datetime.now(UTC)
    run_id = RECIPE_RUN.format(name=recipe.name)
    context = run_context(ctx, tool, run_id, at)
    if not context.calibrations:
        raise LookupError(
            f"tool {tool!r} has no cell calibration before {at:%Y-%m-%d %H:%M}; ingest its "
            "calibration scans (Fitting.txt / BEP scans) first, or pass another --tool"
        )
    planned = predict_recipe(recipe, context.calibrations)
    rows: list[dict[str, Any]] = []
    start = at
    for layer in planned.layers:
        p = layer.prediction
        end = start + timedelta(seconds=p.duration_s)
        row: dict[str, Any] = {
            "run_id": run_id, "tool": tool, "layer": layer.index, "kind": "layer",
            "material": layer.material, "label": layer.label, "start": start, "end": end,
            "duration_s": p.duration_s, "target_thickness_nm": layer.target_thickness_nm,
            "target_composition": layer.target_composition, "growth_s": p.duration_s,
            "pred_rate_ml_s": p.growth_rate_ml_s, "pred_rate_nm_s": p.growth_rate_nm_s,
            "pred_thickness_nm": p.thickness_nm, "pred_composition": p.composition,
            "features_version": FEATURES_VERSION,
        }  # fmt: skip
        if context.last_calibration_at is not None:
            row["hours_since_calibration"] = (start - context.last_calibration_at).total_seconds() / 3600
        for c in GROUP_III:
            flux = p.fluxes_ml_s.get(c)
            row[f"{c}_flux_ml_s"] = flux
            row[f"{c}_deposited_ml"] = None if flux is None else flux * p.duration_s
            row[f"{c}_T_mean"] = p.cell_temperatures_c.get(c)
            refilled = context.refilled_at.get(c)
            row[f"{c}_days_since_refill"] = (at - refilled).total_seconds() / 86_400 if refilled else None
        rows.append(row)
        start = end
    frame = pl.DataFrame(rows, schema=feature_schema(), strict=False)
    return _with_tool_history(ctx, frame, tool)


def _with_tool_history(ctx: IngestContext, recipe_rows: pl.DataFrame, tool: str) -> pl.DataFrame:
    """Sequence features of the recipe as the tool's next run (epi_ml.features.history)."""
    path = ctx.lake.dataset_path(TRAINING_DATASET, TRAINING_NAME)
    columns = list(feature_schema())
    earlier = pl.DataFrame(schema=feature_schema())
    if path.exists():
        earlier = pl.read_parquet(path).filter(pl.col("tool") == tool).select(columns)
    refills, measured = history_inputs(ctx)
    both = pl.concat([earlier, recipe_rows.select(columns)], how="vertical_relaxed")
    run_id = recipe_rows.get_column("run_id")[0]
    history = with_history(both, refills, measured).filter(pl.col("run_id") == run_id)
    return history.select([*columns, *HISTORY_COLUMNS]).sort("layer")


def predict_recipe_layers(ctx: IngestContext, recipe: Recipe, tool: str, model: GrowthModel,
                          at: datetime | None = None) -> pl.DataFrame:  # fmt: skip
    """Per growth layer: the physics baseline and the model's predictions with intervals."""
    rows = derived_columns(recipe_feature_rows(ctx, recipe, tool, at))
    data = model.spec.encode(rows, None, in_situ=False)
    predicted = model.predict(rows, data)
    return pl.concat(
        [
            rows.select("layer", "label", "material", "duration_s", "target_thickness_nm",
                        "target_composition", "pred_thickness_nm", "pred_composition"),  # fmt: skip
            predicted.drop("material", *(c for c in predicted.columns if c.startswith("r_"))),
        ],
        how="horizontal",
    )
