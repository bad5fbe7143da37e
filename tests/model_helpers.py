"""Synthetic training sets for the model tests: layers over many calibration epochs with a known
thickness residual of chosen feature columns and of the Ga.T_dev sensor trace."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import torch

from epi_ml.features.build import TRACES_NAME, TRAINING_DATASET, TRAINING_NAME
from epi_ml.features.core import FEATURES_VERSION
from epi_ml.features.traces import TRACE_BINS
from epi_ml.models.data import InputSpec
from epi_ml.models.hybrid import HybridResidualNet, HyperParameters
from epi_ml.models.predictor import GrowthModel
from epi_ml.physics import GAAS_MONOLAYER_NM, is_direct_gap, pl_peak_nm

TOOL = "MBE1"
T0 = datetime(2026, 1, 5, 6, tzinfo=UTC)  # the first calibration scan (on the hour)
MATERIAL_MIX = {"GaAs": 0.5, "AlGaAs": 0.3, "InGaAs": 0.2}
X_RANGE = {"AlGaAs": (0.1, 0.35), "InGaAs": (0.05, 0.2)}  # direct gap throughout
# small and short: what a test of the lifecycle (not of accuracy) needs
QUICK = HyperParameters(hidden=32, trace_channels=8, batch_size=256, max_epochs=60, patience=15, members=2)
SMALL = HyperParameters(hidden=32, trace_channels=8, members=2, max_epochs=200, patience=30)
CPU = torch.device("cpu")

Residual = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def known_residual(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """r_thickness of a context column (a), an in-situ column (b) and the Ga.T_dev trace (c)."""
    return 0.02 * np.tanh(a) + 0.01 * b + 0.015 * c


def synthetic_training_set(
    layers: int = 480,
    *,
    epochs: int = 16,
    runs_per_epoch: int = 3,
    seed: int = 0,
    residual: Residual | None = None,
    noise: float = 0.0,
    with_traces: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A training set (the columns select_examples reads) and its traces (long, or empty).

    Calibration scans every 2 days on the hour; each epoch has `runs_per_epoch` runs of equal
    numbers of layers, 10 min apart. The hidden drivers of the thickness residual are
    a = prev_run_residual (context), b = Ga_T_dev (in situ) and c = the level of the layer's
    Ga.T_dev trace (in no column); `noise` is the standard deviation of a Gaussian added to it
    (and a quarter of it to the composition)."""
    rng = np.random.default_rng(seed)
    per_run = max(1, round(layers / (epochs * runs_per_epoch)))
    keys = []
    for e in range(epochs):
        calibrated = T0 + timedelta(days=2 * e)
        for r in range(runs_per_epoch):
            run_start = calibrated + timedelta(hours=2 + 12 * r)
            run_id = f"{TOOL}-{run_start:%Y%m%d}-{r + 1:02d}"
            for layer in range(per_run):
                start = run_start + timedelta(minutes=10 * layer)
                keys.append((run_id, layer, start, (start - calibrated).total_seconds() / 3600))
    n = len(keys)
    material = rng.choice(list(MATERIAL_MIX), size=n, p=list(MATERIAL_MIX.values()))
    target_x = np.array([rng.uniform(*X_RANGE[m]) if m in X_RANGE else np.nan for m in material])
    pred_x = target_x + rng.normal(0, 0.003, n)
    rate = rng.uniform(0.3, 1.0, n)
    growth_s = rng.uniform(120.0, 1500.0, n)
    pred_t = rate * growth_s * GAAS_MONOLAYER_NM
    a, b, c = rng.normal(0, 1, (3, n))
    r_t = np.zeros(n) if residual is None else residual(a, b, c)
    xrd_t = pred_t * np.exp(r_t + rng.normal(0, noise, n) * (noise > 0))
    xrd_x = pred_x + 0.004 * np.tanh(a) + rng.normal(0, noise / 4, n) * (noise > 0)
    peak = [
        float(pl_peak_nm(m, x)) if is_direct_gap(m, x) else math.nan
        for m, x in zip(material, np.nan_to_num(xrd_x), strict=True)
    ]
    x_share = np.nan_to_num(target_x)

    def nullable(values: np.ndarray | list[float]) -> pl.Series:
        return pl.Series(values, dtype=pl.Float64).fill_nan(None)

    frame = pl.DataFrame(
        {
            "run_id": [k[0] for k in keys],
            "tool": TOOL,
            "layer": [k[1] for k in keys],
            "kind": "layer",
            "material": material.tolist(),
            "start": [k[2] for k in keys],
            "hours_since_calibration": [k[3] for k in keys],
            "pred_thickness_nm": pred_t,
            "growth_s": growth_s,
            "pred_rate_ml_s": rate,
            "pred_composition": nullable(pred_x),
            "target_composition": nullable(target_x),
            "Ga_flux_ml_s": rate * np.where(material == "GaAs", 1.0, 1.0 - x_share),
            "Al_flux_ml_s": nullable(np.where(material == "AlGaAs", rate * x_share, np.nan)),
            "In_flux_ml_s": nullable(np.where(material == "InGaAs", rate * x_share, np.nan)),
            "open_Ga_s": growth_s,  # every material here has gallium
            "open_Al_s": np.where(material == "AlGaAs", growth_s, 0.0),
            "open_In_s": np.where(material == "InGaAs", growth_s, 0.0),
            "rheed_rate_ml_s": nullable(np.full(n, np.nan)),
            "rheed_rate_unc_ml_s": nullable(np.full(n, np.nan)),
            "p_chamber_mean": np.full(n, 2e-7),
            "prev_run_residual": a,
            "Ga_T_dev": b,
            "xrd_thickness_nm": xrd_t,
            "xrd_composition": nullable(xrd_x),
            "pl_peak_nm": nullable(peak),
            "features_version": FEATURES_VERSION,
        }
    ).with_columns(pl.col("start").dt.cast_time_unit("us"))
    if not with_traces:
        return frame, pl.DataFrame()
    bins = np.arange(TRACE_BINS)
    shape = 1.0 + 0.3 * np.sin(2 * np.pi * bins / TRACE_BINS)
    channels = {
        "Ga.T_dev": c[:, None] * shape[None, :] + rng.normal(0, 0.05, (n, TRACE_BINS)),
        "sub.T_pyro": rng.normal(0, 0.5, (n, TRACE_BINS)),  # uninformative
    }
    traces = pl.concat(
        pl.DataFrame(
            {
                "run_id": np.repeat(frame["run_id"].to_numpy(), TRACE_BINS),
                "layer": np.repeat(frame["layer"].to_numpy(), TRACE_BINS),
                "channel": name,
                "bin": np.tile(bins, n).astype(np.int32),
                "value": values.ravel(),
            }
        )
        for name, values in channels.items()
    )
    return frame, traces



def write_training_set(ctx, frame: pl.DataFrame, traces: pl.DataFrame) -> Path:
    """The frame and traces where `training_set` writes them (the models read them there)."""
    ctx.lake.write_dataset(TRAINING_DATASET, TRACES_NAME, traces)
    return ctx.lake.write_dataset(TRAINING_DATASET, TRAINING_NAME, frame)


def tiny_model(examples: pl.DataFrame, seed: int = 0) -> GrowthModel:
    """An untrained one-member model (the physics baseline), for registry tests."""
    torch.manual_seed(seed)
    spec = InputSpec.fit(examples)
    hp = HyperParameters(hidden=8, trace_channels=4, members=1)
    net = HybridResidualNet(spec.n_context, spec.n_in_situ, len(spec.trace_names), hp)
    return GrowthModel(spec, hp, [net.eval()], metadata={"seed": seed})
