"""Accuracy of residual predictions against the measurements, overall and per slice.

    metrics = evaluate(examples, residuals)     # {"overall": {...}, "slices": {"tool": {...}, ...}}

`residuals` has r_thickness, r_composition and their _lower/_upper (epi_ml.models.baselines,
GrowthModel.predict); `examples` the physics baseline and the measurements (epi_ml.models.data).
Thickness: MAE and RMSE in nm, MAPE and relative RMSE in %, coverage of the intervals;
composition: MAE, RMSE, MAPE in % of x, coverage. Where the examples carry the twin's truth
(`true_thickness_nm`, `true_composition`), the same against the truth (`*_vs_truth`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

SLICES = ("tool", "material", "epoch")


def predictions_table(examples: pl.DataFrame, residuals: pl.DataFrame) -> pl.DataFrame:
    base_t, base_x = pl.col("pred_thickness_nm"), pl.col("pred_composition")
    keep = [c for c in ("run_id", "layer", "tool", "material", "epoch", "start", "xrd_thickness_nm",
                        "xrd_composition", "true_thickness_nm", "true_composition",
                        "pred_thickness_nm", "pred_composition") if c in examples.columns]  # fmt: skip
    frame = pl.concat([examples.select(keep), residuals.select(pl.col("^r_.*$"))], how="horizontal")
    return frame.with_columns(
        thickness_nm=base_t * pl.col("r_thickness").exp(),
        thickness_lower_nm=base_t * pl.col("r_thickness_lower").exp(),
        thickness_upper_nm=base_t * pl.col("r_thickness_upper").exp(),
        composition=base_x + pl.col("r_composition"),
        composition_lower=base_x + pl.col("r_composition_lower"),
        composition_upper=base_x + pl.col("r_composition_upper"),
    )


def _block(table: pl.DataFrame, measured: str, predicted: str, lower: str, upper: str) -> dict[str, float]:
    rows = table.filter(pl.col(measured).is_not_null() & pl.col(predicted).is_not_null())
    n = rows.height
    if n == 0:
        return {"n": 0}
    y = rows.get_column(measured).to_numpy()
    p = rows.get_column(predicted).to_numpy()
    err = p - y
    relative = err / np.where(np.abs(y) > 0, np.abs(y), math.nan)
    lo, hi = rows.get_column(lower).to_numpy(), rows.get_column(upper).to_numpy()
    return {
        "n": n,
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape_pct": float(np.nanmean(np.abs(relative)) * 100),
        "rmse_pct": float(np.sqrt(np.nanmean(relative**2)) * 100),
        "bias_pct": float(np.nanmean(relative) * 100),
        "coverage": float(np.mean((y >= lo) & (y <= hi))),
        "interval_width_pct": float(np.nanmean((hi - lo) / np.abs(y)) * 100),
    }


def summarize(table: pl.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "thickness": _block(table, "xrd_thickness_nm", "thickness_nm", "thickness_lower_nm", "thickness_upper_nm"),
        "composition": _block(table, "xrd_composition", "composition", "composition_lower", "composition_upper"),
    }  # fmt: skip
    if "true_thickness_nm" in table.columns:
        out["thickness_vs_truth"] = _block(
            table.filter(pl.col("xrd_thickness_nm").is_not_null()),
            "true_thickness_nm", "thickness_nm", "thickness_lower_nm", "thickness_upper_nm",
        )  # fmt: skip
    if "true_composition" in table.columns:
        out["composition_vs_truth"] = _block(
            table.filter(pl.col("xrd_composition").is_not_null()),
            "true_composition", "composition", "composition_lower", "composition_upper",
        )  # fmt: skip
    return out


def evaluate(examples: pl.DataFrame, residuals: pl.DataFrame, slices: tuple[str, ...] = SLICES) -> dict[str, Any]:
    table = predictions_table(examples, residuals)
    result: dict[str, Any] = {"overall": summarize(table), "slices": {}}
    for name in slices:
        if name not in table.columns:
            continue
        result["slices"][name] = {
            str(key[0]): summarize(group)
            for key, group in sorted(table.group_by(name), key=lambda kv: str(kv[0][0]))
        }
    return result
